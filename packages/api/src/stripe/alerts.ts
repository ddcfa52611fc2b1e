/**
 * The tenant webhook events Stripe billing raises: a meter event push that will not reach Stripe
 * (EXPIRED) or that Stripe refused (FAILED), and a credit grant, grant void or minimum true-up call
 * that Stripe refused or that gave up (stripe.credit_push_failed). The webhooks domain stores and delivers them; it is injected as a
 * sink (services.ts), so this domain does not reach into it.
 */
import type { Executor } from '../db/database.ts'
import type { StripePushRow } from './db-types.ts'
import type { CreditPushRow } from './repository/credit-pushes.ts'

/** The tenant webhook types Stripe billing raises (see WEBHOOK_EVENT_TYPES). */
type StripeAlertType = 'stripe.usage_expired' | 'stripe.push_failed' | 'stripe.credit_push_failed'

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

export interface StripeAlerts {
  /**
   * Enqueues the alert for `push` in the caller's transaction: the status change and its alert
   * commit together. One alert per push and type (the identifier is the dedupe key); a retry of a
   * refused push has a new identifier, and a push that gave up is retried under its own identifier
   * with a new `occurrence` (its retry count), so a retry that fails again alerts again.
   */
  raise(
    executor: Executor,
    type: StripeAlertType,
    push: AlertPush,
    reason: string,
    now: Date,
    occurrence?: string,
  ): Promise<void>
  /**
   * Enqueues stripe.credit_push_failed for a credit push that just turned FAILED, in the caller's
   * transaction: once per push and manual retry (a retried push that fails again alerts again).
   */
  raiseCredit(executor: Executor, push: CreditPushRow, reason: string, now: Date): Promise<void>
}

/** What a tenant's endpoint receives: enough to find the push (stripePushes) and act on it. */
function stripeAlertPayload(push: AlertPush, reason: string): Record<string, unknown> {
  const [model, tokenType] = push.dimension === '' ? [null, null] : push.dimension.split('|')
  return {
    identifier: push.identifier,
    customerId: push.customer_id,
    stripeCustomerId: push.stripe_customer_id,
    windowStart: new Date(push.window_start).toISOString(),
    windowEnd: new Date(new Date(push.window_start).getTime() + 3_600_000).toISOString(),
    /** Reporting units (1/1000 of the minor currency unit), as a string: may be negative. */
    units: String(push.value),
    ...(model !== null ? { model, tokenType: tokenType ?? '' } : {}),
    reason,
  }
}

/** What a tenant's endpoint receives for a failed credit push: enough to find it (stripeCreditPushes) and retry it. */
function creditAlertPayload(push: CreditPushRow, reason: string): Record<string, unknown> {
  return {
    identifier: push.identifier,
    kind: push.kind,
    category: push.category,
    customerId: push.customer_id,
    stripeCustomerId: push.stripe_customer_id,
    periodStart: new Date(push.period_start).toISOString(),
    /** Minor currency units, as a string. */
    amountMinor: String(push.amount_minor),
    gaveUp: push.gave_up,
    reason,
  }
}

export function createStripeAlerts(enqueue: WebhookEventSink): StripeAlerts {
  return {
    async raiseCredit(executor, push, reason, now) {
      await enqueue(
        executor,
        {
          tenantId: push.tenant_id,
          type: 'stripe.credit_push_failed',
          dedupeKey: `stripe.credit_push_failed:${push.identifier}:${push.manual_retries}`,
          payload: creditAlertPayload(push, reason),
        },
        now,
      )
    },
    async raise(executor, type, push, reason, now, occurrence) {
      const dedupeKey = `${type}:${push.identifier}${occurrence ? `:${occurrence}` : ''}`
      await enqueue(
        executor,
        { tenantId: push.tenant_id, type, dedupeKey, payload: stripeAlertPayload(push, reason) },
        now,
      )
    },
  }
}
