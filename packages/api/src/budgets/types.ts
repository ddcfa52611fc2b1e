/**
 * What the budgets domain offers (BudgetService) and what it is built from (BudgetDeps): the
 * shapes its use-case modules share. The service is composed in service.ts.
 */
import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor, Tx } from '../db/database.ts'
import type { BudgetAlertRow, BudgetReservationRow, BudgetRow, Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { BurnratePubSub } from '../pubsub.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'
import type { EventError, ValidEvent } from '../usage/validation.ts'
import type { BudgetPeriodName } from './periods.ts'

export interface BudgetInput {
  customerId: string
  period: BudgetPeriodName
  limit: string
  thresholds?: readonly number[] | null
  hardLimit?: boolean | null
  timeZone?: string | null
  forecastAlerts?: boolean | null
}

/** A budget as of `now`: its current period and what is spent, held and projected in it. */
export interface BudgetView {
  row: BudgetRow
  periodStart: Date
  periodEnd: Date
  spent: string
  /** Held by the customer's active reservations. */
  reserved: string
  forecast: string
}

/** How much of a budget's limit its current period has spent. */
export interface BudgetUse {
  budgetId: string
  period: BudgetPeriodName
  spent: string
  limit: string
  /** spent / limit × 100, 2 decimal places. */
  percent: string
}

export interface BudgetCheckView {
  allowed: boolean
  remaining: string | null
  budget: BudgetView | null
  /** Prepaid-only customers: their credits (balance, and what reservations leave of it); else null. */
  credits: { balance: string; available: string; allowed: boolean } | null
}

/**
 * The prepaid-credits hard stop (credits/gate.ts prepaidGate): whether the customer's plan is
 * prepaid-only now and what its credits hold; with `lock`, its grants are locked in that transaction.
 */
type PrepaidGate = (
  executor: Executor,
  tenantId: string,
  customerId: string,
  now: Date,
  options?: { lock?: Tx },
) => Promise<{ prepaidOnly: boolean; balance: string }>

export interface ReservationResult {
  granted: boolean
  reservation: BudgetReservationRow | null
  check: BudgetCheckView
}

export interface BudgetService {
  setBudget(tenant: Tenant, input: BudgetInput): Promise<BudgetView>
  /** deleteBudget: the budget, its spend counters and its alerts go; returns the id (NOT_FOUND if none). */
  deleteBudget(tenant: Tenant, id: string): Promise<string>
  budgets(tenant: Tenant, customerId: string): Promise<BudgetView[]>
  /**
   * For each customer with a budget, the one nearest its limit in its current period (spent as a
   * percentage of the limit): two reads for the whole batch, whatever its size.
   */
  budgetUse(tenantId: string, customerIds: readonly string[]): Promise<Map<string, BudgetUse>>
  alerts(tenant: Tenant, customerId: string, first: number | null | undefined): Promise<BudgetAlertRow[]>
  check(tenant: Tenant, customerId: string, estimate: string | null | undefined): Promise<BudgetCheckView>
  /** Whether any of the customer's budgets has a hard limit: one indexed read, no spend computed. */
  hasHardLimit(tenant: Tenant, customerId: string): Promise<boolean>
  /**
   * Holds `amount` against the customer's hard limits and credits. With `minAmount` (the gateway's
   * leases) it holds `amount` or half of what the limits leave, whichever is less, and is refused
   * when that half is under `minAmount`; the reservation's amount says what was held.
   */
  reserve(
    tenant: Tenant,
    input: { customerId: string; amount: string; minAmount?: string | null; ttlSeconds?: number | null },
  ): Promise<ReservationResult>
  release(tenant: Tenant, reservationId: string): Promise<BudgetReservationRow | null>
  /** What the customer's active reservations hold now. */
  reservedAmount(executor: Executor, tenantId: string, customerId: string, now: Date): Promise<string>
  /**
   * Ingest step `budgets.reservations` (usage/pipeline.ts): an event may settle only a reservation
   * of its customer that is neither released nor settled by another event.
   */
  checkReservations(tenant: Tenant, events: readonly ValidEvent[]): Promise<(EventError | null)[]>
  /**
   * Ingest step `budgets.spend`: settles the reservations the new events name, adds their amounts
   * to budget spend and appends the alerts that raises to `batch.alertsRaised`.
   */
  followIngest(trx: Tx, batch: IngestBatch): Promise<void>
  /** Billed-change step `budgets.spend`: the same for late pricing and corrections of stored events. */
  followChanges(trx: Tx, batch: BilledChangeBatch): Promise<void>
  /** Step `budgets.publishAlerts` of both pipelines, after commit: subscribers hear of the alerts raised. */
  publishAlerts(batch: { alertsRaised: readonly BudgetAlertRow[] }): Promise<void>
}

/** What the budgets service is built from (services.ts passes it); each use case takes the part it needs. */
export interface BudgetDeps {
  db: Db
  clock: Clock
  /** Records setBudget and deleteBudget in their transactions. */
  audit?: AuditService
  logger: Logger
  pubsub: BurnratePubSub
  /**
   * For alerts raised by setBudget, called in the transaction that inserted them (the webhooks
   * domain enqueues their deliveries there, so an alert and its deliveries commit together);
   * ingest and billed changes reach webhooks through their pipelines (usage/pipeline.ts).
   */
  onAlertsRaised?: (trx: Tx, alerts: readonly BudgetAlertRow[]) => Promise<void>
  /** What the ledger says a customer was billed in [from, to) (the usage read service's). */
  billedAmount: (executor: Executor, tenantId: string, customerId: string, from: Date, to: Date) => Promise<string>
  /** Prepaid-only customers are stopped when their credits, less reservations, are exhausted. */
  prepaidGate?: PrepaidGate
}
