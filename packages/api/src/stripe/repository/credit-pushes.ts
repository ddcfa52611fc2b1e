/**
 * SQL of the Stripe credit mirror: per (customer, period) states that say "the applied credits
 * changed" (stripe_credit_state) and the credit grant calls planned from them (stripe_credit_pushes);
 * renewing and releasing a state's lease: leases.ts.
 */
import { sql, type Insertable, type Selectable } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { CreditCategory, StripeCreditPushStatus } from '../../db/column-types.ts'
import type { StripeCreditPushes } from '../../db/generated.ts'

export interface CreditStateKey {
  tenant_id: string
  customer_id: string
  period_start: Date
}

export type CreditPushRow = Selectable<StripeCreditPushes>

/**
 * Marks (customer, period) states dirty in the caller's transaction, creating them as needed; in
 * key order, so concurrent batches wait for each other instead of deadlocking.
 */
export async function markCreditStatesDirty(trx: Executor, keys: readonly CreditStateKey[]): Promise<void> {
  if (keys.length === 0) return
  const sorted = [...keys].sort(
    (a, b) => a.customer_id.localeCompare(b.customer_id) || a.period_start.getTime() - b.period_start.getTime(),
  )
  await trx
    .insertInto('stripe_credit_state')
    .values(sorted.map((k) => ({ ...k, dirty: true })))
    .onConflict((oc) => oc.columns(['tenant_id', 'customer_id', 'period_start']).doUpdateSet({ dirty: true }))
    .execute()
}

/** Of these customers, those with at least one credit grant (only they can have applied credits). */
export async function customersWithGrants(
  trx: Executor,
  tenantId: string,
  customerIds: readonly string[],
): Promise<Set<string>> {
  if (customerIds.length === 0) return new Set()
  const rows = await trx
    .selectFrom('credit_grants')
    .select('customer_id')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'in', customerIds)
    .execute()
  return new Set(rows.map((r) => r.customer_id))
}

/**
 * Leases up to `limit` states with work (dirty, or a due PENDING push) whose lease is free or
 * expired; SKIP LOCKED so processes never wait on each other.
 */
export async function claimCreditStates(
  db: Executor,
  owner: string,
  now: Date,
  until: Date,
  limit: number,
): Promise<CreditStateKey[]> {
  const result = await sql<CreditStateKey>`
      update stripe_credit_state s set lease_owner = ${owner}, lease_until = ${until}
      from (
        select p.tenant_id, p.customer_id, p.period_start from stripe_credit_state p
        where (p.lease_until is null or p.lease_until < ${now})
          and (p.dirty
            or exists (select 1 from stripe_credit_pushes u where u.tenant_id = p.tenant_id and u.customer_id = p.customer_id
                        and u.period_start = p.period_start and u.status = 'PENDING' and u.next_attempt_at <= ${now}))
        order by p.lease_until nulls first
        limit ${limit}
        for update skip locked
      ) c
      where s.tenant_id = c.tenant_id and s.customer_id = c.customer_id and s.period_start = c.period_start
      returning s.tenant_id, s.customer_id, s.period_start`.execute(db)
  return result.rows.map((r) => ({ ...r, period_start: new Date(r.period_start) }))
}

/** The state, row-locked for the caller's transaction. */
export function lockCreditState(trx: Executor, key: CreditStateKey) {
  return trx
    .selectFrom('stripe_credit_state')
    .selectAll()
    .where('tenant_id', '=', key.tenant_id)
    .where('customer_id', '=', key.customer_id)
    .where('period_start', '=', key.period_start)
    .forUpdate()
    .executeTakeFirst()
}

export async function saveCreditState(trx: Executor, key: CreditStateKey, nextSeq: number): Promise<void> {
  await trx
    .updateTable('stripe_credit_state')
    .set({ dirty: false, next_seq: nextSeq })
    .where('tenant_id', '=', key.tenant_id)
    .where('customer_id', '=', key.customer_id)
    .where('period_start', '=', key.period_start)
    .execute()
}

/**
 * What the credit ledger applied to the customer's usage of [start, end), per grant category:
 * consumption minus reversals, by the usage's own time (as invoicePreview's creditsApplied).
 */
export async function appliedByCategory(
  db: Executor,
  key: CreditStateKey,
  end: Date,
): Promise<Map<CreditCategory, string>> {
  const rows = await db
    .selectFrom('credit_ledger as l')
    .innerJoin('credit_grants as g', (j) => j.onRef('g.tenant_id', '=', 'l.tenant_id').onRef('g.id', '=', 'l.grant_id'))
    .select(['g.category', sql<string>`(-sum(l.amount))::text`.as('applied')])
    .where('l.tenant_id', '=', key.tenant_id)
    .where('l.customer_id', '=', key.customer_id)
    .where('l.kind', 'in', ['CONSUMPTION', 'REVERSAL'])
    .where('l.usage_at', '>=', key.period_start)
    .where('l.usage_at', '<', end)
    .groupBy('g.category')
    .execute()
  return new Map(rows.map((r) => [r.category, r.applied]))
}

export function creditPushesOf(db: Executor, key: CreditStateKey): Promise<CreditPushRow[]> {
  return db
    .selectFrom('stripe_credit_pushes')
    .selectAll()
    .where('tenant_id', '=', key.tenant_id)
    .where('customer_id', '=', key.customer_id)
    .where('period_start', '=', key.period_start)
    .orderBy('seq')
    .execute()
}

export async function insertCreditPushes(
  trx: Executor,
  rows: readonly Insertable<StripeCreditPushes>[],
): Promise<void> {
  if (rows.length > 0)
    await trx
      .insertInto('stripe_credit_pushes')
      .values([...rows])
      .execute()
}

export async function cancelCreditPush(trx: Executor, tenantId: string, identifier: string): Promise<void> {
  await trx
    .updateTable('stripe_credit_pushes')
    .set({ status: 'CANCELLED' })
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .where('status', '=', 'PENDING')
    .execute()
}

/** The first PENDING push of the state (seq order), due or not. */
export function firstPendingCreditPush(db: Executor, key: CreditStateKey): Promise<CreditPushRow | undefined> {
  return db
    .selectFrom('stripe_credit_pushes')
    .selectAll()
    .where('tenant_id', '=', key.tenant_id)
    .where('customer_id', '=', key.customer_id)
    .where('period_start', '=', key.period_start)
    .where('status', '=', 'PENDING')
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst()
}

export function creditPushByIdentifier(
  db: Executor,
  tenantId: string,
  identifier: string,
): Promise<CreditPushRow | undefined> {
  return db
    .selectFrom('stripe_credit_pushes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .executeTakeFirst()
}

export async function recordCreditAttempt(
  db: Executor,
  tenantId: string,
  identifier: string,
  attempts: number,
  nextAttemptAt: Date,
): Promise<void> {
  await db
    .updateTable('stripe_credit_pushes')
    .set({ attempts, next_attempt_at: nextAttemptAt })
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .execute()
}

export async function finishCreditPush(
  db: Executor,
  tenantId: string,
  identifier: string,
  outcome:
    { status: 'SENT'; stripeGrantId: string | null; at: Date } | { status: 'FAILED'; error: string; gaveUp: boolean },
): Promise<boolean> {
  const result = await db
    .updateTable('stripe_credit_pushes')
    .set(
      outcome.status === 'SENT'
        ? { status: 'SENT', stripe_grant_id: outcome.stripeGrantId, sent_at: outcome.at, last_error: null }
        : { status: 'FAILED', last_error: outcome.error, ...(outcome.gaveUp ? { gave_up: true } : {}) },
    )
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .where('status', '=', 'PENDING')
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

export async function scheduleCreditRetry(
  db: Executor,
  tenantId: string,
  identifier: string,
  retry: { nextAttemptAt: Date; lastError: string; idempotencyKey: string | null },
): Promise<void> {
  await db
    .updateTable('stripe_credit_pushes')
    .set({ next_attempt_at: retry.nextAttemptAt, last_error: retry.lastError, idempotency_key: retry.idempotencyKey })
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .execute()
}

/**
 * The tenant's credit pushes, newest first on (created_at, identifier), optionally by status and
 * customer; with `after`, the keyset page that continues after that position (pushes created
 * between pages never repeat or shift later pages).
 */
export function listCreditPushes(
  db: Executor,
  tenantId: string,
  filter: {
    status: StripeCreditPushStatus | null
    customerId: string | null
    after?: { createdAt: Date; identifier: string } | null
  },
  limit: number,
): Promise<CreditPushRow[]> {
  let query = db.selectFrom('stripe_credit_pushes').selectAll().where('tenant_id', '=', tenantId)
  if (filter.status) query = query.where('status', '=', filter.status)
  if (filter.customerId) query = query.where('customer_id', '=', filter.customerId)
  const after = filter.after
  if (after)
    query = query.where((eb) =>
      eb(eb.refTuple('created_at', 'identifier'), '<', eb.tuple(after.createdAt, after.identifier)),
    )
  return query.orderBy('created_at', 'desc').orderBy('identifier', 'desc').limit(limit).execute()
}

/** These FAILED pushes of the tenant, row-locked for the caller's transaction. */
export function lockFailedCreditPushes(
  trx: Executor,
  tenantId: string,
  identifiers: readonly string[],
): Promise<CreditPushRow[]> {
  return trx
    .selectFrom('stripe_credit_pushes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('identifier', 'in', identifiers)
    .where('status', '=', 'FAILED')
    .orderBy('identifier')
    .forUpdate()
    .execute()
}

/** A FAILED push that gave up goes PENDING again under its identifier, with a new Idempotency-Key. */
export function requeueCreditPush(trx: Executor, push: CreditPushRow, now: Date): Promise<CreditPushRow> {
  const retries = push.manual_retries + 1
  return trx
    .updateTable('stripe_credit_pushes')
    .set({
      status: 'PENDING',
      attempts: 0,
      next_attempt_at: now,
      idempotency_key: `${push.identifier}-m${retries}`,
      manual_retries: retries,
      last_error: null,
    })
    .where('tenant_id', '=', push.tenant_id)
    .where('identifier', '=', push.identifier)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** A refused push is SUPERSEDED: its state is planned again (markCreditStatesDirty) by the pusher. */
export function supersedeCreditPush(trx: Executor, push: CreditPushRow): Promise<CreditPushRow> {
  return trx
    .updateTable('stripe_credit_pushes')
    .set({ status: 'SUPERSEDED' })
    .where('tenant_id', '=', push.tenant_id)
    .where('identifier', '=', push.identifier)
    .returningAll()
    .executeTakeFirstOrThrow()
}
