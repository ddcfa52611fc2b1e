/**
 * What Stripe tells a tenant through its webhook route (stripe/webhooks.ts), once verified: meter
 * error reports fail the pushes they name (with an alert), invoice events keep invoice states.
 * Each event id is handled once; a failed handling is forgotten so that Stripe's redelivery retries it.
 */
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import type { StripeAlerts } from './alerts.ts'
import type { StripeClient } from './client.ts'
import { customerIdOfStripeCustomer } from './repository/accounts.ts'
import { forgetEvent, rememberEvent, upsertInvoice } from './repository/inbox.ts'
import { failReported } from './repository/pushes.ts'
import { minorPerMajor } from './units.ts'

export interface StripeEvent {
  id: string
  type: string
  created: number | string
  data?: unknown
  object?: string
}

interface SampleError {
  error_message?: string
  request?: { identifier?: string }
}
interface ErrorReportData {
  developer_message_summary?: string
  reason?: { error_types?: { code?: string; sample_errors?: SampleError[] }[] }
}

/** A paid Checkout Session that names a Burnrate customer: a prepaid credit top-up. */
interface PaidCheckout {
  sessionId: string
  customerId: string
  /** In the currency's major unit, exact. */
  amount: string
  currency: string
}

export interface InboxDeps {
  db: Db
  clock: Clock
  logger: Logger
  alerts: StripeAlerts
  clientFor(tenantId: string): Promise<StripeClient | null>
  /** Grants the credits a paid checkout bought (the credits domain; once per session). */
  onCheckoutPaid?: (tenantId: string, checkout: PaidCheckout) => Promise<void>
}

/** The Checkout Session metadata key that names the Burnrate customer a top-up is for. */
const CHECKOUT_CUSTOMER_METADATA = 'burnrate_customer_id'

/** 'duplicate' when the event was handled before; throws (and forgets it) when handling fails. */
export async function receiveEvent(
  deps: InboxDeps,
  tenantId: string,
  event: StripeEvent,
): Promise<'handled' | 'duplicate'> {
  if (!(await rememberEvent(deps.db, tenantId, event.id, event.type))) return 'duplicate'
  try {
    if (event.type === 'v1.billing.meter.error_report_triggered') await applyErrorReport(deps, tenantId, event)
    else if (event.type.startsWith('invoice.')) await applyInvoice(deps, tenantId, event)
    else if (event.type === 'checkout.session.completed' || event.type === 'checkout.session.async_payment_succeeded')
      await applyCheckout(deps, tenantId, event)
  } catch (error) {
    // Let Stripe redeliver: forget we saw it.
    await forgetEvent(deps.db, tenantId, event.id)
    throw error
  }
  return 'handled'
}

/**
 * Meter events are validated asynchronously: Stripe accepts a call, then reports the events it
 * could not apply. Those pushes become FAILED (visible in stripePushes, retryable with
 * retryStripePushes). A thin event (no data) is fetched from the API.
 */
async function applyErrorReport(
  { db, clock, logger, alerts, clientFor }: InboxDeps,
  tenantId: string,
  event: { id: string; data?: unknown },
) {
  let data = event.data as ErrorReportData | undefined
  if (!data) {
    const found = await clientFor(tenantId)
    if (!found) throw new Error('no Stripe key to fetch the event with')
    data = ((await found.client.v2.core.events.retrieve(event.id)) as unknown as { data?: ErrorReportData }).data
  }
  const now = clock.now()
  await alerts.transaction(db, async (trx, raise) => {
    for (const type of data?.reason?.error_types ?? []) {
      for (const sample of type.sample_errors ?? []) {
        const identifier = sample.request?.identifier
        if (!identifier) continue
        const reason = `Stripe error report: ${type.code ?? 'error'}: ${sample.error_message ?? ''}`.slice(0, 500)
        const failed = await failReported(trx, tenantId, identifier, reason)
        // The push and its stripe.push_failed alert commit together (a redelivered report is a no-op).
        if (failed) await raise.meterEvent('stripe.push_failed', failed, reason, now)
      }
    }
  })
  logger.warn('stripe meter error report', { tenantId, eventId: event.id, summary: data?.developer_message_summary })
}

/**
 * A Checkout Session paid for prepaid credits: `metadata.burnrate_customer_id` names the customer,
 * `amount_total` (minor units) in `currency` is the amount granted. A session still unpaid (an
 * asynchronous payment method) is granted on `checkout.session.async_payment_succeeded`. Sessions
 * without the metadata key are not ours to act on.
 */
async function applyCheckout(deps: InboxDeps, tenantId: string, event: { id: string; data?: unknown }) {
  const session = (event.data as { object?: Record<string, unknown> } | undefined)?.object
  if (!session || session.object !== 'checkout.session' || typeof session.id !== 'string') return
  const metadata = (session.metadata ?? {}) as Record<string, unknown>
  const customerId = metadata[CHECKOUT_CUSTOMER_METADATA]
  if (typeof customerId !== 'string' || customerId.length === 0) return
  if (session.payment_status !== 'paid') return
  const total = session.amount_total
  const currency = session.currency
  if (typeof total !== 'number' || !Number.isSafeInteger(total) || total <= 0 || typeof currency !== 'string') {
    deps.logger.warn('stripe checkout without a positive amount_total: no credits granted', {
      tenantId,
      eventId: event.id,
    })
    return
  }
  await deps.onCheckoutPaid?.(tenantId, {
    sessionId: session.id,
    customerId,
    amount: new Decimal(total).dividedBy(minorPerMajor(currency)).toFixed(),
    currency: currency.toUpperCase(),
  })
}

async function applyInvoice(
  { db, clock }: InboxDeps,
  tenantId: string,
  event: { type: string; created: number | string; data?: unknown },
) {
  const invoice = (event.data as { object?: Record<string, unknown> } | undefined)?.object
  if (
    !invoice ||
    invoice.object !== 'invoice' ||
    typeof invoice.id !== 'string' ||
    typeof invoice.customer !== 'string'
  )
    return
  const created =
    typeof event.created === 'number' ? event.created : Math.floor(new Date(event.created).getTime() / 1000)
  const customerId = await customerIdOfStripeCustomer(db, tenantId, invoice.customer)
  const seconds = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000) : null)
  // Events arrive out of order: an older event never overwrites a newer state.
  await upsertInvoice(db, tenantId, invoice.id, {
    stripe_customer_id: invoice.customer,
    customer_id: customerId ?? null,
    status: typeof invoice.status === 'string' ? invoice.status : null,
    currency: typeof invoice.currency === 'string' ? invoice.currency : null,
    total: typeof invoice.total === 'number' ? invoice.total : null,
    period_start: seconds(invoice.period_start),
    period_end: seconds(invoice.period_end),
    hosted_invoice_url: typeof invoice.hosted_invoice_url === 'string' ? invoice.hosted_invoice_url : null,
    event_created: created,
    updated_at: clock.now(),
  })
}
