import type { ColumnType, Generated, Selectable } from 'kysely'

type Numeric = ColumnType<string, string, string>
type Int8 = ColumnType<number, number | undefined, number>
type Timestamp = ColumnType<Date, Date | string, Date | string>

export type StripeReportingMode = 'AMOUNT' | 'ITEMIZED'
export type StripePushStatus = 'PENDING' | 'SENT' | 'FAILED' | 'EXPIRED' | 'SUPERSEDED'

export interface StripeAccountTable {
  tenant_id: string
  /** AES-256-GCM ciphertext (see crypto.ts); the key itself is never stored or returned. */
  secret_key_enc: string
  key_hint: string
  /** Signing secret of the snapshot-event destination. */
  webhook_secret_enc: string | null
  /** Signing secret of the thin-event (v2) destination. */
  thin_webhook_secret_enc: Generated<string | null>
  mode: Generated<StripeReportingMode>
  currency: string
  /** Reporting units per major currency unit (USD: 100,000, one unit = 1/1000 of a cent). */
  units_per_major: Numeric
  event_name: string | null
  meter_id: string | null
  product_id: string | null
  price_id: string | null
  setup_at: Timestamp | null
  updated_at: Generated<Date>
}

export interface StripeOutboxTable {
  tenant_id: string
  event_id: string
  /** '' in AMOUNT mode; `model|usageType` in ITEMIZED mode. */
  dimension: string
  customer_id: string
  window_start: Timestamp
  amount: Numeric
  planned_at: Timestamp | null
  push_identifier: string | null
  created_at: Generated<Date>
}

export interface StripePushStateTable {
  tenant_id: string
  customer_id: string
  dimension: string
  /** Billed amount (currency) not yet reported because it is below one unit. */
  residue: Generated<string>
  next_seq: Generated<number>
  lease_owner: string | null
  lease_until: Timestamp | null
}

export interface StripePushTable {
  identifier: string
  tenant_id: string
  customer_id: string
  dimension: string
  stripe_customer_id: string
  event_name: string
  window_start: Timestamp
  seq: number
  value: Int8
  status: StripePushStatus
  attempts: Generated<number>
  last_error: string | null
  next_attempt_at: Timestamp
  created_at: Timestamp
  sent_at: Timestamp | null
  retry_of: string | null
  /** Idempotency-Key of the next attempt; null: the identifier. */
  idempotency_key: Generated<string | null>
  /** FAILED because its attempts ran out, not because Stripe refused it. */
  gave_up: Generated<boolean>
  /** retryStripePushes calls that re-queued this push under its own identifier. */
  manual_retries: Generated<number>
}

export interface StripeInvoiceTable {
  tenant_id: string
  invoice_id: string
  stripe_customer_id: string
  customer_id: string | null
  status: string | null
  currency: string | null
  total: Int8 | null
  period_start: Timestamp | null
  period_end: Timestamp | null
  hosted_invoice_url: string | null
  event_created: Int8
  updated_at: Generated<Date>
}

export interface StripeWebhookEventTable {
  tenant_id: string
  event_id: string
  type: string
  received_at: Generated<Date>
}

export interface StripeTables {
  stripe_accounts: StripeAccountTable
  stripe_outbox: StripeOutboxTable
  stripe_push_state: StripePushStateTable
  stripe_pushes: StripePushTable
  stripe_invoices: StripeInvoiceTable
  stripe_webhook_events: StripeWebhookEventTable
}

export type StripeAccountRow = Selectable<StripeAccountTable>
export type StripePushRow = Selectable<StripePushTable>
export type StripeInvoiceRow = Selectable<StripeInvoiceTable>
