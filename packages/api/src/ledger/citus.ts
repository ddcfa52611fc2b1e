/**
 * How each table would be laid out on Citus (docs/scaling.md), checked against the PostgreSQL
 * catalog by test/ledger/citus-readiness.test.ts:
 *
 * - `distributed`: tenant data, sharded by its tenant column; every primary key and unique
 *   constraint includes it, and a foreign key to another distributed table carries it.
 * - `reference`: small tables every node holds a full copy of (the public price catalog and its
 *   sync bookkeeping); joined freely from distributed tables.
 * - `local`: bookkeeping of the coordinator only (migrations).
 *
 * Tenants are a reference table: few rows, written rarely, read on every request by API key.
 */
export type CitusTable = { type: 'distributed'; column: string } | { type: 'reference' } | { type: 'local' }

const byTenant: CitusTable = { type: 'distributed', column: 'tenant_id' }
const reference: CitusTable = { type: 'reference' }

export const CITUS_TABLES: Readonly<Record<string, CitusTable>> = {
  // Small, written rarely, looked up by API key hash on every request: a copy on every node.
  tenants: reference,
  // Looked up by hash (keys, console sessions) before the tenant is known, like tenants.
  api_keys: reference,
  console_sessions: reference,
  audit_log: byTenant,
  customers: byTenant,
  pricing_plans: byTenant,
  usage_events: byTenant,
  usage_event_keys: byTenant,
  usage_rollups: byTenant,
  usage_line_rollups: byTenant,
  usage_corrections: byTenant,
  widget_sessions: byTenant,
  budgets: byTenant,
  budget_spend: byTenant,
  budget_alerts: byTenant,
  budget_reservations: byTenant,
  credit_grants: byTenant,
  credit_ledger: byTenant,
  credit_settings: byTenant,
  credit_alerts: byTenant,
  webhook_endpoints: byTenant,
  webhook_events: byTenant,
  webhook_deliveries: byTenant,
  webhook_attempts: byTenant,
  gateway_provider_keys: byTenant,
  stripe_accounts: byTenant,
  stripe_invoices: byTenant,
  stripe_outbox: byTenant,
  stripe_push_state: byTenant,
  stripe_pushes: byTenant,
  stripe_webhook_events: byTenant,
  provider_admin_keys: byTenant,
  provider_usage_revisions: byTenant,
  reconciliation_alerts: byTenant,
  reconciliation_settings: byTenant,
  export_jobs: byTenant,
  rating_plans: byTenant,
  rating_counters: byTenant,
  rating_reratings: byTenant,
  price_catalog: reference,
  price_change_log: reference,
  catalog_state: reference,
  catalog_source_state: reference,
  catalog_sync_runs: reference,
  catalog_feed_issues: reference,
  catalog_pending_changes: reference,
  // Operator bookkeeping of the whole ledger (which month partitions were archived and dropped).
  retention_runs: { type: 'local' },
  kysely_migration: { type: 'local' },
  kysely_migration_lock: { type: 'local' },
}

/**
 * What the schema still breaks today, as the test reports it: keys of tenant data without
 * tenant_id (ids that are globally unique by construction, but Citus needs the distribution column
 * in every unique constraint) and foreign keys by id alone. The test fails on anything not listed
 * here, and on a listed entry that no longer occurs, so this list only shrinks. Each fix is a
 * migration that widens the key to (tenant_id, id) and the ON CONFLICT targets that use it.
 */
export const KNOWN_CITUS_VIOLATIONS: readonly string[] = [
  'budget_spend: no column tenant_id',
  'webhook_attempts: no column tenant_id',
  'pricing_plans.pricing_plans_pkey (id) lacks tenant_id',
  'budget_spend.budget_spend_pk (budget_id, period_start) lacks tenant_id',
  'budget_alerts.budget_alerts_pkey (id) lacks tenant_id',
  'budget_alerts.budget_alerts_once (budget_id, period_start, kind, threshold) lacks tenant_id',
  'budget_reservations.budget_reservations_pkey (id) lacks tenant_id',
  'webhook_events.webhook_events_pkey (id) lacks tenant_id',
  'webhook_deliveries.webhook_deliveries_pkey (id) lacks tenant_id',
  'webhook_deliveries.webhook_deliveries_once (endpoint_id, event_id) lacks tenant_id',
  'usage_corrections.usage_corrections_pkey (id) lacks tenant_id',
  'webhook_endpoints.webhook_endpoints_pkey (id) lacks tenant_id',
  'webhook_attempts.webhook_attempts_pk (delivery_id, attempt) lacks tenant_id',
  'widget_sessions.widget_sessions_pkey (id) lacks tenant_id',
  'widget_sessions.widget_sessions_token_hash_key (token_hash) lacks tenant_id',
  'budgets.budgets_pkey (id) lacks tenant_id',
  'stripe_pushes.stripe_pushes_pkey (identifier) lacks tenant_id',
  'provider_usage_revisions.provider_usage_revisions_pkey (id) lacks tenant_id',
  'reconciliation_alerts.reconciliation_alerts_pkey (id) lacks tenant_id',
  'budget_spend.budget_spend_budget_id_fkey (budget_id) -> budgets (id) does not carry the tenant',
  'budget_alerts.budget_alerts_budget_id_fkey (budget_id) -> budgets (id) does not carry the tenant',
  'webhook_deliveries.webhook_deliveries_endpoint_id_fkey (endpoint_id) -> webhook_endpoints (id) does not carry the tenant',
  'webhook_deliveries.webhook_deliveries_event_id_fkey (event_id) -> webhook_events (id) does not carry the tenant',
  'webhook_attempts.webhook_attempts_delivery_id_fkey (delivery_id) -> webhook_deliveries (id) does not carry the tenant',
]
