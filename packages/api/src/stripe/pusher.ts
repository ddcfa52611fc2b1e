import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import { enqueueStripeAlert } from './alerts.ts'
import { classifyStripeError, describeStripeError, isReplayedError } from './client.ts'
import type { StripeService } from './service.ts'
import { pushIdentifier, toUnits } from './units.ts'

/** Stripe accepts meter events up to 35 calendar days old; we stop an hour short of that edge. */
export const STRIPE_MAX_AGE_MS = 35 * 86_400_000 - 3_600_000

const EXPIRED_REASON = 'window is older than Stripe accepts (35 days); not sent'

export interface PusherOptions {
  intervalMs: number
  /** How long a claim on a (customer, meter) group lasts; must exceed the Stripe call timeout. */
  leaseMs: number
  /** Groups worked on at once (each group: one Stripe call at a time). */
  concurrency: number
  backoffBaseMs: number
  backoffMaxMs: number
  /**
   * Attempts of one push before it ends FAILED (gave up) instead of waiting for another: with
   * backoff doubling from backoffBaseMs up to backoffMaxMs, this bounds how long a push can stay
   * PENDING. Default 16 (with 1 s … 300 s: at most about 44 minutes of backoff).
   */
  maxAttempts?: number
  /** Identifies this process's claims; a restarted pusher gets a new one. */
  owner?: string
}

export interface PushRound {
  groups: number
  planned: number
  sent: number
  duplicates: number
  retried: number
  failed: number
  expired: number
}

export interface StripePusher {
  /** One round: claim groups with work, fold new outbox rows into pushes, send what is due. */
  runOnce(): Promise<PushRound>
  start(): void
  /** Finishes the round in progress and releases its claims. */
  stop(): Promise<void>
  /**
   * Simulates a crash: nothing after this point is recorded (results of calls in flight are
   * lost, claims are not released and expire after leaseMs).
   */
  kill(): void
}

interface Group {
  tenant_id: string
  customer_id: string
  dimension: string
}

const CHUNK = 1000

export function createStripePusher({
  db,
  clock,
  logger,
  stripe,
  options,
}: {
  db: Db
  clock: Clock
  logger: Logger
  stripe: StripeService
  options: PusherOptions
}): StripePusher {
  const owner = options.owner ?? `pusher-${randomUUID()}`
  const maxAttempts = options.maxAttempts ?? 16
  let killed = false
  let timer: NodeJS.Timeout | null = null
  let running: Promise<unknown> | null = null

  const backoff = (attempts: number) => {
    const base = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.min(attempts - 1, 20))
    return Math.round(base / 2 + (Math.random() * base) / 2)
  }

  async function claim(limit: number): Promise<Group[]> {
    const now = clock.now()
    const until = new Date(now.getTime() + options.leaseMs)
    const result = await sql<Group>`
      update stripe_push_state s set lease_owner = ${owner}, lease_until = ${until}
      from (
        select p.tenant_id, p.customer_id, p.dimension from stripe_push_state p
        where (p.lease_until is null or p.lease_until < ${now})
          and (exists (select 1 from stripe_outbox o where o.tenant_id = p.tenant_id and o.customer_id = p.customer_id
                        and o.dimension = p.dimension and o.planned_at is null)
            or exists (select 1 from stripe_pushes u where u.tenant_id = p.tenant_id and u.customer_id = p.customer_id
                        and u.dimension = p.dimension and u.status = 'PENDING' and u.next_attempt_at <= ${now}))
        order by p.lease_until nulls first
        limit ${limit}
        for update skip locked
      ) c
      where s.tenant_id = c.tenant_id and s.customer_id = c.customer_id and s.dimension = c.dimension
      returning s.tenant_id, s.customer_id, s.dimension`.execute(db)
    return result.rows
  }

  /** Renews this process's claim; false when it was lost (expired and taken by another). */
  async function renew(group: Group): Promise<boolean> {
    const until = new Date(clock.now().getTime() + options.leaseMs)
    const result = await db
      .updateTable('stripe_push_state')
      .set({ lease_until: until })
      .where('tenant_id', '=', group.tenant_id)
      .where('customer_id', '=', group.customer_id)
      .where('dimension', '=', group.dimension)
      .where('lease_owner', '=', owner)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async function release(group: Group) {
    await db
      .updateTable('stripe_push_state')
      .set({ lease_owner: null, lease_until: null })
      .where('tenant_id', '=', group.tenant_id)
      .where('customer_id', '=', group.customer_id)
      .where('dimension', '=', group.dimension)
      .where('lease_owner', '=', owner)
      .execute()
  }

  /**
   * Folds the group's unplanned outbox rows into pushes, window by window in time order, in one
   * transaction: each window's value is floor((residue + amounts) × units), the rest is the new
   * residue. So Σ values + residue = Σ amounts × units, exactly, and nothing is rounded twice.
   */
  async function plan(group: Group, round: PushRound) {
    const now = clock.now()
    await db.transaction().execute(async (trx) => {
      const account = await trx
        .selectFrom('stripe_accounts')
        .select(['event_name', 'units_per_major', 'price_id'])
        .where('tenant_id', '=', group.tenant_id)
        .executeTakeFirst()
      if (!account?.price_id || !account.event_name) return
      const customer = await trx
        .selectFrom('customers')
        .select('stripe_customer_id')
        .where('tenant_id', '=', group.tenant_id)
        .where('id', '=', group.customer_id)
        .executeTakeFirst()
      // No Stripe customer yet: the usage waits in the outbox (reconciliation shows it).
      if (!customer?.stripe_customer_id) return
      const state = await trx
        .selectFrom('stripe_push_state')
        .selectAll()
        .where('tenant_id', '=', group.tenant_id)
        .where('customer_id', '=', group.customer_id)
        .where('dimension', '=', group.dimension)
        .forUpdate()
        .executeTakeFirst()
      if (!state || state.lease_owner !== owner) return
      const rows = await trx
        .selectFrom('stripe_outbox')
        .select(['event_id', 'window_start', 'amount'])
        .where('tenant_id', '=', group.tenant_id)
        .where('customer_id', '=', group.customer_id)
        .where('dimension', '=', group.dimension)
        .where('planned_at', 'is', null)
        .orderBy('window_start')
        .orderBy('event_id')
        .execute()
      if (rows.length === 0) return
      const windows = new Map<number, { start: Date; eventIds: string[]; amount: Decimal }>()
      for (const row of rows) {
        const start = new Date(row.window_start)
        let w = windows.get(start.getTime())
        if (!w) windows.set(start.getTime(), (w = { start, eventIds: [], amount: new Decimal(0) }))
        w.eventIds.push(row.event_id)
        w.amount = w.amount.plus(row.amount)
      }
      let residue = new Decimal(state.residue)
      let seq = state.next_seq
      for (const w of windows.values()) {
        const { units, residue: rest } = toUnits(residue.plus(w.amount), account.units_per_major)
        residue = rest
        let identifier: string | null = null
        // A correction can lower a bill: negative deltas go out as negative values.
        if (units !== 0n) {
          identifier = pushIdentifier(group.tenant_id, group.customer_id, group.dimension, w.start, seq)
          const expired = now.getTime() - w.start.getTime() > STRIPE_MAX_AGE_MS
          await trx
            .insertInto('stripe_pushes')
            .values({
              identifier,
              tenant_id: group.tenant_id,
              customer_id: group.customer_id,
              dimension: group.dimension,
              stripe_customer_id: customer.stripe_customer_id,
              event_name: account.event_name,
              window_start: w.start,
              seq,
              value: Number(units),
              status: expired ? 'EXPIRED' : 'PENDING',
              last_error: expired ? EXPIRED_REASON : null,
              next_attempt_at: now,
              created_at: now,
            })
            .execute()
          seq += 1
          round.planned += 1
          if (expired) {
            round.expired += 1
            logger.warn('stripe usage too old to send (over 35 days); listed by stripeExpiredUsage', {
              tenantId: group.tenant_id,
              customerId: group.customer_id,
              windowStart: w.start.toISOString(),
              units: units.toString(),
            })
            // The alert commits with the EXPIRED push (and only with it): one webhook event per push.
            await enqueueStripeAlert(
              trx,
              'stripe.usage_expired',
              {
                identifier,
                tenant_id: group.tenant_id,
                customer_id: group.customer_id,
                stripe_customer_id: customer.stripe_customer_id,
                dimension: group.dimension,
                window_start: w.start,
                value: Number(units),
              },
              EXPIRED_REASON,
              now,
              stripe.alertAttempts,
            )
          }
        }
        for (let i = 0; i < w.eventIds.length; i += CHUNK) {
          await trx
            .updateTable('stripe_outbox')
            .set({ planned_at: now, push_identifier: identifier })
            .where('tenant_id', '=', group.tenant_id)
            .where('dimension', '=', group.dimension)
            .where('event_id', 'in', w.eventIds.slice(i, i + CHUNK))
            .execute()
        }
      }
      await trx
        .updateTable('stripe_push_state')
        .set({ residue: residue.toFixed(), next_seq: seq })
        .where('tenant_id', '=', group.tenant_id)
        .where('customer_id', '=', group.customer_id)
        .where('dimension', '=', group.dimension)
        .execute()
    })
  }

  /** Sends the group's due pushes one at a time, in sequence order, recording each outcome. */
  async function send(group: Group, round: PushRound, clients: Map<string, ReturnType<StripeService['clientFor']>>) {
    // One client per tenant per round: decrypting the key and building a client (and its
    // keep-alive agent) per group would dominate the cost of a round.
    let client = clients.get(group.tenant_id)
    if (!client) clients.set(group.tenant_id, (client = stripe.clientFor(group.tenant_id)))
    const found = await client
    if (!found) return
    const [model, tokenType] = group.dimension === '' ? [] : group.dimension.split('|')
    for (;;) {
      if (killed || !(await renew(group))) return
      const push = await db
        .selectFrom('stripe_pushes')
        .selectAll()
        .where('tenant_id', '=', group.tenant_id)
        .where('customer_id', '=', group.customer_id)
        .where('dimension', '=', group.dimension)
        .where('status', '=', 'PENDING')
        .where('next_attempt_at', '<=', clock.now())
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst()
      if (!push) return
      // Recorded before the call: a crash now leaves a PENDING push with the same identifier,
      // which the next attempt re-sends and Stripe de-duplicates.
      await db
        .updateTable('stripe_pushes')
        .set({ attempts: push.attempts + 1, next_attempt_at: new Date(clock.now().getTime() + options.leaseMs) })
        .where('identifier', '=', push.identifier)
        .execute()
      let outcome: 'ok' | ReturnType<typeof classifyStripeError>
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
      if (killed) return
      const now = clock.now()
      if (outcome === 'ok' || outcome === 'duplicate') {
        await db
          .updateTable('stripe_pushes')
          .set({ status: 'SENT', sent_at: now, last_error: null })
          .where('identifier', '=', push.identifier)
          .where('status', '=', 'PENDING')
          .execute()
        if (outcome === 'ok') round.sent += 1
        else round.duplicates += 1
      } else if (outcome === 'retryable' && attempt < maxAttempts) {
        // Stripe replays a stored error (a 500 included) for 24 h to every request with the same
        // Idempotency-Key: the next attempt needs a new key. The identifier stays, and Stripe
        // de-duplicates meter events on it, so an event that did land is not counted twice.
        const idempotencyKey = isReplayedError(error)
          ? `${push.identifier}-r${attempt}`
          : (push.idempotency_key ?? null)
        await db
          .updateTable('stripe_pushes')
          .set({
            next_attempt_at: new Date(now.getTime() + backoff(attempt)),
            last_error: describeStripeError(error),
            idempotency_key: idempotencyKey,
          })
          .where('identifier', '=', push.identifier)
          .where('status', '=', 'PENDING')
          .execute()
        round.retried += 1
        return
      } else if (outcome === 'retryable') {
        // Out of attempts: visible as FAILED (and alerted) rather than PENDING indefinitely. Stripe
        // may hold the event (a lost answer), so retryStripePushes re-sends it under this identifier.
        const reason = `gave up after ${attempt} attempts: ${describeStripeError(error)}`.slice(0, 500)
        await db.transaction().execute(async (trx) => {
          const failed = await trx
            .updateTable('stripe_pushes')
            .set({ status: 'FAILED', gave_up: true, last_error: reason })
            .where('identifier', '=', push.identifier)
            .where('status', '=', 'PENDING')
            .executeTakeFirst()
          if (Number(failed.numUpdatedRows) > 0) {
            await enqueueStripeAlert(
              trx,
              'stripe.push_failed',
              push,
              `Stripe did not accept the meter event in ${attempt} attempts: ${describeStripeError(error)}`,
              now,
              stripe.alertAttempts,
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
        await db.transaction().execute(async (trx) => {
          const failed = await trx
            .updateTable('stripe_pushes')
            .set({ status: 'FAILED', last_error: reason })
            .where('identifier', '=', push.identifier)
            .where('status', '=', 'PENDING')
            .executeTakeFirst()
          // Only the call that made it FAILED alerts (the dedupe key would catch a second one too).
          if (Number(failed.numUpdatedRows) > 0)
            await enqueueStripeAlert(
              trx,
              'stripe.push_failed',
              push,
              `Stripe refused the meter event: ${reason}`,
              now,
              stripe.alertAttempts,
            )
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

  async function work(group: Group, round: PushRound, clients: Map<string, ReturnType<StripeService['clientFor']>>) {
    try {
      await plan(group, round)
      await send(group, round, clients)
    } catch (error) {
      if (!killed)
        logger.error('stripe push failed', {
          tenantId: group.tenant_id,
          customerId: group.customer_id,
          error: error instanceof Error ? error.message : String(error),
        })
    } finally {
      if (!killed) await release(group).catch(() => undefined)
    }
  }

  async function runOnce(): Promise<PushRound> {
    const round: PushRound = { groups: 0, planned: 0, sent: 0, duplicates: 0, retried: 0, failed: 0, expired: 0 }
    if (killed) return round
    const groups = await claim(options.concurrency * 4)
    round.groups = groups.length
    let next = 0
    const clients = new Map<string, ReturnType<StripeService['clientFor']>>()
    const worker = async () => {
      while (next < groups.length && !killed) await work(groups[next++]!, round, clients)
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, groups.length) }, worker))
    return round
  }

  const schedule = () => {
    if (killed) return
    timer = setTimeout(() => {
      running = runOnce()
        .catch((error: unknown) =>
          logger.error('stripe pusher round failed', { error: error instanceof Error ? error.message : String(error) }),
        )
        .finally(() => {
          running = null
          if (timer) schedule()
        })
    }, options.intervalMs)
    timer.unref?.()
  }

  return {
    runOnce,
    start() {
      if (timer || killed) return
      schedule()
    },
    async stop() {
      if (timer) clearTimeout(timer)
      timer = null
      await running
    },
    kill() {
      killed = true
      if (timer) clearTimeout(timer)
      timer = null
    },
  }
}
