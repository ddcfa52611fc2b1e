/**
 * The alerts Stripe billing raises: a meter event push that will not reach Stripe (EXPIRED:
 * stripe.usage_expired) or that Stripe refused (FAILED: stripe.push_failed), and a credit grant,
 * grant void or minimum true-up call that Stripe refused or that gave up (stripe.credit_push_failed).
 * Each is a tenant webhook event, stored in the transaction that records the push's new status, and,
 * once that transaction has committed, an event of the stripeAlerts subscription. The webhooks
 * domain's enqueue is injected as a sink and the pubsub as a dependency (services.ts), so this
 * domain does not reach into either.
 */
import type { Db, Executor, Tx } from '../db/database.ts'
import type {
  BurnratePubSub,
  StripeAlertEvent,
  StripeCreditPushAlertData,
  StripeMeterEventAlertData,
} from '../pubsub.ts'
import type { StripePushRow } from './db-types.ts'
import type { CreditPushRow } from './repository/credit-pushes.ts'

/** The tenant webhook types Stripe billing raises (see WEBHOOK_EVENT_TYPES). */
type StripeAlertType = StripeAlertEvent['type']

type AlertPush = Pick<
  StripePushRow,
  'identifier' | 'tenant_id' | 'customer_id' | 'stripe_customer_id' | 'dimension' | 'window_start' | 'value'
>

/** Stores a tenant webhook event in the caller's transaction (webhooks' enqueue, bound to its attempt limit). */
export type WebhookEventSink = (
  executor: Executor,
  event: { tenantId: string; type: StripeAlertType; dedupeKey: string; payload: Record<string, unknown> },
  now: Date,
) => Promise<unknown>

/** Raises alerts inside one StripeAlerts.transaction: stored with it, published after it commits. */
interface RaiseStripeAlert {
  /**
   * stripe.usage_expired or stripe.push_failed for a meter event push. One alert per push and type
   * (the identifier is the dedupe key); a retry of a refused push has a new identifier, and a push
   * that gave up is retried under its own identifier with a new `occurrence` (its retry count), so a
   * retry that fails again alerts again.
   */
  meterEvent(
    type: 'stripe.usage_expired' | 'stripe.push_failed',
    push: AlertPush,
    reason: string,
    now: Date,
    occurrence?: string,
  ): Promise<void>
  /** stripe.credit_push_failed for a credit push that just turned FAILED: once per push and manual retry. */
  creditPush(push: CreditPushRow, reason: string, now: Date): Promise<void>
}

export interface StripeAlerts {
  /**
   * Runs `work` in one transaction of `db`. The alerts it raises are stored as tenant webhook events
   * in that transaction (a push's status change and its alert commit together) and published on the
   * tenant's stripeAlert topic once it has committed, in the order raised; a transaction that rolls
   * back publishes nothing. Callers raise only on the status change itself, so each alert is
   * published once.
   */
  transaction<T>(db: Db, work: (trx: Tx, raise: RaiseStripeAlert) => Promise<T>): Promise<T>
}

/** What a tenant's endpoint receives: enough to find the push (stripePushes) and act on it. */
function meterEventAlertData(push: AlertPush, reason: string): StripeMeterEventAlertData {
  const [model, tokenType] = push.dimension === '' ? [null, null] : push.dimension.split('|')
  return {
    identifier: push.identifier,
    customerId: push.customer_id,
    stripeCustomerId: push.stripe_customer_id,
    windowStart: new Date(push.window_start).toISOString(),
    windowEnd: new Date(new Date(push.window_start).getTime() + 3_600_000).toISOString(),
    units: String(push.value),
    ...(model != null ? { model, tokenType: tokenType ?? '' } : {}),
    reason,
  }
}

/** What a tenant's endpoint receives for a failed credit push: enough to find it (stripeCreditPushes) and retry it. */
function creditPushAlertData(push: CreditPushRow, reason: string): StripeCreditPushAlertData {
  return {
    identifier: push.identifier,
    kind: push.kind,
    category: push.category,
    customerId: push.customer_id,
    stripeCustomerId: push.stripe_customer_id,
    periodStart: new Date(push.period_start).toISOString(),
    amountMinor: String(push.amount_minor),
    gaveUp: push.gave_up,
    reason,
  }
}

export function createStripeAlerts({
  enqueue,
  pubsub,
}: {
  enqueue: WebhookEventSink
  /** Where committed alerts are published (topic stripeAlert, channel: the tenant). */
  pubsub: BurnratePubSub
}): StripeAlerts {
  return {
    async transaction(db, work) {
      const raised: StripeAlertEvent[] = []
      const store = (trx: Tx) => async (event: StripeAlertEvent, now: Date) => {
        const { id, tenantId, type, at: _at, ...payload } = event
        await enqueue(trx, { tenantId, type, dedupeKey: id, payload }, now)
        raised.push(event)
      }
      const result = await db.transaction().execute((trx) => {
        const raise = store(trx)
        return work(trx, {
          meterEvent: (type, push, reason, now, occurrence) =>
            raise(
              {
                id: `${type}:${push.identifier}${occurrence ? `:${occurrence}` : ''}`,
                tenantId: push.tenant_id,
                type,
                at: now.toISOString(),
                ...meterEventAlertData(push, reason),
              },
              now,
            ),
          creditPush: (push, reason, now) =>
            raise(
              {
                id: `stripe.credit_push_failed:${push.identifier}:${push.manual_retries}`,
                tenantId: push.tenant_id,
                type: 'stripe.credit_push_failed',
                at: now.toISOString(),
                ...creditPushAlertData(push, reason),
              },
              now,
            ),
        })
      })
      for (const event of raised) pubsub.publish('stripeAlert', event.tenantId, event)
      return result
    },
  }
}
