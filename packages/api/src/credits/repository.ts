/** The SQL of prepaid credits: grants, the append-only credit ledger, settings and alerts. */
import { sql, type Transaction } from 'kysely'
import type { Executor } from '../db/database.ts'
import type {
  CreditAlertRow,
  CreditGrantRow,
  CreditLedgerKind,
  CreditLedgerRow,
  CreditScopeJson,
  CreditSettingsRow,
  DB,
  Insertable,
  Tenant,
} from '../db/types.ts'

type Trx = Transaction<DB>

/** What an event drew from one grant so far (consumptions minus reversals), with its last entry's id. */
export interface EventDraw {
  grantId: string
  net: string
  lastEntryId: number
}

export type NewGrant = Omit<Insertable<DB['credit_grants']>, 'scope'> & { scope: CreditScopeJson | null }

/** Inserts the grant unless its idempotency key is taken; returns the new row, or null. */
export async function insertGrant(trx: Trx, row: NewGrant): Promise<CreditGrantRow | null> {
  const inserted = await trx
    .insertInto('credit_grants')
    .values({ ...row, scope: row.scope === null ? null : JSON.stringify(row.scope) })
    .onConflict((oc) => oc.columns(['tenant_id', 'idempotency_key']).doNothing())
    .returningAll()
    .executeTakeFirst()
  return inserted ?? null
}

export function grantByKey(db: Executor, tenantId: string, key: string): Promise<CreditGrantRow | undefined> {
  return db
    .selectFrom('credit_grants')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst()
}

export function grantsOfCustomer(db: Executor, tenantId: string, customerId: string): Promise<CreditGrantRow[]> {
  return db
    .selectFrom('credit_grants')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .orderBy('id')
    .execute()
}

/**
 * The customers' grants with something left (with `drained`, every grant), locked for the rest of
 * the transaction. Every writer of credit_grants locks through here, in one order (customer, then
 * grant id, byte order) and in one statement, so parallel batches wait for each other and never
 * deadlock. A row drained while this waited is skipped (PostgreSQL re-checks `remaining > 0` on the
 * locked version).
 */
export function lockGrants(
  trx: Trx,
  tenantId: string,
  customerIds: readonly string[],
  options: { drained?: boolean } = {},
): Promise<CreditGrantRow[]> {
  if (customerIds.length === 0) return Promise.resolve([])
  let query = trx
    .selectFrom('credit_grants')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'in', [...new Set(customerIds)])
  if (!options.drained) query = query.where('remaining', '>', '0')
  return query
    .orderBy(sql`customer_id collate "C"`)
    .orderBy(sql`id collate "C"`)
    .forUpdate()
    .execute()
}

/** Grants (any tenant) past their expiry with something left, locked; those locked elsewhere are skipped. */
export function lockExpiredGrants(trx: Trx, now: Date, limit: number): Promise<CreditGrantRow[]> {
  return trx
    .selectFrom('credit_grants')
    .selectAll()
    .where('expires_at', '<=', now)
    .where('remaining', '>', '0')
    .orderBy(sql`tenant_id collate "C"`)
    .orderBy(sql`customer_id collate "C"`)
    .orderBy(sql`id collate "C"`)
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute()
}

export async function setRemaining(trx: Trx, tenantId: string, remaining: ReadonlyMap<string, string>): Promise<void> {
  for (const [id, value] of [...remaining].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    await trx
      .updateTable('credit_grants')
      .set({ remaining: value })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .execute()
  }
}

export interface NewLedgerEntry {
  tenant_id: string
  grant_id: string
  customer_id: string
  kind: CreditLedgerKind
  amount: string
  balance_after: string
  event_id: string | null
  change_key: string | null
  usage_at: Date | null
  created_at: Date
}

export async function appendLedger(trx: Trx, entries: readonly NewLedgerEntry[]): Promise<void> {
  if (entries.length === 0) return
  await trx
    .insertInto('credit_ledger')
    .values([...entries])
    .execute()
}

/** What each event drew from each grant so far, net of reversals. */
export async function drawsOfEvents(
  trx: Executor,
  tenantId: string,
  eventIds: readonly string[],
): Promise<Map<string, EventDraw[]>> {
  const found = new Map<string, EventDraw[]>()
  if (eventIds.length === 0) return found
  const rows = await trx
    .selectFrom('credit_ledger')
    .select([
      'event_id',
      'grant_id',
      sql<string>`(-sum(amount))::text`.as('net'),
      sql<string>`max(id)::text`.as('last_id'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('event_id', 'in', [...new Set(eventIds)])
    .where('kind', 'in', ['CONSUMPTION', 'REVERSAL'])
    .groupBy(['event_id', 'grant_id'])
    .execute()
  for (const row of rows) {
    const list = found.get(row.event_id!) ?? []
    list.push({ grantId: row.grant_id, net: row.net, lastEntryId: Number(row.last_id) })
    found.set(row.event_id!, list)
  }
  return found
}

export function ledgerOfCustomer(
  db: Executor,
  tenantId: string,
  customerId: string,
  options: { grantId?: string | null; beforeId?: number | null; limit: number },
): Promise<CreditLedgerRow[]> {
  let query = db
    .selectFrom('credit_ledger')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
  if (options.grantId) query = query.where('grant_id', '=', options.grantId)
  if (options.beforeId != null) query = query.where('id', '<', options.beforeId)
  return query.orderBy('id', 'desc').limit(options.limit).execute()
}

/**
 * What credits paid for the customer's usage that happened in [start, end): consumption less
 * reversals, by the usage's own time. Positive (consumption entries are negative).
 */
export async function appliedToUsage(
  db: Executor,
  tenantId: string,
  customerId: string,
  start: Date,
  end: Date,
): Promise<string> {
  const row = await db
    .selectFrom('credit_ledger')
    .select(sql<string>`coalesce(-sum(amount), 0)::text`.as('applied'))
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('kind', 'in', ['CONSUMPTION', 'REVERSAL'])
    .where('usage_at', '>=', start)
    .where('usage_at', '<', end)
    .executeTakeFirst()
  return row?.applied ?? '0'
}

/** Event ids → feature, for billed changes (which carry the model but not the feature). */
export async function featuresOfEvents(
  db: Executor,
  tenantId: string,
  events: readonly { id: string; ts: Date }[],
): Promise<Map<string, string | null>> {
  const found = new Map<string, string | null>()
  if (events.length === 0) return found
  const rows = await db
    .selectFrom('usage_events')
    .select(['id', 'feature'])
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.or(events.map((e) => eb.and([eb('id', '=', e.id), eb('ts', '=', e.ts)]))))
    .execute()
  for (const row of rows) found.set(row.id, row.feature)
  return found
}

export function settingsOf(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[],
): Promise<CreditSettingsRow[]> {
  if (customerIds.length === 0) return Promise.resolve([])
  return db
    .selectFrom('credit_settings')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'in', [...new Set(customerIds)])
    .execute()
}

export function upsertSettings(
  db: Executor,
  row: { tenant_id: string; customer_id: string; low_balance_threshold: string | null; updated_at: Date },
): Promise<CreditSettingsRow> {
  return db
    .insertInto('credit_settings')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'customer_id']).doUpdateSet({
        low_balance_threshold: row.low_balance_threshold,
        updated_at: row.updated_at,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}

export function insertAlerts(
  trx: Trx,
  alerts: readonly Omit<Insertable<DB['credit_alerts']>, 'id'>[],
): Promise<CreditAlertRow[]> {
  if (alerts.length === 0) return Promise.resolve([])
  return trx
    .insertInto('credit_alerts')
    .values([...alerts])
    .returningAll()
    .execute()
}

export function alertsOfCustomer(
  db: Executor,
  tenantId: string,
  customerId: string,
  limit: number,
): Promise<CreditAlertRow[]> {
  return db
    .selectFrom('credit_alerts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute()
}

export async function setTopUpUrl(db: Executor, tenantId: string, url: string | null): Promise<void> {
  await db.updateTable('tenants').set({ credit_top_up_url: url }).where('id', '=', tenantId).execute()
}

export async function topUpUrlOf(db: Executor, tenantId: string): Promise<string | null> {
  const row = await db.selectFrom('tenants').select('credit_top_up_url').where('id', '=', tenantId).executeTakeFirst()
  return row?.credit_top_up_url ?? null
}

export function tenantById(db: Executor, tenantId: string): Promise<Tenant | undefined> {
  return db.selectFrom('tenants').selectAll().where('id', '=', tenantId).executeTakeFirst()
}
