import type { ColumnType, Generated, Selectable } from 'kysely'

type Numeric = ColumnType<string, string, string>
type Timestamp = ColumnType<Date, Date | string, Date | string>
type Json<T> = ColumnType<T, string, string>

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
