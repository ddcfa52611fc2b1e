/**
 * SQL of the meter events (stripe_pushes) and of the (customer, dimension) push states they are
 * planned from; renewing and releasing a state's lease: leases.ts.
 */
import { sql, type Insertable, type Selectable } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { StripePushRow, StripePushStateTable, StripePushStatus, StripePushTable } from '../db-types.ts'
import type { PushGroup } from './outbox.ts'

/**
 * Leases up to `limit` groups with work (unplanned outbox rows or a due PENDING push) whose lease
 * is free or expired, longest free first; SKIP LOCKED so processes never wait on each other.
 */
export async function claimGroups(
  db: Executor,
  owner: string,
  now: Date,
  until: Date,
  limit: number,
): Promise<PushGroup[]> {
  const result = await sql<PushGroup>`
      update stripe_push_state s set lease_owner = ${owner}, lease_until = ${until}
      from (
        select p.tenant_id, p.customer_id, p.dimension from stripe_push_state p
        where (p.lease_until is null or p.lease_until < ${now})
          and (exists (select 1 from stripe_outbox o where o.tenant_id = p.tenant_id and o.customer_id = p.customer_id
                        and o.dimension = p.dimension and o.planned_at is null)
            or exists (select 1 from stripe_pushes u where u.tenant_id = p.tenant_id and u.customer_id = p.customer_id
                        and u.dimension = p.dimension and u.status = 'PENDING' and u.next_attempt_at <= ${now}))
        order by p.lease_until nulls first
        limit ${limit}
        for update skip locked
      ) c
      where s.tenant_id = c.tenant_id and s.customer_id = c.customer_id and s.dimension = c.dimension
      returning s.tenant_id, s.customer_id, s.dimension`.execute(db)
  return result.rows
}

/** The group's state, row-locked for the caller's transaction. */
export function lockPushState(trx: Executor, group: PushGroup): Promise<Selectable<StripePushStateTable> | undefined> {
  return trx
    .selectFrom('stripe_push_state')
    .selectAll()
    .where('tenant_id', '=', group.tenant_id)
    .where('customer_id', '=', group.customer_id)
    .where('dimension', '=', group.dimension)
    .forUpdate()
    .executeTakeFirst()
}

export async function savePushState(trx: Executor, group: PushGroup, residue: string, nextSeq: number): Promise<void> {
  await trx
    .updateTable('stripe_push_state')
    .set({ residue, next_seq: nextSeq })
    .where('tenant_id', '=', group.tenant_id)
    .where('customer_id', '=', group.customer_id)
    .where('dimension', '=', group.dimension)
    .execute()
}

/** Takes the group's next sequence number (for a retry under a new identifier). */
export async function takeNextSeq(trx: Executor, group: PushGroup): Promise<number> {
  const state = await trx
    .updateTable('stripe_push_state')
    .set((eb) => ({ next_seq: eb('next_seq', '+', 1) }))
    .where('tenant_id', '=', group.tenant_id)
    .where('customer_id', '=', group.customer_id)
    .where('dimension', '=', group.dimension)
    .returning('next_seq')
    .executeTakeFirstOrThrow()
  return state.next_seq - 1
}

export type NewPush = Insertable<StripePushTable>

export async function insertPush(trx: Executor, push: NewPush): Promise<void> {
  await trx.insertInto('stripe_pushes').values(push).execute()
}

export function insertPushReturning(trx: Executor, push: NewPush): Promise<StripePushRow> {
  return trx.insertInto('stripe_pushes').values(push).returningAll().executeTakeFirstOrThrow()
}

/** The group's PENDING push due first (lowest sequence), if any. */
export function nextDuePush(db: Executor, group: PushGroup, now: Date): Promise<StripePushRow | undefined> {
  return db
    .selectFrom('stripe_pushes')
    .selectAll()
    .where('tenant_id', '=', group.tenant_id)
    .where('customer_id', '=', group.customer_id)
    .where('dimension', '=', group.dimension)
    .where('status', '=', 'PENDING')
    .where('next_attempt_at', '<=', now)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst()
}

/** Records an attempt before its call: its count, and a next attempt after the lease (a crash retries). */
export async function recordAttempt(
  db: Executor,
  identifier: string,
  attempts: number,
  nextAttemptAt: Date,
): Promise<void> {
  await db
    .updateTable('stripe_pushes')
    .set({ attempts, next_attempt_at: nextAttemptAt })
    .where('identifier', '=', identifier)
    .execute()
}

export async function markSent(db: Executor, identifier: string, now: Date): Promise<void> {
  await db
    .updateTable('stripe_pushes')
    .set({ status: 'SENT', sent_at: now, last_error: null })
    .where('identifier', '=', identifier)
    .where('status', '=', 'PENDING')
    .execute()
}

export async function scheduleRetry(
  db: Executor,
  identifier: string,
  retry: { nextAttemptAt: Date; lastError: string; idempotencyKey: string | null },
): Promise<void> {
  await db
    .updateTable('stripe_pushes')
    .set({
      next_attempt_at: retry.nextAttemptAt,
      last_error: retry.lastError,
      idempotency_key: retry.idempotencyKey,
    })
    .where('identifier', '=', identifier)
    .where('status', '=', 'PENDING')
    .execute()
}

/** PENDING to FAILED (`gaveUp`: out of attempts, not refused); false when it was not PENDING any more. */
export async function failPending(
  trx: Executor,
  identifier: string,
  lastError: string,
  gaveUp: boolean,
): Promise<boolean> {
  const failed = await trx
    .updateTable('stripe_pushes')
    .set(
      gaveUp ? { status: 'FAILED', gave_up: true, last_error: lastError } : { status: 'FAILED', last_error: lastError },
    )
    .where('identifier', '=', identifier)
    .where('status', '=', 'PENDING')
    .executeTakeFirst()
  return Number(failed.numUpdatedRows) > 0
}

/** A push Stripe's error report names: SENT or PENDING to FAILED; undefined when it is neither (or unknown). */
export function failReported(
  trx: Executor,
  tenantId: string,
  identifier: string,
  lastError: string,
): Promise<StripePushRow | undefined> {
  return trx
    .updateTable('stripe_pushes')
    .set({ status: 'FAILED', last_error: lastError })
    .where('tenant_id', '=', tenantId)
    .where('identifier', '=', identifier)
    .where('status', 'in', ['SENT', 'PENDING'])
    .returningAll()
    .executeTakeFirst()
}

/** Newest first. */
export function listPushes(
  db: Executor,
  tenantId: string,
  filter: { status?: StripePushStatus | null; customerId?: string | null },
  limit: number,
): Promise<StripePushRow[]> {
  let query = db.selectFrom('stripe_pushes').selectAll().where('tenant_id', '=', tenantId)
  if (filter.status) query = query.where('status', '=', filter.status)
  if (filter.customerId) query = query.where('customer_id', '=', filter.customerId)
  return query.orderBy('created_at', 'desc').orderBy('identifier').limit(limit).execute()
}

/**
 * A keyset page of meter events, newest first on (created_at, identifier): pushes created between
 * pages never repeat or shift later pages. `limit` is one more than the page to tell if another exists.
 */
export function selectPushPage(
  db: Executor,
  tenantId: string,
  filter: {
    status: StripePushStatus | null
    customerId: string | null
    after: { createdAt: Date; identifier: string } | null
    limit: number
  },
): Promise<StripePushRow[]> {
  let query = db.selectFrom('stripe_pushes').selectAll().where('tenant_id', '=', tenantId)
  if (filter.status) query = query.where('status', '=', filter.status)
  if (filter.customerId) query = query.where('customer_id', '=', filter.customerId)
  const after = filter.after
  if (after)
    query = query.where((eb) =>
      eb(eb.refTuple('created_at', 'identifier'), '<', eb.tuple(after.createdAt, after.identifier)),
    )
  return query.orderBy('created_at', 'desc').orderBy('identifier', 'desc').limit(filter.limit).execute()
}

/** Latest window first. */
export function listExpired(db: Executor, tenantId: string, limit: number): Promise<StripePushRow[]> {
  return db
    .selectFrom('stripe_pushes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'EXPIRED')
    .orderBy('window_start', 'desc')
    .limit(limit)
    .execute()
}

/** The FAILED pushes among `identifiers`, row-locked for the caller's transaction. */
export function lockFailedPushes(
  trx: Executor,
  tenantId: string,
  identifiers: readonly string[],
): Promise<StripePushRow[]> {
  return trx
    .selectFrom('stripe_pushes')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('identifier', 'in', [...identifiers])
    .where('status', '=', 'FAILED')
    .forUpdate()
    .execute()
}

/** A push that gave up goes PENDING again under its own identifier, with a new Idempotency-Key. */
export function requeueGaveUp(trx: Executor, push: StripePushRow, now: Date): Promise<StripePushRow> {
  return trx
    .updateTable('stripe_pushes')
    .set({
      status: 'PENDING',
      gave_up: false,
      attempts: 0,
      last_error: null,
      next_attempt_at: now,
      manual_retries: push.manual_retries + 1,
      idempotency_key: `${push.identifier}-m${push.manual_retries + 1}`,
    })
    .where('identifier', '=', push.identifier)
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function markSuperseded(trx: Executor, identifier: string): Promise<void> {
  await trx.updateTable('stripe_pushes').set({ status: 'SUPERSEDED' }).where('identifier', '=', identifier).execute()
}
