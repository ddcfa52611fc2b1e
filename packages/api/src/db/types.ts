import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'
import type { GatewayTables } from '../gateway/db-types.ts'
import type { StripeTables } from '../stripe/db-types.ts'
import type { WebhookTables } from '../webhooks/db-types.ts'

/** Row shapes of a table for code outside repositories (which may not import 'kysely'). */
export type { Insertable, Selectable, Updateable } from 'kysely'

/** NUMERIC columns: read as exact decimal strings, written from strings. */
type Numeric = ColumnType<string, string, string>
/** int8 columns are parsed to JS numbers by both drivers (counts and token sums stay far below 2^53). */
type Int8 = ColumnType<number, number | undefined, number>
type Timestamp = ColumnType<Date, Date | string, Date | string>
type Json<T> = ColumnType<T, string, string>

export interface TenantTable {
  id: string
  name: string
  api_key_hash: string
  api_key_prefix: string
  signing_secret: string
  require_signatures: Generated<boolean>
  currency: Generated<string>
  created_at: Generated<Date>
  /** Origins allowed to use this tenant's widget tokens in browsers; null: not restricted. */
  widget_origins: Json<string[] | null> | null
  /** IANA time zone of the customers' budget periods. */
  budget_time_zone: Generated<string>
}

export interface CustomerTable {
  tenant_id: string
  id: string
  name: string | null
  stripe_customer_id: string | null
  created_at: Generated<Date>
}

export interface PricingPlanTable {
  id: Generated<number>
  tenant_id: string
  customer_id: string | null
  kind: 'MARKUP' | 'MARGIN'
  percent: Numeric
  effective_from: Timestamp
  created_at: Generated<Date>
}

export interface PriceTierJson {
  /** The tier applies when the event's total input tokens exceed `start`. */
  start: number
  unitPrice: string
}

export interface TimeWindowJson {
  /** Seconds after 00:00 UTC, [start, end); end < start wraps past midnight. */
  startSecond: number
  endSecond: number
}

export interface PriceCatalogTable {
  id: Generated<number>
  provider: string
  model: string
  usage_type: string
  unit: string
  unit_price: Numeric
  currency: Generated<string>
  tiers: Json<PriceTierJson[] | null> | null
  time_window: Json<TimeWindowJson | null> | null
  effective_from: Timestamp
  effective_to: Timestamp | null
  source: string
  source_version: string
  tenant_id: string | null
  created_at: Generated<Date>
}

export interface CatalogStateTable {
  id: number
  version: Int8
  updated_at: Timestamp
}

export interface PricedLineJson {
  usageType: string
  quantity: string
  unitPrice: string
  cost: string
  amount: string
  priceId: string
}

export interface UnpricedReasonJson {
  code: 'UNKNOWN_MODEL' | 'NO_PRICE_AT_TIME' | 'MISSING_USAGE_PRICE'
  usageTypes: string[]
}

export interface UnitQuantityJson {
  unit: string
  quantity: string
}

export interface UsageEventTable {
  tenant_id: string
  id: string
  seq: Generated<number>
  customer_id: string
  model: string
  provider: string | null
  canonical_provider: string | null
  canonical_model: string | null
  ts: Timestamp
  received_at: Timestamp
  status: 'PRICED' | 'UNPRICED'
  cost: Numeric | null
  amount: Numeric | null
  currency: string
  input_tokens: Int8
  output_tokens: Int8
  cache_read_tokens: Int8
  cache_write_tokens: Int8
  reasoning_tokens: Int8
  units: Json<UnitQuantityJson[] | null> | null
  feature: string | null
  metadata: Json<Record<string, unknown> | null> | null
  lines: Json<PricedLineJson[]>
  plan_kind: 'MARKUP' | 'MARGIN' | null
  plan_percent: Numeric | null
  content_hash: string
  /** The budget reservation this event settles, if any. */
  reservation_id: string | null
  /** Why the event is UNPRICED; null when priced (and for events stored before reasons were kept). */
  unpriced_reason: Json<UnpricedReasonJson | null> | null
}

/**
 * The idempotency key of every event ever stored, kept for good (also once retention dropped the
 * raw event's partition): usage_events is partitioned by month and cannot hold a unique (tenant_id, id).
 */
export interface UsageEventKeyTable {
  tenant_id: string
  id: string
  ts: Timestamp
  content_hash: string
}

/** One row per tenant, customer, UTC hour, provider, model and feature ('' stands for none). */
export interface UsageRollupTable {
  tenant_id: string
  customer_id: string
  bucket: Timestamp
  provider: string
  model: string
  feature: string
  events: Int8
  unpriced_events: Int8
  input_tokens: Int8
  output_tokens: Int8
  cost: Numeric
  amount: Numeric
}

/** Same key plus the priced line's usage type: what USAGE_TYPE breakdowns read. */
export interface UsageLineRollupTable {
  tenant_id: string
  customer_id: string
  bucket: Timestamp
  provider: string
  model: string
  feature: string
  usage_type: string
  events: Int8
  quantity: Numeric
  cost: Numeric
  amount: Numeric
}

export interface WidgetSessionTable {
  id: string
  tenant_id: string
  customer_id: string
  token_hash: string
  expires_at: Timestamp
  created_at: Timestamp
  /** false: the session reads amounts only, never unit prices, catalog rows, plans or cost. */
  price_details: Generated<boolean>
}

export interface BudgetTable {
  id: string
  tenant_id: string
  customer_id: string
  period: 'DAY' | 'WEEK' | 'MONTH'
  time_zone: string
  limit_amount: Numeric
  thresholds: Json<number[]>
  hard_limit: boolean
  /** Whether a FORECAST alert may be raised (opt-in; threshold alerts always are). */
  forecast_alerts: Generated<boolean>
  currency: string
  counted_from: Timestamp
  created_at: Timestamp
  updated_at: Timestamp
}

/** Billed amount per budget and period, kept by ingest. */
export interface BudgetSpendTable {
  budget_id: string
  period_start: Timestamp
  spent: Numeric
}

export interface BudgetAlertTable {
  id: Generated<number>
  tenant_id: string
  customer_id: string
  budget_id: string
  period_start: Timestamp
  kind: 'THRESHOLD' | 'FORECAST'
  threshold: number
  spent: Numeric
  limit_amount: Numeric
  forecast: Numeric | null
  triggered_at: Timestamp
}

export interface BudgetReservationTable {
  id: string
  tenant_id: string
  customer_id: string
  amount: Numeric
  created_at: Timestamp
  expires_at: Timestamp
  settled_at: Timestamp | null
  settled_event_id: string | null
  settled_amount: Numeric | null
}

export interface PriceChangeLogTable {
  id: Generated<number>
  tenant_id: string | null
  provider: string
  model: string
  usage_type: string
  old_unit_price: Numeric | null
  new_unit_price: Numeric | null
  effective_from: Timestamp
  source: string
  source_version: string
  price_id: Int8 | null
  changed_at: Timestamp
}

export interface CatalogPendingChangeTable {
  id: Generated<number>
  source: string
  source_version: string
  provider: string
  model: string
  usage_type: string
  time_window: string
  old_unit_price: Numeric
  new_unit_price: Numeric
  /** The source's rows for this timeline (NormalizedPrice with ISO dates), applied on confirmation. */
  prices: Json<unknown[]>
  observed_at: Timestamp
  status: 'PENDING' | 'CONFIRMED' | 'REJECTED'
  resolved_at: Timestamp | null
}

export interface CatalogSourceStateTable {
  source: string
  lease_until: Timestamp | null
  next_attempt_at: Timestamp
  failures: Generated<number>
  last_attempt_at: Timestamp | null
  last_success_at: Timestamp | null
  last_error: string | null
  last_summary: Json<Record<string, unknown> | null> | null
}

/** One sync of a whole public source, with its counts. */
export interface CatalogSyncRunTable {
  id: Generated<number>
  source: string
  source_version: string
  observed_at: Timestamp
  finished_at: Timestamp
  models: number
  rows_opened: number
  rows_closed: number
  unchanged: number
  held: number
  rejected: number
  skipped: number
  corrections: number
}

/** What a feed stated that became no catalog row; stored once per (source, source_version). */
export interface CatalogFeedIssueTable {
  id: Generated<number>
  /** The first run that saw this feed version. */
  sync_run_id: number
  source: string
  source_version: string
  kind: 'REJECTED' | 'SKIPPED'
  model: string
  field: string | null
  raw_value: string | null
  reason: string
}

export interface UsageCorrectionTable {
  id: Generated<number>
  tenant_id: string
  event_id: string
  customer_id: string
  ts: Timestamp
  provider: string
  model: string
  feature: string
  old_lines: Json<PricedLineJson[]>
  new_lines: Json<PricedLineJson[]>
  old_cost: Numeric
  new_cost: Numeric
  old_amount: Numeric
  new_amount: Numeric
  reason: string
  created_at: Timestamp
}

export interface DB extends WebhookTables, StripeTables, GatewayTables, ReconciliationTables {
  tenants: TenantTable
  customers: CustomerTable
  pricing_plans: PricingPlanTable
  price_catalog: PriceCatalogTable
  catalog_state: CatalogStateTable
  usage_events: UsageEventTable
  usage_event_keys: UsageEventKeyTable
  usage_rollups: UsageRollupTable
  usage_line_rollups: UsageLineRollupTable
  widget_sessions: WidgetSessionTable
  budgets: BudgetTable
  budget_spend: BudgetSpendTable
  budget_alerts: BudgetAlertTable
  budget_reservations: BudgetReservationTable
  price_change_log: PriceChangeLogTable
  catalog_pending_changes: CatalogPendingChangeTable
  catalog_source_state: CatalogSourceStateTable
  catalog_sync_runs: CatalogSyncRunTable
  catalog_feed_issues: CatalogFeedIssueTable
  usage_corrections: UsageCorrectionTable
}

export type Tenant = Selectable<TenantTable>
export type Customer = Selectable<CustomerTable>
export type PricingPlanRow = Selectable<PricingPlanTable>
export type PriceCatalogRow = Selectable<PriceCatalogTable>
export type NewPriceCatalogRow = Insertable<PriceCatalogTable>
export type UsageEventRow = Selectable<UsageEventTable>
export type WidgetSessionRow = Selectable<WidgetSessionTable>
export type BudgetRow = Selectable<BudgetTable>
export type BudgetAlertRow = Selectable<BudgetAlertTable>
export type BudgetReservationRow = Selectable<BudgetReservationTable>

// ---- Provider reconciliation (reconciliation/) ----

export type ReportingProvider = 'openai' | 'anthropic' | 'openrouter'

/** A tenant's provider admin key (usage and cost reports), sealed; never returned by the API. */
export interface ProviderAdminKeyTable {
  tenant_id: string
  provider: ReportingProvider
  key_enc: string
  key_hint: string
  created_at: Generated<Date>
  updated_at: Timestamp
  last_import_at: Timestamp | null
  last_import_error: string | null
}

export interface ReconciliationSettingsTable {
  tenant_id: string
  tolerance_percent: Numeric
  updated_at: Timestamp
}

/** One revision of one provider bucket, append-only. */
export interface ProviderUsageRevisionTable {
  id: Generated<number>
  tenant_id: string
  provider: string
  source: 'usage' | 'cost' | 'generation' | 'credits'
  bucket_start: Timestamp
  bucket_width: string
  model: string
  usage_type: string
  line: string
  revision: number
  quantity: Numeric | null
  cost: Numeric | null
  currency: string
  content_hash: string
  imported_at: Timestamp
}

export interface ReconciliationAlertTable {
  id: Generated<number>
  tenant_id: string
  provider: string
  day: Timestamp
  kind: string
  details: Json<Record<string, unknown>>
  raised_at: Timestamp
}

export type ProviderAdminKeyRow = Selectable<ProviderAdminKeyTable>
export type ProviderUsageRevisionRow = Selectable<ProviderUsageRevisionTable>
export type ReconciliationAlertRow = Selectable<ReconciliationAlertTable>

export interface ReconciliationTables {
  provider_admin_keys: ProviderAdminKeyTable
  reconciliation_settings: ReconciliationSettingsTable
  provider_usage_revisions: ProviderUsageRevisionTable
  reconciliation_alerts: ReconciliationAlertTable
}
