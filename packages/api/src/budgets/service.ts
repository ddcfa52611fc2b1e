import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db, Executor, Tx } from '../db/database.ts'
import type { BudgetAlertRow, BudgetReservationRow, BudgetRow, Tenant } from '../db/types.ts'
import { badInput, userError } from '../shared/errors.ts'
import type { AuditService } from '../audit/service.ts'
import { pageSize } from '../shared/pagination.ts'
import type { Logger } from '../logger.ts'
import { AMOUNT_SCALE, Decimal, isExactDecimalString } from '../money/decimal.ts'
import type { BudgetAlertEvent, BurnratePubSub } from '../pubsub.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'
import type { EventError, ValidEvent } from '../usage/validation.ts'
import {
  availableOf,
  crossedThresholds,
  DEFAULT_THRESHOLDS,
  fitsHardLimit,
  forecastSpend,
  reachedThresholds,
} from './evaluate.ts'
import { checkTimeZone, periodBounds, type BudgetPeriodName } from './periods.ts'
import * as repo from './repository.ts'

export const BUDGET_LIMITS = {
  customerIdLength: 255,
  maxAmount: new Decimal('1e15'),
  maxThresholds: 10,
  maxThresholdPercent: 1000,
  alertsDefaultFirst: 50,
  alertsMaxFirst: 500,
  reservationDefaultTtlSeconds: 300,
  reservationMaxTtlSeconds: 3600,
} as const

interface BudgetInput {
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
 * The prepaid-credits hard stop (credits/service.ts prepaidGate): whether the customer's plan is
 * prepaid-only now and what its credits hold; with `lock`, its grants are locked in that transaction.
 */
export type PrepaidGate = (
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
  reserve(
    tenant: Tenant,
    input: { customerId: string; amount: string; ttlSeconds?: number | null },
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

/** How long a customer's "has a hard budget" answer is reused (budgets set in other processes). */
const HARD_LIMIT_CACHE_MS = 1_000

const PERIOD_ORDER: readonly BudgetPeriodName[] = ['DAY', 'WEEK', 'MONTH']

const RESERVATION_ID = /^rsv_[A-Za-z0-9_-]{1,60}$/

function checkCustomerId(customerId: string, field = 'customerId'): void {
  if (customerId.length === 0 || customerId.length > BUDGET_LIMITS.customerIdLength) {
    throw badInput(`customerId must be 1-${BUDGET_LIMITS.customerIdLength} characters`, field)
  }
}

/** A money amount from the API: plain decimal, at most AMOUNT_SCALE places, within bounds. */
function parseAmount(value: string, field: string, { allowZero }: { allowZero: boolean }): Decimal {
  if (!isExactDecimalString(value)) throw badInput(`${field} must be a decimal string such as "12.50"`, field)
  const d = new Decimal(value)
  if (d.isNegative() || (!allowZero && d.isZero()))
    throw badInput(`${field} must be ${allowZero ? 'zero or more' : 'more than zero'}`, field)
  if (d.greaterThan(BUDGET_LIMITS.maxAmount))
    throw badInput(`${field} must be at most ${BUDGET_LIMITS.maxAmount.toFixed()}`, field)
  if (d.decimalPlaces() > AMOUNT_SCALE) throw badInput(`${field} has more than ${AMOUNT_SCALE} decimal places`, field)
  return d
}

function checkThresholds(thresholds: readonly number[] | null | undefined): number[] {
  if (thresholds === null || thresholds === undefined) return [...DEFAULT_THRESHOLDS]
  if (thresholds.length > BUDGET_LIMITS.maxThresholds)
    throw badInput(`at most ${BUDGET_LIMITS.maxThresholds} thresholds`, 'input.thresholds')
  const unique = new Set<number>()
  for (const [i, t] of thresholds.entries()) {
    if (!Number.isInteger(t) || t < 1 || t > BUDGET_LIMITS.maxThresholdPercent) {
      throw badInput(
        `thresholds are percentages of the limit from 1 to ${BUDGET_LIMITS.maxThresholdPercent}`,
        `input.thresholds[${i}]`,
      )
    }
    if (unique.has(t)) throw badInput(`threshold ${t} is given twice`, `input.thresholds[${i}]`)
    unique.add(t)
  }
  return [...unique].sort((a, b) => a - b)
}

export function alertEvent(row: BudgetAlertRow): BudgetAlertEvent {
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    customerId: row.customer_id,
    budgetId: row.budget_id,
    threshold: row.threshold,
    spent: row.spent,
    limit: row.limit_amount,
    periodStart: new Date(row.period_start).toISOString(),
    triggeredAt: new Date(row.triggered_at).toISOString(),
    kind: row.kind,
    forecast: row.forecast,
  }
}

/**
 * Called in the transaction that inserted budget alerts, with the rows it inserted: the webhooks
 * domain enqueues their deliveries there, so an alert and its deliveries commit together.
 */
export type AlertsRaisedHook = (trx: Tx, alerts: readonly BudgetAlertRow[]) => Promise<void>

/** What the audit log keeps of a budget. */
function auditedBudget(b: BudgetRow) {
  return {
    id: b.id,
    customerId: b.customer_id,
    period: b.period,
    limit: String(b.limit_amount),
    currency: b.currency,
    thresholds: b.thresholds,
    hardLimit: b.hard_limit,
    forecastAlerts: b.forecast_alerts,
    timeZone: b.time_zone,
  }
}

export function createBudgetService({
  db,
  clock,
  logger,
  pubsub,
  onAlertsRaised,
  billedAmount,
  prepaidGate,
  audit,
}: {
  db: Db
  clock: Clock
  /** Records setBudget and deleteBudget in their transactions. */
  audit?: AuditService
  logger: Logger
  pubsub: BurnratePubSub
  /** For alerts raised by setBudget; ingest and billed changes reach webhooks through their pipelines (usage/pipeline.ts). */
  onAlertsRaised?: AlertsRaisedHook
  /** What the ledger says a customer was billed in [from, to) (the usage read service's). */
  billedAmount: (executor: Executor, tenantId: string, customerId: string, from: Date, to: Date) => Promise<string>
  /** Prepaid-only customers are stopped when their credits, less reservations, are exhausted. */
  prepaidGate?: PrepaidGate
}): BudgetService {
  // The gateway asks before every call whether the customer has a hard budget: answered from a
  // short cache (nothing but cached lookups before a call is forwarded). setBudget in this process
  // drops the customer's entry at once; a budget set through another process is seen within
  // HARD_LIMIT_CACHE_MS.
  const hardLimits = new Map<string, { hard: boolean; expires: number }>()
  const hardLimitKey = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`
  // Bumped around every setBudget: an answer read while one ran is not cached.
  let budgetWrites = 0

  /**
   * New alerts for one budget period at `spent`: thresholds given (crossed by an ingest, or reached
   * when a budget is set), and, for budgets that opted in, the forecast alert for the current period
   * when the projection first exceeds the limit while spend is still under it. The unique key makes
   * each one happen once.
   */
  function alertsDue(
    budget: BudgetRow,
    period: { start: Date; end: Date },
    spent: string,
    thresholds: readonly number[],
    now: Date,
  ): Omit<BudgetAlertRow, 'id'>[] {
    const base = {
      tenant_id: budget.tenant_id,
      customer_id: budget.customer_id,
      budget_id: budget.id,
      period_start: period.start,
      spent,
      limit_amount: budget.limit_amount,
      triggered_at: now,
    }
    const alerts: Omit<BudgetAlertRow, 'id'>[] = thresholds.map((threshold) => ({
      ...base,
      kind: 'THRESHOLD',
      threshold,
      forecast: null,
    }))
    const isCurrent = period.start.getTime() <= now.getTime() && now.getTime() < period.end.getTime()
    if (budget.forecast_alerts && isCurrent && new Decimal(spent).lessThan(budget.limit_amount)) {
      const forecast = forecastSpend(spent, period, now)
      if (forecast.greaterThan(budget.limit_amount))
        alerts.push({ ...base, kind: 'FORECAST', threshold: 100, forecast: forecast.toFixed() })
    }
    return alerts
  }

  async function view(executor: Executor, budgets: readonly BudgetRow[], now: Date): Promise<BudgetView[]> {
    const periods = budgets.map((b) => periodBounds(b.period, b.time_zone, now))
    const spends = await repo.spendOf(
      executor,
      budgets.map((b, i) => ({ tenantId: b.tenant_id, budgetId: b.id, periodStart: periods[i]!.start })),
    )
    const reservedByCustomer = new Map<string, string>()
    for (const b of budgets) {
      if (!reservedByCustomer.has(b.customer_id))
        reservedByCustomer.set(
          b.customer_id,
          await repo.activeReservedAmount(executor, b.tenant_id, b.customer_id, now),
        )
    }
    return budgets.map((row, i) => {
      const period = periods[i]!
      const spent = new Decimal(spends.get(repo.spendKey(row.id, period.start)) ?? '0').toFixed()
      return {
        row,
        periodStart: period.start,
        periodEnd: period.end,
        spent,
        reserved: new Decimal(reservedByCustomer.get(row.customer_id) ?? '0').toFixed(),
        forecast: forecastSpend(spent, period, now).toFixed(),
      }
    })
  }

  /** Against every hard limit: the estimate must fit. The tightest budget is reported. */
  function decide(views: readonly BudgetView[], estimate: Decimal): BudgetCheckView {
    if (views.length === 0) return { allowed: true, remaining: null, budget: null, credits: null }
    let allowed = true
    let blocking: BudgetView | null = null
    let tightest: BudgetView | null = null
    let tightestAvailable: Decimal | null = null
    for (const v of views) {
      const available = availableOf(v.row.limit_amount, v.spent, v.reserved)
      if (tightestAvailable === null || available.lessThan(tightestAvailable)) {
        tightest = v
        tightestAvailable = available
      }
      if (v.row.hard_limit && !fitsHardLimit(v.row.limit_amount, v.spent, v.reserved, estimate)) {
        allowed = false
        blocking ??= v
      }
    }
    return { allowed, remaining: tightestAvailable!.toFixed(), budget: blocking ?? tightest, credits: null }
  }

  /**
   * The credits hard stop on top of the budgets' decision: a prepaid-only customer may spend what
   * its credits hold less what its reservations hold (the same rule as a hard limit, with the
   * balance as the limit).
   */
  async function withCredits(
    executor: Executor,
    tenantId: string,
    customerId: string,
    check: BudgetCheckView,
    estimate: Decimal,
    now: Date,
    lock?: Tx,
  ): Promise<BudgetCheckView> {
    if (!prepaidGate) return check
    const gate = await prepaidGate(executor, tenantId, customerId, now, lock ? { lock } : undefined)
    if (!gate.prepaidOnly) return check
    const reserved = await repo.activeReservedAmount(executor, tenantId, customerId, now)
    const ok = fitsHardLimit(gate.balance, '0', reserved, estimate)
    const credits = {
      balance: new Decimal(gate.balance).toFixed(),
      available: availableOf(gate.balance, '0', reserved).toFixed(),
      allowed: ok,
    }
    return { ...check, allowed: check.allowed && ok, credits }
  }

  /**
   * Adds billed amounts (signed: a correction may lower a bill) to the spend of every budget period
   * they fall in, by each amount's own time, and inserts the threshold and forecast alerts now due.
   * The caller holds the customers' shared lock, so a budget being seeded from the ledger waits.
   */
  async function addSpend(
    trx: Tx,
    tenantId: string,
    amounts: readonly { customerId: string; ts: Date; amount: string }[],
    now: Date,
  ): Promise<BudgetAlertRow[]> {
    if (amounts.length === 0) return []
    const customers = [...new Set(amounts.map((a) => a.customerId))]
    const budgets = await repo.budgetsOfCustomers(trx, tenantId, customers)
    if (budgets.length === 0) return []

    // Each event counts toward the period of its own timestamp, late ones included. Periods are
    // looked up once per budget kind and period, not per event (a batch mostly shares one).
    const known = new Map<string, { start: Date; end: Date }[]>()
    const periodOf = (budget: BudgetRow, ts: Date) => {
      const kind = `${budget.period}\u0001${budget.time_zone}`
      const list = known.get(kind) ?? []
      let found = list.find((p) => p.start.getTime() <= ts.getTime() && ts.getTime() < p.end.getTime())
      if (!found) {
        found = periodBounds(budget.period, budget.time_zone, ts)
        list.push(found)
        known.set(kind, list)
      }
      return found
    }
    const deltas = new Map<string, { budget: BudgetRow; period: { start: Date; end: Date }; amount: Decimal }>()
    for (const event of amounts) {
      for (const budget of budgets) {
        if (budget.customer_id !== event.customerId) continue
        const period = periodOf(budget, event.ts)
        if (period.start.getTime() < new Date(budget.counted_from).getTime()) continue
        const key = repo.spendKey(budget.id, period.start)
        const delta = deltas.get(key)
        if (delta) delta.amount = delta.amount.plus(event.amount)
        else deltas.set(key, { budget, period, amount: new Decimal(event.amount) })
      }
    }
    if (deltas.size === 0) return []
    const totals = await repo.addToSpend(
      trx,
      [...deltas.values()].map((d) => ({
        tenantId: d.budget.tenant_id,
        budgetId: d.budget.id,
        periodStart: d.period.start,
        amount: d.amount.toFixed(),
      })),
    )
    const due: Omit<BudgetAlertRow, 'id'>[] = []
    for (const total of totals) {
      const delta = deltas.get(repo.spendKey(total.budgetId, total.periodStart))!
      const before = new Decimal(total.spent).minus(delta.amount)
      const crossed = crossedThresholds(delta.budget.thresholds, delta.budget.limit_amount, before, total.spent)
      due.push(...alertsDue(delta.budget, delta.period, new Decimal(total.spent).toFixed(), crossed, now))
    }
    return repo.insertNewAlerts(trx, due)
  }

  async function publish(alerts: readonly BudgetAlertRow[]): Promise<void> {
    for (const alert of alerts) pubsub.publish('budgetAlert', alert.tenant_id, alertEvent(alert))
  }

  const followers: Pick<BudgetService, 'checkReservations' | 'followIngest' | 'followChanges' | 'publishAlerts'> = {
    async checkReservations(tenant, events) {
      const ids = events.map((e) => e.reservationId).filter((id): id is string => !!id)
      if (ids.length === 0) return events.map(() => null)
      const found = new Map((await repo.findReservations(db, tenant.id, ids)).map((r) => [r.id, r]))
      return events.map((event) => {
        if (!event.reservationId) return null
        const reservation = found.get(event.reservationId)
        if (!reservation || reservation.customer_id !== event.customerId) {
          return {
            code: 'INVALID_INPUT',
            message: `no reservation "${event.reservationId}" for customer "${event.customerId}"`,
            field: 'reservationId',
          }
        }
        if (reservation.settled_event_id !== null && reservation.settled_event_id !== event.id) {
          return {
            code: 'INVALID_INPUT',
            message: `reservation "${event.reservationId}" was already settled by event "${reservation.settled_event_id}"`,
            field: 'reservationId',
          }
        }
        if (reservation.settled_at !== null && reservation.settled_event_id === null) {
          return {
            code: 'INVALID_INPUT',
            message: `reservation "${event.reservationId}" was released`,
            field: 'reservationId',
          }
        }
        return null
      })
    },

    async followIngest(trx, { tenant, inserted: stored, alertsRaised }) {
      const now = clock.now()
      const customers = [...new Set(stored.map((e) => e.customer_id))]
      await repo.lockCustomersShared(trx, tenant.id, customers)
      await repo.settleReservations(
        trx,
        tenant.id,
        stored
          .filter((e) => e.reservation_id)
          .map((e) => ({ reservationId: e.reservation_id!, eventId: e.id, amount: e.amount })),
        now,
      )
      const raised = await addSpend(
        trx,
        tenant.id,
        stored
          .filter((e) => e.status === 'PRICED' && e.amount !== null)
          .map((e) => ({ customerId: e.customer_id, ts: new Date(e.ts), amount: e.amount! })),
        now,
      )
      alertsRaised.push(...raised)
    },

    async followChanges(trx, { tenantId, changes, alertsRaised }) {
      await repo.lockCustomersShared(trx, tenantId, [...new Set(changes.map((c) => c.customerId))])
      alertsRaised.push(...(await addSpend(trx, tenantId, changes, clock.now())))
    },

    async publishAlerts({ alertsRaised }) {
      await publish(alertsRaised)
    },
  }

  const service: BudgetService = {
    ...followers,
    deleteBudget: (tenant, id) => deleteBudget(tenant, id),

    async setBudget(tenant, input) {
      checkCustomerId(input.customerId, 'input.customerId')
      const limit = parseAmount(input.limit, 'input.limit', { allowZero: false }).toFixed()
      const givenThresholds = input.thresholds == null ? null : checkThresholds(input.thresholds)
      const timeZone =
        input.timeZone == null ? tenant.budget_time_zone : checkTimeZone(input.timeZone, 'input.timeZone')
      const now = clock.now()
      const period = periodBounds(input.period, timeZone, now)
      const { budget, raised } = await db.transaction().execute(async (trx) => {
        // Ingest for this customer waits while the current period is seeded from the ledger.
        await repo.lockCustomerExclusive(trx, tenant.id, input.customerId)
        const existing = await repo.findBudget(trx, tenant.id, input.customerId, input.period)
        const reseed = !existing || existing.time_zone !== timeZone
        // Left out on an update, thresholds and hardLimit keep their values; on creation they default.
        const thresholds = givenThresholds ?? existing?.thresholds ?? [...DEFAULT_THRESHOLDS]
        const fields = {
          limit_amount: limit,
          thresholds,
          hard_limit: input.hardLimit ?? existing?.hard_limit ?? false,
          forecast_alerts: input.forecastAlerts ?? existing?.forecast_alerts ?? false,
          time_zone: timeZone,
          updated_at: now,
        }
        const budget = existing
          ? await repo.updateBudget(trx, existing.id, {
              ...fields,
              counted_from: reseed ? period.start : new Date(existing.counted_from),
            })
          : await repo.insertBudget(trx, {
              id: 'bud_' + randomBytes(9).toString('base64url'),
              tenant_id: tenant.id,
              customer_id: input.customerId,
              period: input.period,
              currency: tenant.currency,
              counted_from: period.start,
              created_at: now,
              ...fields,
            })
        let spent: string
        if (reseed) {
          spent = await billedAmount(trx, tenant.id, input.customerId, period.start, period.end)
          await repo.setSpend(trx, budget.tenant_id, budget.id, period.start, spent)
        } else {
          spent =
            (
              await repo.spendOf(trx, [{ tenantId: budget.tenant_id, budgetId: budget.id, periodStart: period.start }])
            ).get(repo.spendKey(budget.id, period.start)) ?? '0'
        }
        // A new or lowered limit may already be passed: those alerts are due now.
        const raised = await repo.insertNewAlerts(
          trx,
          alertsDue(budget, period, new Decimal(spent).toFixed(), reachedThresholds(thresholds, limit, spent), now),
        )
        if (raised.length > 0) await onAlertsRaised?.(trx, raised)
        await audit?.record(trx, {
          tenantId: tenant.id,
          action: 'budget.set',
          entityType: 'Budget',
          entityId: budget.id,
          before: existing ? auditedBudget(existing) : null,
          after: auditedBudget(budget),
        })
        return { budget, raised }
      })
      await publish(raised).catch((error) => logger.error('budget alert publish failed', { error: String(error) }))
      const [result] = await view(db, [budget], now)
      return result!
    },

    async budgets(tenant, customerId) {
      checkCustomerId(customerId)
      // Shortest period first: a stable order for callers (ids are random).
      const rows = (await repo.budgetsOfCustomers(db, tenant.id, [customerId])).sort(
        (a, b) => PERIOD_ORDER.indexOf(a.period) - PERIOD_ORDER.indexOf(b.period),
      )
      return view(db, rows, clock.now())
    },

    async budgetUse(tenantId, customerIds) {
      const rows = await repo.budgetsOfCustomers(db, tenantId, customerIds)
      const now = clock.now()
      const periods = rows.map((b) => periodBounds(b.period, b.time_zone, now))
      const spends = await repo.spendOf(
        db,
        rows.map((b, i) => ({ tenantId: b.tenant_id, budgetId: b.id, periodStart: periods[i]!.start })),
      )
      const nearest = new Map<string, BudgetUse>()
      rows.forEach((row, i) => {
        const spent = new Decimal(spends.get(repo.spendKey(row.id, periods[i]!.start)) ?? '0')
        const percent = spent.times(100).dividedBy(row.limit_amount).toDecimalPlaces(2)
        const held = nearest.get(row.customer_id)
        if (held && percent.lessThanOrEqualTo(held.percent)) return
        nearest.set(row.customer_id, {
          budgetId: row.id,
          period: row.period,
          spent: spent.toFixed(),
          limit: new Decimal(row.limit_amount).toFixed(),
          percent: percent.toFixed(2),
        })
      })
      return nearest
    },

    async alerts(tenant, customerId, first) {
      checkCustomerId(customerId)
      const n = pageSize(first, {
        defaultFirst: BUDGET_LIMITS.alertsDefaultFirst,
        maxFirst: BUDGET_LIMITS.alertsMaxFirst,
      })
      return repo.listAlerts(db, tenant.id, customerId, n)
    },

    async check(tenant, customerId, estimate) {
      checkCustomerId(customerId)
      const amount = estimate == null ? new Decimal(0) : parseAmount(estimate, 'estimatedAmount', { allowZero: true })
      const now = clock.now()
      const check = decide(await view(db, await repo.budgetsOfCustomers(db, tenant.id, [customerId]), now), amount)
      return withCredits(db, tenant.id, customerId, check, amount, now)
    },

    async hasHardLimit(tenant, customerId) {
      checkCustomerId(customerId)
      const key = hardLimitKey(tenant.id, customerId)
      const now = Date.now()
      const hit = hardLimits.get(key)
      if (hit && hit.expires > now) return hit.hard
      const writes = budgetWrites
      // A prepaid-only customer is under a hard stop too (its credits), so the gateway holds its calls.
      const hard =
        (await repo.budgetsOfCustomers(db, tenant.id, [customerId])).some((b) => b.hard_limit) ||
        (prepaidGate ? (await prepaidGate(db, tenant.id, customerId, clock.now())).prepaidOnly : false)
      if (hardLimits.size > 100_000) hardLimits.clear()
      // Not cached when a setBudget ran meanwhile: the answer may predate it.
      if (writes === budgetWrites) hardLimits.set(key, { hard, expires: now + HARD_LIMIT_CACHE_MS })
      return hard
    },

    async reserve(tenant, input) {
      checkCustomerId(input.customerId)
      const amount = parseAmount(input.amount, 'amount', { allowZero: false })
      const ttl = input.ttlSeconds ?? BUDGET_LIMITS.reservationDefaultTtlSeconds
      if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > BUDGET_LIMITS.reservationMaxTtlSeconds) {
        throw badInput(`ttlSeconds must be between 1 and ${BUDGET_LIMITS.reservationMaxTtlSeconds}`, 'ttlSeconds')
      }
      const now = clock.now()
      return db.transaction().execute(async (trx) => {
        // Locking the customer's budgets serializes reservations against them across processes.
        const budgets = await repo.lockBudgetsOfCustomer(trx, tenant.id, input.customerId)
        // Then the customer's credit grants (lock order: budgets, then credits).
        const check = await withCredits(
          trx,
          tenant.id,
          input.customerId,
          decide(await view(trx, budgets, now), amount),
          amount,
          now,
          trx,
        )
        if (!check.allowed) return { granted: false, reservation: null, check }
        const reservation = await repo.insertReservation(trx, {
          id: 'rsv_' + randomBytes(12).toString('base64url'),
          tenant_id: tenant.id,
          customer_id: input.customerId,
          amount: amount.toFixed(),
          created_at: now,
          expires_at: new Date(now.getTime() + ttl * 1000),
        })
        const after = await withCredits(
          trx,
          tenant.id,
          input.customerId,
          decide(await view(trx, budgets, now), new Decimal(0)),
          new Decimal(0),
          now,
        )
        return { granted: true, reservation, check: { ...after, allowed: true } }
      })
    },

    reservedAmount: (executor, tenantId, customerId, now) =>
      repo.activeReservedAmount(executor, tenantId, customerId, now),

    async release(tenant, reservationId) {
      if (!RESERVATION_ID.test(reservationId)) throw badInput('not a reservation id (rsv_…)', 'id')
      return (await repo.releaseReservation(db, tenant.id, reservationId, clock.now())) ?? null
    },
  }
  async function deleteBudget(tenant: Tenant, id: string): Promise<string> {
    if (!/^bud_[A-Za-z0-9_-]{1,60}$/.test(id)) throw userError('NOT_FOUND', 'no such budget', 'id')
    const deleted = await db.transaction().execute(async (trx) => {
      const budget = await repo.findBudgetById(trx, tenant.id, id)
      if (!budget) return null
      // Ingest for this customer waits: its spend counters go with the budget.
      await repo.lockCustomerExclusive(trx, tenant.id, budget.customer_id)
      await repo.deleteBudget(trx, budget.id)
      await audit?.record(trx, {
        tenantId: tenant.id,
        action: 'budget.delete',
        entityType: 'Budget',
        entityId: budget.id,
        before: auditedBudget(budget),
        after: null,
      })
      return budget
    })
    if (!deleted) throw userError('NOT_FOUND', 'no such budget', 'id')
    budgetWrites += 1
    hardLimits.delete(hardLimitKey(tenant.id, deleted.customer_id))
    return deleted.id
  }
  const write = service.setBudget
  service.setBudget = async (tenant, input) => {
    budgetWrites += 1
    hardLimits.delete(hardLimitKey(tenant.id, input.customerId))
    try {
      return await write(tenant, input)
    } finally {
      budgetWrites += 1
      hardLimits.delete(hardLimitKey(tenant.id, input.customerId))
    }
  }
  return service
}
