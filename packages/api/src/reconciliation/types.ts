import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db, Executor } from '../db/database.ts'
import type { ReportingProvider, Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { BurnratePubSub, ReconciliationAlertEvent } from '../pubsub.ts'
import type { Fetch } from './clients.ts'
import type { ReconciliationRow } from './reconcile.ts'

export interface AdminKeyView {
  provider: ReportingProvider
  hint: string
  updatedAt: Date
  lastImportAt: Date | null
  lastImportError: string | null
}

export interface ImportSummary {
  provider: ReportingProvider
  from: Date
  to: Date
  /** Provider buckets read. */
  buckets: number
  /** Buckets seen for the first time. */
  inserted: number
  /** Buckets whose figures changed: stored as a new revision. */
  revised: number
  unchanged: number
  /** Set when the import failed; nothing of it was stored. */
  error: string | null
}

export interface ReconciliationTable {
  from: Date
  to: Date
  currency: string
  tolerancePercent: string
  rows: ReconciliationRow[]
}

export interface ReconciliationService {
  readonly enabled: boolean
  setAdminKey(tenant: Tenant, provider: ReportingProvider, apiKey: string): Promise<AdminKeyView>
  deleteAdminKey(tenant: Tenant, provider: ReportingProvider): Promise<boolean>
  adminKeys(tenant: Tenant): Promise<AdminKeyView[]>
  tolerancePercent(tenant: Tenant): Promise<string>
  setTolerancePercent(tenant: Tenant, percent: string): Promise<string>
  /** Imports the providers' reports for [from, to) (UTC days), then raises alerts for the complete days. */
  importUsage(
    tenant: Tenant,
    options: { provider?: ReportingProvider | null; from?: Date | null; to?: Date | null },
  ): Promise<ImportSummary[]>
  reconciliation(tenant: Tenant, options: TableOptions): Promise<ReconciliationTable>
  reconciliationCsv(tenant: Tenant, options: TableOptions): Promise<string>
  alerts(tenant: Tenant, from: Date, to: Date): Promise<ReconciliationAlertEvent[]>
  /** One scheduled round: every tenant and provider with a key whose last import is older than the interval. */
  runScheduled(): Promise<void>
  start(): void
  stop(): Promise<void>
}

export interface ReconciliationDeps {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  pubsub: BurnratePubSub
  /** Reaches provider report APIs; defaults to the global fetch. */
  fetch?: Fetch
  /** Waits between retries; defaults to a timer. */
  sleep?: (ms: number) => Promise<void>
  /** The catalog's name for a reported model (catalog.resolve); providers report dated model ids. */
  resolveModel?: (model: string, provider: string, tenantId: string) => { provider: string; model: string } | null
  /** Reloads the catalog snapshot resolveModel reads when another process changed it. */
  refreshCatalog?: () => Promise<void>
  /** Enqueues a webhook event in the caller's transaction (webhooks/service.ts). */
  enqueueWebhook: (
    trx: Executor,
    event: { tenantId: string; type: 'reconciliation.alert'; dedupeKey: string; payload: Record<string, unknown> },
  ) => Promise<unknown>
}

/** A reconciliation table's range and filters, as the queries take them. */
export interface TableOptions {
  from: Date
  to: Date
  provider?: string | null
  onlyDifferences?: boolean | null
}
