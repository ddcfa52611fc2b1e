/**
 * The audit log: every mutation that changes money or configuration records who (the API key, its
 * role, bearer or console session), when, what (action, entity type and id), the entity before and
 * after, and the request id — in the transaction of the change, so an entry exists exactly when the
 * change committed.
 *
 * Who is calling is known to the GraphQL layer, not to the services that make changes: schema/
 * mutation-guard.ts runs every Mutation resolver inside `runAs(actor)`, and `record` reads the
 * actor from there (an AsyncLocalStorage owned by this service instance, as the logger owns the
 * request id). A change made outside any request (a CLI, a background job) is recorded with no actor.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import type { ApiKeyRole, AuthMethod } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import * as repo from './repository.ts'

export type { AuditRow } from './repository.ts'

/** The key behind a request that changes something. */
interface AuditActor {
  keyId: string
  keyName: string
  role: ApiKeyRole
  authMethod: AuthMethod
  requestId: string | null
}

/** One change, as the domain that made it describes it. */
interface AuditEntryInput {
  tenantId: string
  /** `<entity>.<verb>`: budget.set, priceChange.confirm, apiKey.revoke, … (README: Audit log). */
  action: string
  entityType: string
  entityId?: string | null
  /** The entity before the change (null or absent: it did not exist); never a secret. */
  before?: unknown
  /** The entity after the change (null or absent: it no longer exists); never a secret. */
  after?: unknown
}

interface AuditFilter {
  action?: string | null
  entityType?: string | null
  entityId?: string | null
  actorKeyId?: string | null
  from?: Date | null
  to?: Date | null
}

export interface AuditService {
  /** Runs `fn` with `actor` as the author of every entry recorded inside it. */
  runAs<T>(actor: AuditActor | null, fn: () => T): T
  /** Records one change in the caller's transaction. */
  record(trx: Executor, entry: AuditEntryInput): Promise<void>
  /** Records one change that has already committed in a transaction of its own domain. */
  recordCommitted(entry: AuditEntryInput): Promise<void>
  /** Newest first, filtered; keyset pages on (at, id). */
  list(
    tenantId: string,
    filter: AuditFilter,
    page: { first?: number | null; after?: string | null },
  ): Promise<Page<repo.AuditRow>>
}

const cursor = keysetCursor('auditLog')

/** Dates as RFC 3339, decimals as they are, undefined fields dropped: what JSON keeps of an entity. */
function snapshot(value: unknown): unknown {
  if (value === undefined || value === null) return null
  return JSON.parse(JSON.stringify(value))
}

export function createAuditService({ db, clock }: { db: Db; clock: Clock }): AuditService {
  const actors = new AsyncLocalStorage<AuditActor | null>()
  const service: AuditService = {
    runAs: (actor, fn) => actors.run(actor, fn),

    async record(trx, entry) {
      const actor = actors.getStore() ?? null
      await repo.insertEntry(trx, {
        tenant_id: entry.tenantId,
        id: 'aud_' + randomBytes(12).toString('base64url'),
        at: clock.now(),
        actor_key_id: actor?.keyId ?? null,
        actor_key_name: actor?.keyName ?? null,
        actor_role: actor?.role ?? null,
        actor_auth_method: actor?.authMethod ?? null,
        action: entry.action,
        entity_type: entry.entityType,
        entity_id: entry.entityId ?? null,
        before: snapshot(entry.before),
        after: snapshot(entry.after),
        request_id: actor?.requestId ?? null,
      })
    },

    recordCommitted(entry) {
      return service.record(db, entry)
    },

    async list(tenantId, filter, page) {
      const first = pageSize(page.first)
      const after = page.after != null ? cursor.decode(page.after) : null
      if (filter.from && filter.to && filter.from >= filter.to)
        throw badInput('filter.from must be before filter.to', 'filter.from')
      const rows = await repo.selectPage(db, tenantId, {
        action: filter.action ?? null,
        entityType: filter.entityType ?? null,
        entityId: filter.entityId ?? null,
        actorKeyId: filter.actorKeyId ?? null,
        from: filter.from ?? null,
        to: filter.to ?? null,
        after,
        limit: first + 1,
      })
      return pageOf(rows, { first, after }, (row) => cursor.encode({ at: new Date(row.at), id: row.id }))
    },
  }
  return service
}
