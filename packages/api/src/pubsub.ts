import type { AppliedPriceChange } from '@burnrate/catalog-sync'
import type { CreditCategory, StripeCreditPushKind } from './db/column-types.ts'
import { createPubSub, Repeater, SlidingBuffer, type PubSub, type PubSubEventTarget } from 'graphql-yoga'

/**
 * Live events, by topic. Payloads are plain JSON (they may cross processes through Redis), so
 * dates travel as ISO strings and money as decimal strings.
 *
 * Topics are scoped by tenant in their channel id, so a subscriber can only ever listen to its
 * own tenant's stream.
 */
/** THRESHOLD: spend reached a threshold; FORECAST: the projection passed the limit (opt-in per budget). */
export const BUDGET_ALERT_KINDS = ['THRESHOLD', 'FORECAST'] as const
type BudgetAlertKind = (typeof BUDGET_ALERT_KINDS)[number]

export interface BudgetAlertEvent {
  id: string
  tenantId: string
  customerId: string
  budgetId: string
  threshold: number
  spent: string
  limit: string
  periodStart: string
  triggeredAt: string
  /** Absent in events from processes that predate kinds: a THRESHOLD alert. */
  kind?: BudgetAlertKind
  /** FORECAST alerts: the projected spend at period end that exceeded the limit. */
  forecast?: string | null
}

/**
 * A customer's prepaid credit balance crossed a threshold downwards (credits/): LOW_BALANCE at its
 * low-balance threshold (the customer's total, or one grant's), ZERO_BALANCE when the total runs out.
 */
export interface CreditAlertEvent {
  id: string
  tenantId: string
  customerId: string
  /** null: the customer's total balance; else the grant whose own threshold was crossed. */
  grantId: string | null
  kind: 'LOW_BALANCE' | 'ZERO_BALANCE'
  threshold: string
  /** The balance right after the crossing. */
  balance: string
  triggeredAt: string
}

export interface PriceChangeEvent {
  provider: string
  model: string
  usageType: string
  oldUnitPrice: string | null
  newUnitPrice: string | null
  effectiveFrom: string
  source: string
  /** null for public catalog changes; a tenant id for that tenant's own negotiated prices. */
  tenantId: string | null
}

/**
 * A customer's billed usage changed: events were stored, or stored ones were priced or corrected.
 * Coalesced per customer over a short window, so a burst of calls is one event.
 */
export interface UsageUpdateEvent {
  tenantId: string
  customerId: string
  /** Events stored, priced or corrected in the window. */
  events: number
  at: string
}

/** Provider-reported usage or cost differs from what Burnrate metered for a day (reconciliation/). */
export interface ReconciliationAlertEvent {
  id: string
  tenantId: string
  provider: string
  /** The UTC day, as its midnight. */
  day: string
  /** UNMETERED, OVER_METERED or PRICE_MISMATCH. */
  kind: string
  models: string[]
  usageTypes: string[]
  /** Provider cost minus Burnrate's cost over the day's differing rows; null when no cost is known. */
  costDifference: string | null
  /** UNMETERED: the estimated billable amount at the default plan; null otherwise. */
  estimatedBillableAmount: string | null
  raisedAt: string
}

/** The data of a stripe.usage_expired or stripe.push_failed alert: one meter event push (stripe/alerts.ts). */
export type StripeMeterEventAlertData = {
  identifier: string
  customerId: string
  stripeCustomerId: string
  windowStart: string
  windowEnd: string
  /** Reporting units (1/1000 of the minor currency unit), as a string: may be negative. */
  units: string
  /** ITEMIZED mode only: the push's meter dimensions. */
  model?: string
  tokenType?: string
  reason: string
}

/** The data of a stripe.credit_push_failed alert: one credit grant, grant void or true-up call. */
export type StripeCreditPushAlertData = {
  identifier: string
  kind: StripeCreditPushKind
  category: CreditCategory | null
  customerId: string
  stripeCustomerId: string
  periodStart: string
  /** Minor currency units, as a string. */
  amountMinor: string
  gaveUp: boolean
  reason: string
}

/**
 * A Stripe operational alert: the tenant webhook event's type and data (its `data`, field for field),
 * published once the transaction that raised it has committed.
 */
export type StripeAlertEvent = {
  /** One per alert: the webhook event's dedupe key (type, push identifier and, for a retried push, which retry). */
  id: string
  tenantId: string
  /** When it was raised: the webhook event's `created`. */
  at: string
} & (
  | ({ type: 'stripe.usage_expired' | 'stripe.push_failed' } & StripeMeterEventAlertData)
  | ({ type: 'stripe.credit_push_failed' } & StripeCreditPushAlertData)
)

export type Topics = {
  /** Channel id: the tenant id. */
  budgetAlert: [tenantId: string, event: BudgetAlertEvent]
  /** Channel id: the tenant id. */
  creditAlert: [tenantId: string, event: CreditAlertEvent]
  /** Channel id: the tenant id. */
  usageUpdate: [tenantId: string, event: UsageUpdateEvent]
  /** Public catalog changes go to every tenant; tenant overrides also publish on 'tenantPriceChange'. */
  priceChange: [event: PriceChangeEvent]
  tenantPriceChange: [tenantId: string, event: PriceChangeEvent]
  /** Channel id: the tenant id. */
  reconciliationAlert: [tenantId: string, event: ReconciliationAlertEvent]
  /** Channel id: the tenant id. */
  stripeAlert: [tenantId: string, event: StripeAlertEvent]
}

export type BurnratePubSub = PubSub<Topics>

/** Events one subscriber may fall behind by; past that its oldest unread events are dropped. */
const SUBSCRIBER_BUFFER = 10_000

/** In-process pubsub; pass a distributed event target (Redis) to fan out across API processes. */
export function createBurnratePubSub(eventTarget?: PubSubEventTarget<Topics>): BurnratePubSub {
  const target = eventTarget ?? (new EventTarget() as unknown as PubSubEventTarget<Topics>)
  const base = createPubSub<Topics>({ eventTarget: target })
  return {
    publish: base.publish,
    // yoga's own subscribe has no buffer per subscriber: more than 1,024 events published in one
    // burst (a catalog sync publishes thousands) before a subscriber reads throws
    // RepeaterOverflowError inside the event listener and crashes the process. Each subscriber
    // gets its own sliding buffer instead.
    subscribe: ((routingKey: string, id?: string) => {
      const topic = id === undefined ? routingKey : `${routingKey}:${id}`
      return new Repeater<unknown>((push, stop) => {
        const listener = (event: Event) => void push((event as CustomEvent).detail)
        ;(target as unknown as EventTarget).addEventListener(topic, listener)
        void stop.then(() => (target as unknown as EventTarget).removeEventListener(topic, listener))
      }, new SlidingBuffer(SUBSCRIBER_BUFFER))
    }) as BurnratePubSub['subscribe'],
  }
}

/** The wire form of a catalog change, for subscribers and webhook receivers alike. */
export function priceChangeEvent(change: AppliedPriceChange): PriceChangeEvent {
  return {
    provider: change.provider,
    model: change.model,
    usageType: change.usageType,
    oldUnitPrice: change.oldUnitPrice,
    newUnitPrice: change.newUnitPrice,
    effectiveFrom: change.effectiveFrom.toISOString(),
    source: change.source,
    tenantId: change.tenantId,
  }
}
