/**
 * The database's types. Tables come from src/db/generated.ts, generated from the migrated database
 * (`npx pnpm@10 run db:types`); JSON shapes and CHECK-constrained values from column-types.ts. The
 * names below are the ones domain code uses.
 */
import type { Selectable } from 'kysely'
import type * as G from './generated.ts'

/** Row shapes of a table for code outside repositories (which may not import 'kysely'). */
export type { Insertable, Selectable } from 'kysely'
export type * from './column-types.ts'

export type DB = G.DB

type TenantTable = G.Tenants
/** API keys with a role; the first of a tenant is its "default" ADMIN key. */
export type ApiKeyTable = G.ApiKeys
/** Console sign-ins, keyed by the SHA-256 of the cookie's value. */
export type ConsoleSessionTable = G.ConsoleSessions
type CustomerTable = G.Customers
type PricingPlanTable = G.PricingPlans
type PriceCatalogTable = G.PriceCatalog
export type UsageEventTable = G.UsageEvents
export type UsageRollupTable = G.UsageRollups
export type UsageLineRollupTable = G.UsageLineRollups
export type WidgetSessionTable = G.WidgetSessions
type BudgetTable = G.Budgets
type BudgetAlertTable = G.BudgetAlerts
type BudgetReservationTable = G.BudgetReservations
export type PriceChangeLogTable = G.PriceChangeLog
export type CatalogPendingChangeTable = G.CatalogPendingChanges
export type CatalogSourceStateTable = G.CatalogSourceState
export type CatalogSyncRunTable = G.CatalogSyncRuns
export type CatalogFeedIssueTable = G.CatalogFeedIssues
export type UsageCorrectionTable = G.UsageCorrections

export type Tenant = Selectable<TenantTable>
export type Customer = Selectable<CustomerTable>
export type PricingPlanRow = Selectable<PricingPlanTable>
export type PriceCatalogRow = Selectable<PriceCatalogTable>
export type UsageEventRow = Selectable<UsageEventTable>
export type BudgetRow = Selectable<BudgetTable>
export type BudgetAlertRow = Selectable<BudgetAlertTable>
export type BudgetReservationRow = Selectable<BudgetReservationTable>

// ---- Prepaid credits (credits/) ----

export type CreditGrantRow = Selectable<G.CreditGrants>
export type CreditLedgerRow = Selectable<G.CreditLedger>
export type CreditAlertRow = Selectable<G.CreditAlerts>
export type CreditSettingsRow = Selectable<G.CreditSettings>

// ---- Provider reconciliation (reconciliation/) ----

/** A tenant's provider admin key (usage and cost reports), sealed; never returned by the API. */
type ProviderAdminKeyTable = G.ProviderAdminKeys
/** One revision of one provider bucket, append-only. */
type ProviderUsageRevisionTable = G.ProviderUsageRevisions
type ReconciliationAlertTable = G.ReconciliationAlerts

export type ProviderAdminKeyRow = Selectable<ProviderAdminKeyTable>
export type ProviderUsageRevisionRow = Selectable<ProviderUsageRevisionTable>
export type ReconciliationAlertRow = Selectable<ReconciliationAlertTable>
