/** The audit log's SQL: one insert per recorded change, and the filtered keyset pages the console lists. */
import type { Executor } from '../db/database.ts'
import type { ApiKeyRole, AuthMethod } from '../db/types.ts'

export interface AuditRow {
  tenant_id: string
  id: string
  at: Date
  actor_key_id: string | null
  actor_key_name: string | null
  actor_role: ApiKeyRole | null
  actor_auth_method: AuthMethod | null
  action: string
  entity_type: string
  entity_id: string | null
  before: unknown
  after: unknown
  request_id: string | null
}

export async function insertEntry(executor: Executor, row: AuditRow): Promise<void> {
  await executor
    .insertInto('audit_log')
    .values({
      ...row,
      before: row.before === null ? null : JSON.stringify(row.before),
      after: row.after === null ? null : JSON.stringify(row.after),
    })
    .execute()
}

export interface AuditQuery {
  action: string | null
  entityType: string | null
  entityId: string | null
  actorKeyId: string | null
  from: Date | null
  to: Date | null
  after: { at: Date; id: string } | null
  limit: number
}

/** Newest first on (at, id). */
export function selectPage(executor: Executor, tenantId: string, q: AuditQuery): Promise<AuditRow[]> {
  let query = executor.selectFrom('audit_log').selectAll().where('tenant_id', '=', tenantId)
  if (q.action) query = query.where('action', '=', q.action)
  if (q.entityType) query = query.where('entity_type', '=', q.entityType)
  if (q.entityId) query = query.where('entity_id', '=', q.entityId)
  if (q.actorKeyId) query = query.where('actor_key_id', '=', q.actorKeyId)
  if (q.from) query = query.where('at', '>=', q.from)
  if (q.to) query = query.where('at', '<', q.to)
  const after = q.after
  if (after) query = query.where((eb) => eb(eb.refTuple('at', 'id'), '<', eb.tuple(after.at, after.id)))
  return query.orderBy('at', 'desc').orderBy('id', 'desc').limit(q.limit).execute() as Promise<AuditRow[]>
}
