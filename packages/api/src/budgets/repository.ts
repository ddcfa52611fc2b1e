import { sql, type Transaction } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { BudgetAlertRow, BudgetReservationRow, BudgetRow, DB } from '../db/types.ts'

/**
 * Serializes budget creation against ingest for one customer: ingest takes the shared lock (many
 * batches at once), setBudget the exclusive one, so a new budget's seed from the ledger and the
 * events ingest adds afterwards neither overlap nor leave a gap.
 */
export async function lockCustomersShared(
  trx: Transaction<DB>,
  tenantId: string,
  customerIds: readonly string[],
): Promise<void> {
  if (customerIds.length === 0) return
  // Sorted, so concurrent batches acquire in the same order.
  const ids = [...new Set(customerIds)].sort()
  await sql`select count(pg_advisory_xact_lock_shared(k)) from (
      select hashtextextended(${tenantId} || chr(1) || c, 0) as k from unnest(${ids}::text[]) as c order by c
    ) as locks`.execute(trx)
}

export async function lockCustomerExclusive(trx: Transaction<DB>, tenantId: string, customerId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${tenantId} || chr(1) || ${customerId}, 0))`.execute(trx)
}

export function budgetsOfCustomers(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[],
): Promise<BudgetRow[]> {
  if (customerIds.length === 0) return Promise.resolve([])
  return db
    .selectFrom('budgets')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'in', [...new Set(customerIds)])
    .orderBy('id')
    .execute()
}

/** The customer's budgets, locked for the rest of the transaction (reservations, in id order). */
export function lockBudgetsOfCustomer(
  trx: Transaction<DB>,
  tenantId: string,
  customerId: string,
): Promise<BudgetRow[]> {
  return (
    trx
      .selectFrom('budgets')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', customerId)
      .orderBy('id')
      // Not FOR UPDATE: reservations still exclude each other, but no longer block the foreign-key
      // checks (FOR KEY SHARE) of ingest writing the budget's spend and alerts.
      .forNoKeyUpdate()
      .execute()
  )
}

export function findBudget(
  db: Executor,
  tenantId: string,
  customerId: string,
  period: BudgetRow['period'],
): Promise<BudgetRow | undefined> {
  return db
    .selectFrom('budgets')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('period', '=', period)
    .executeTakeFirst()
}

export function insertBudget(
  db: Executor,
  row: Omit<BudgetRow, 'thresholds'> & { thresholds: number[] },
): Promise<BudgetRow> {
  return db
    .insertInto('budgets')
    .values({ ...row, thresholds: JSON.stringify(row.thresholds) })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export function updateBudget(
  db: Executor,
  id: string,
  changes: {
    limit_amount: string
    thresholds: number[]
    hard_limit: boolean
    forecast_alerts: boolean
    time_zone: string
    counted_from: Date
    updated_at: Date
  },
): Promise<BudgetRow> {
  return db
    .updateTable('budgets')
    .set({ ...changes, thresholds: JSON.stringify(changes.thresholds) })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Spent per (budget, period start) for the given keys; missing keys have spent nothing. */
export async function spendOf(
  db: Executor,
  keys: readonly { tenantId: string; budgetId: string; periodStart: Date }[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  if (keys.length === 0) return found
  const rows = await db
    .selectFrom('budget_spend')
    .select(['budget_id', 'period_start', 'spent'])
    .where((eb) =>
      eb.or(
        keys.map((k) =>
          eb.and([
            eb('budget_id', '=', k.budgetId),
            eb('period_start', '=', k.periodStart),
            eb('tenant_id', '=', k.tenantId),
          ]),
        ),
      ),
    )
    .execute()
  for (const row of rows) found.set(spendKey(row.budget_id, new Date(row.period_start)), row.spent)
  return found
}

export const spendKey = (budgetId: string, periodStart: Date) => `${budgetId}\u0001${periodStart.toISOString()}`

/** Sets a period's spend (a seed from the ledger). */
export async function setSpend(
  db: Executor,
  tenantId: string,
  budgetId: string,
  periodStart: Date,
  spent: string,
): Promise<void> {
  await db
    .insertInto('budget_spend')
    .values({ tenant_id: tenantId, budget_id: budgetId, period_start: periodStart, spent })
    .onConflict((oc) => oc.columns(['budget_id', 'period_start', 'tenant_id']).doUpdateSet({ spent }))
    .execute()
}

/**
 * Adds to period spends atomically in one statement (the row locks serialize concurrent batches)
 * and returns each new total. Rows are given in key order so concurrent batches lock them alike.
 */
export async function addToSpend(
  db: Executor,
  deltas: readonly { tenantId: string; budgetId: string; periodStart: Date; amount: string }[],
): Promise<{ budgetId: string; periodStart: Date; spent: string }[]> {
  if (deltas.length === 0) return []
  const sorted = [...deltas].sort((a, b) =>
    a.budgetId === b.budgetId ? a.periodStart.getTime() - b.periodStart.getTime() : a.budgetId < b.budgetId ? -1 : 1,
  )
  const rows = await db
    .insertInto('budget_spend')
    .values(
      sorted.map((d) => ({
        tenant_id: d.tenantId,
        budget_id: d.budgetId,
        period_start: d.periodStart,
        spent: d.amount,
      })),
    )
    .onConflict((oc) =>
      oc
        .columns(['budget_id', 'period_start', 'tenant_id'])
        .doUpdateSet({ spent: sql`budget_spend.spent + excluded.spent` }),
    )
    .returning(['budget_id', 'period_start', 'spent'])
    .execute()
  return rows.map((r) => ({ budgetId: r.budget_id, periodStart: new Date(r.period_start), spent: r.spent }))
}

/** Inserts alerts that do not exist yet; returns only the new ones (the unique key dedupes). */
export async function insertNewAlerts(
  db: Executor,
  alerts: readonly Omit<BudgetAlertRow, 'id'>[],
): Promise<BudgetAlertRow[]> {
  if (alerts.length === 0) return []
  // In key order, so concurrent inserters never wait on each other in opposite orders.
  const key = (a: Omit<BudgetAlertRow, 'id'>) =>
    `${a.budget_id}\u0001${new Date(a.period_start).toISOString()}\u0001${a.kind}\u0001${String(a.threshold).padStart(6, '0')}`
  const sorted = [...alerts].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
  return db
    .insertInto('budget_alerts')
    .values(sorted)
    .onConflict((oc) => oc.columns(['budget_id', 'period_start', 'kind', 'threshold', 'tenant_id']).doNothing())
    .returningAll()
    .execute()
}

export function listAlerts(
  db: Executor,
  tenantId: string,
  customerId: string,
  first: number,
): Promise<BudgetAlertRow[]> {
  return db
    .selectFrom('budget_alerts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('triggered_at', 'desc')
    .orderBy('id', 'desc')
    .limit(first)
    .execute()
}

/** Sum of the customer's reservations still holding budget at `now` (unsettled, unexpired). */
export async function activeReservedAmount(
  db: Executor,
  tenantId: string,
  customerId: string,
  now: Date,
): Promise<string> {
  const row = await db
    .selectFrom('budget_reservations')
    .select(sql<string>`coalesce(sum(amount), 0)::text`.as('reserved'))
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('settled_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirstOrThrow()
  return row.reserved
}

export function insertReservations(
  db: Executor,
  rows: readonly Omit<BudgetReservationRow, 'settled_at' | 'settled_event_id' | 'settled_amount'>[],
): Promise<BudgetReservationRow[]> {
  if (rows.length === 0) return Promise.resolve([])
  return db.insertInto('budget_reservations').values(rows).returningAll().execute()
}

export function findReservations(
  db: Executor,
  tenantId: string,
  ids: readonly string[],
): Promise<BudgetReservationRow[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db
    .selectFrom('budget_reservations')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', [...new Set(ids)])
    .execute()
}

/**
 * Settles reservations with the events that used them, in one statement; a reservation settles
 * once (an already settled one is left as it is).
 */
export async function settleReservations(
  db: Executor,
  tenantId: string,
  settlements: readonly { reservationId: string; eventId: string; amount: string | null }[],
  now: Date,
): Promise<void> {
  if (settlements.length === 0) return
  const sorted = [...settlements].sort((a, b) =>
    a.reservationId < b.reservationId ? -1 : a.reservationId > b.reservationId ? 1 : 0,
  )
  await sql`update budget_reservations as r
      set settled_at = ${now}, settled_event_id = v.event_id, settled_amount = v.amount::numeric
      from unnest(${sorted.map((s) => s.reservationId)}::text[], ${sorted.map((s) => s.eventId)}::text[], ${sorted.map((s) => s.amount)}::text[]) as v(id, event_id, amount)
      where r.tenant_id = ${tenantId} and r.id = v.id and r.settled_at is null`.execute(db)
}

/** Ends a reservation unused (the call was not made); returns whether it was still open. */
export async function releaseReservation(
  db: Executor,
  tenantId: string,
  id: string,
  now: Date,
): Promise<BudgetReservationRow | undefined> {
  return db
    .updateTable('budget_reservations')
    .set({ settled_at: now, settled_amount: '0' })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('settled_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
}

export function findBudgetById(db: Executor, tenantId: string, id: string): Promise<BudgetRow | undefined> {
  return db.selectFrom('budgets').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst()
}

/** Deletes a budget with its spend counters and its alerts (they reference it). */
export async function deleteBudget(trx: Transaction<DB>, id: string): Promise<void> {
  await trx.deleteFrom('budget_alerts').where('budget_id', '=', id).execute()
  await trx.deleteFrom('budget_spend').where('budget_id', '=', id).execute()
  await trx.deleteFrom('budgets').where('id', '=', id).execute()
}
