/**
 * Sending: a group's due pushes go to Stripe one at a time, in sequence order, while this process
 * holds the group's lease; each outcome (sent, duplicate, retry later, gave up, refused) is recorded.
 */
import { classifyStripeError, describeStripeError, isReplayedError, type CallOutcome } from './client.ts'
import type { PushGroup } from './repository/outbox.ts'
import { renewLease } from './repository/leases.ts'
import { failPending, markSent, nextDuePush, recordAttempt, scheduleRetry } from './repository/pushes.ts'
import type { PushContext, PushRound, RoundClients } from './push-round.ts'

export async function sendDue(ctx: PushContext, group: PushGroup, round: PushRound, clients: RoundClients) {
  const { db, clock, logger, alerts } = ctx
  const found = await clients(group.tenant_id)
  if (!found) return
  const [model, tokenType] = group.dimension === '' ? [] : group.dimension.split('|')
  const renew = () =>
    renewLease(db, 'stripe_push_state', group, ctx.owner, new Date(clock.now().getTime() + ctx.leaseMs))
  for (;;) {
    if (ctx.killed() || !(await renew())) return
    const push = await nextDuePush(db, group, clock.now())
    if (!push) return
    // Recorded before the call: a crash now leaves a PENDING push with the same identifier,
    // which the next attempt re-sends and Stripe de-duplicates.
    await recordAttempt(db, push.identifier, push.attempts + 1, new Date(clock.now().getTime() + ctx.leaseMs))
    let outcome: CallOutcome
    let error: unknown = null
    const attempt = push.attempts + 1
    try {
      await found.client.billing.meterEvents.create(
        {
          event_name: push.event_name,
          identifier: push.identifier,
          timestamp: Math.floor(new Date(push.window_start).getTime() / 1000),
          payload: {
            stripe_customer_id: push.stripe_customer_id,
            value: String(push.value),
            ...(model !== undefined ? { model, token_type: tokenType ?? '' } : {}),
          },
        },
        { idempotencyKey: push.idempotency_key ?? push.identifier },
      )
      outcome = 'ok'
    } catch (e) {
      error = e
      outcome = classifyStripeError(e)
    }
    if (ctx.killed()) return
    const now = clock.now()
    if (outcome === 'ok' || outcome === 'duplicate') {
      await markSent(db, push.identifier, now)
      if (outcome === 'ok') round.sent += 1
      else round.duplicates += 1
    } else if (outcome === 'retryable' && attempt < ctx.maxAttempts) {
      // Stripe replays a stored error (a 500 included) for 24 h to every request with the same
      // Idempotency-Key: the next attempt needs a new key. The identifier stays, and Stripe
      // de-duplicates meter events on it, so an event that did land is not counted twice.
      const idempotencyKey = isReplayedError(error) ? `${push.identifier}-r${attempt}` : (push.idempotency_key ?? null)
      await scheduleRetry(db, push.identifier, {
        nextAttemptAt: new Date(now.getTime() + ctx.backoff(attempt)),
        lastError: describeStripeError(error),
        idempotencyKey,
      })
      round.retried += 1
      return
    } else if (outcome === 'retryable') {
      // Out of attempts: visible as FAILED (and alerted) rather than PENDING indefinitely. Stripe
      // may hold the event (a lost answer), so retryStripePushes re-sends it under this identifier.
      const reason = `gave up after ${attempt} attempts: ${describeStripeError(error)}`.slice(0, 500)
      await alerts.transaction(db, async (trx, raise) => {
        if (await failPending(trx, push.identifier, reason, true)) {
          await raise.meterEvent(
            'stripe.push_failed',
            push,
            `Stripe did not accept the meter event in ${attempt} attempts: ${describeStripeError(error)}`,
            now,
            `gave-up-${push.manual_retries}`,
          )
        }
      })
      round.failed += 1
      logger.warn('stripe meter event given up', {
        tenantId: group.tenant_id,
        identifier: push.identifier,
        attempts: attempt,
        error: reason,
      })
      return
    } else {
      const reason = describeStripeError(error)
      await alerts.transaction(db, async (trx, raise) => {
        // Only the call that made it FAILED alerts (the dedupe key would catch a second one too).
        if (await failPending(trx, push.identifier, reason, false))
          await raise.meterEvent('stripe.push_failed', push, `Stripe refused the meter event: ${reason}`, now)
      })
      round.failed += 1
      logger.warn('stripe meter event refused', {
        tenantId: group.tenant_id,
        identifier: push.identifier,
        error: reason,
      })
    }
  }
}
