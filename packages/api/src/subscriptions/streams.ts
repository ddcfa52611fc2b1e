import { filter, pipe, Repeater } from 'graphql-yoga'
import type { Principal } from '../context.ts'
import { userError } from '../shared/errors.ts'
import type {
  BudgetAlertEvent,
  BurnratePubSub,
  CreditAlertEvent,
  PriceChangeEvent,
  StripeAlertEvent,
  UsageUpdateEvent,
} from '../pubsub.ts'

/**
 * The live streams behind the Subscription fields, scoped by principal. Pure stream plumbing (no
 * GraphQL), so each rule is testable on its own.
 */

/**
 * Ends `source` when `deadline` passes: a widget session's subscription must not outlive its token
 * (the widget reconnects with a fresh one). Returning the source unsubscribes it from the pubsub.
 */
export function endAt<T>(source: AsyncIterable<T>, deadline: Date, now: Date): AsyncIterable<T> {
  const ms = deadline.getTime() - now.getTime()
  return new Repeater<T>(async (push, stop) => {
    const timer = setTimeout(() => stop(), Math.max(0, Math.min(ms, 2 ** 31 - 1)))
    const iterator = source[Symbol.asyncIterator]()
    void stop.then(() => iterator.return?.())
    try {
      for (;;) {
        const next = await Promise.race([
          iterator.next(),
          stop.then(() => ({ done: true, value: undefined }) as IteratorResult<T>),
        ])
        if (next.done) break
        await push(next.value)
      }
    } finally {
      clearTimeout(timer)
      stop()
    }
  })
}

/**
 * A per-customer topic of the principal's tenant, narrowed to one customer (always so for a
 * widget, which only ever sees its own customer's events).
 */
function customerStream<E extends { tenantId: string; customerId: string }>(
  source: (tenantId: string) => AsyncIterable<E>,
  principal: Principal | null,
  customerId: string | null | undefined,
  now: Date,
): AsyncIterable<E> {
  if (!principal)
    throw userError(
      'UNAUTHENTICATED',
      'A valid API key is required: send "Authorization: Bearer <key>" (over WebSocket: connectionParams { authorization }).',
    )
  if (customerId !== null && customerId !== undefined && customerId.length === 0)
    throw userError('BAD_USER_INPUT', 'customerId must not be empty', 'customerId')
  let only = customerId ?? null
  if (principal.kind === 'widget') {
    if (only !== null && only !== principal.customerId)
      throw userError('FORBIDDEN', 'This widget session belongs to another customer.')
    only = principal.customerId
  }
  const tenantId = principal.tenant.id
  const stream = pipe(
    source(tenantId),
    // The channel is the tenant already; the check stays as a second line of defence.
    filter((event: E) => event.tenantId === tenantId && (only === null || event.customerId === only)),
  )
  return principal.kind === 'widget' ? endAt(stream, principal.expiresAt, now) : stream
}

/** Alerts the principal may see: its tenant's, narrowed to one customer (always so for a widget). */
export function budgetAlertStream(
  pubsub: BurnratePubSub,
  principal: Principal | null,
  customerId: string | null | undefined,
  now: Date,
): AsyncIterable<BudgetAlertEvent> {
  return customerStream((tenantId) => pubsub.subscribe('budgetAlert', tenantId), principal, customerId, now)
}

/** Credit alerts the principal may see, like budgetAlertStream. */
export function creditAlertStream(
  pubsub: BurnratePubSub,
  principal: Principal | null,
  customerId: string | null | undefined,
  now: Date,
): AsyncIterable<CreditAlertEvent> {
  return customerStream((tenantId) => pubsub.subscribe('creditAlert', tenantId), principal, customerId, now)
}

/** Stripe alerts of the principal's tenant (a tenant key: the field refuses widget sessions), optionally one customer's. */
export function stripeAlertStream(
  pubsub: BurnratePubSub,
  principal: Principal | null,
  customerId: string | null | undefined,
  now: Date,
): AsyncIterable<StripeAlertEvent> {
  return customerStream((tenantId) => pubsub.subscribe('stripeAlert', tenantId), principal, customerId, now)
}

/** Usage changes the principal may see, like budgetAlertStream. */
export function usageUpdateStream(
  pubsub: BurnratePubSub,
  principal: Principal | null,
  customerId: string | null | undefined,
  now: Date,
): AsyncIterable<UsageUpdateEvent> {
  return customerStream((tenantId) => pubsub.subscribe('usageUpdate', tenantId), principal, customerId, now)
}

/** Public catalog changes plus the principal's tenant's own negotiated prices, optionally one provider. */
export function priceChangeStream(
  pubsub: BurnratePubSub,
  principal: Principal | null,
  provider: string | null | undefined,
  now: Date,
): AsyncIterable<PriceChangeEvent> {
  if (!principal)
    throw userError(
      'UNAUTHENTICATED',
      'A valid API key is required: send "Authorization: Bearer <key>" (over WebSocket: connectionParams { authorization }).',
    )
  const tenantId = principal.tenant.id
  const wanted = provider?.trim().toLowerCase() || null
  const stream = pipe(
    Repeater.merge([pubsub.subscribe('priceChange'), pubsub.subscribe('tenantPriceChange', tenantId)]),
    filter(
      (event: PriceChangeEvent) =>
        (event.tenantId === null || event.tenantId === tenantId) &&
        (wanted === null || event.provider.toLowerCase() === wanted),
    ),
  )
  return principal.kind === 'widget' ? endAt(stream, principal.expiresAt, now) : stream
}
