/** SQL of what Stripe sends the tenant's webhook route: seen event ids and invoice states. */
import type { Executor } from '../../db/database.ts'
import type { StripeInvoiceRow } from '../db-types.ts'

/** Remembers an event id; false when it was seen before (a redelivery). */
export async function rememberEvent(db: Executor, tenantId: string, eventId: string, type: string): Promise<boolean> {
  const fresh = await db
    .insertInto('stripe_webhook_events')
    .values({ tenant_id: tenantId, event_id: eventId, type })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst()
  return Number(fresh.numInsertedOrUpdatedRows ?? 0n) > 0
}

export async function forgetEvent(db: Executor, tenantId: string, eventId: string): Promise<void> {
  await db
    .deleteFrom('stripe_webhook_events')
    .where('tenant_id', '=', tenantId)
    .where('event_id', '=', eventId)
    .execute()
}

export interface InvoiceState {
  stripe_customer_id: string
  customer_id: string | null
  status: string | null
  currency: string | null
  total: number | null
  period_start: Date | null
  period_end: Date | null
  hosted_invoice_url: string | null
  /** Stripe's `created` of the event that carried this state (unix seconds). */
  event_created: number
  updated_at: Date
}

/** Stores an invoice's state unless a newer event (by Stripe's `created`) stored one already. */
export async function upsertInvoice(
  db: Executor,
  tenantId: string,
  invoiceId: string,
  values: InvoiceState,
): Promise<void> {
  await db
    .insertInto('stripe_invoices')
    .values({ tenant_id: tenantId, invoice_id: invoiceId, ...values })
    .onConflict((oc) =>
      oc
        .columns(['tenant_id', 'invoice_id'])
        .doUpdateSet(values)
        .where('stripe_invoices.event_created', '<=', values.event_created),
    )
    .execute()
}

/** Latest period first, at most 500. */
export function listInvoices(db: Executor, tenantId: string, customerId: string | null): Promise<StripeInvoiceRow[]> {
  let query = db.selectFrom('stripe_invoices').selectAll().where('tenant_id', '=', tenantId)
  if (customerId) query = query.where('customer_id', '=', customerId)
  return query.orderBy('period_start', 'desc').limit(500).execute()
}
