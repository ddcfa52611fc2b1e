import type { Executor } from '../db/database.ts'
import type { ApiKeyTable, ConsoleSessionTable, Insertable, Selectable, Tenant } from '../db/types.ts'

export async function insertTenant(
  db: Executor,
  tenant: {
    id: string
    name: string
    apiKeyHash: string
    apiKeyPrefix: string
    signingSecret: string
    requireSignatures: boolean
    currency: string
  },
): Promise<Tenant> {
  return db
    .insertInto('tenants')
    .values({
      id: tenant.id,
      name: tenant.name,
      api_key_hash: tenant.apiKeyHash,
      api_key_prefix: tenant.apiKeyPrefix,
      signing_secret: tenant.signingSecret,
      require_signatures: tenant.requireSignatures,
      currency: tenant.currency,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export function findTenantById(db: Executor, id: string): Promise<Tenant | undefined> {
  return db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst()
}

/** The oldest tenant with this name (the dev demo finds "Dev tenant" this way). */
export function findOldestTenantNamed(db: Executor, name: string): Promise<Tenant | undefined> {
  return db.selectFrom('tenants').selectAll().where('name', '=', name).orderBy('created_at').limit(1).executeTakeFirst()
}

export async function countTenants(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('tenants')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export function updateTenantSettings(
  db: Executor,
  id: string,
  settings: { requireSignatures?: boolean; widgetOrigins?: string[] | null; budgetTimeZone?: string },
): Promise<Tenant> {
  const changes = {
    ...(settings.requireSignatures === undefined ? {} : { require_signatures: settings.requireSignatures }),
    ...(settings.widgetOrigins === undefined
      ? {}
      : { widget_origins: settings.widgetOrigins === null ? null : JSON.stringify(settings.widgetOrigins) }),
    ...(settings.budgetTimeZone === undefined ? {} : { budget_time_zone: settings.budgetTimeZone }),
  }
  // Nothing to change is a valid request (`input: {}`), and UPDATE … SET with no column is not SQL.
  if (Object.keys(changes).length === 0)
    return db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  return db.updateTable('tenants').set(changes).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

// ---- API keys (roles) and console sessions ----

export type ApiKeyRow = Selectable<ApiKeyTable>

export function insertApiKey(db: Executor, row: Insertable<ApiKeyTable>): Promise<ApiKeyRow> {
  return db.insertInto('api_keys').values(row).returningAll().executeTakeFirstOrThrow()
}

/** The active key with this hash and its tenant. */
export async function findActiveKeyByHash(
  db: Executor,
  hash: string,
): Promise<{ key: ApiKeyRow; tenant: Tenant } | undefined> {
  const key = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('key_hash', '=', hash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  if (!key) return undefined
  const tenant = await findTenantById(db, key.tenant_id)
  return tenant ? { key, tenant } : undefined
}

/** Newest first. */
export function listApiKeys(db: Executor, tenantId: string, includeRevoked: boolean): Promise<ApiKeyRow[]> {
  let q = db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenantId)
  if (!includeRevoked) q = q.where('revoked_at', 'is', null)
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute()
}

/** The tenant's key, locked for a change in the caller's transaction. */
export function lockApiKey(db: Executor, tenantId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .selectFrom('api_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
}

/** Active ADMIN keys of the tenant, locked (so two revocations cannot both leave none). */
export function lockActiveAdminKeys(db: Executor, tenantId: string): Promise<{ id: string }[]> {
  return db
    .selectFrom('api_keys')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('role', '=', 'ADMIN')
    .where('revoked_at', 'is', null)
    .orderBy('id')
    .forUpdate()
    .execute()
}

export function revokeApiKey(db: Executor, tenantId: string, id: string, at: Date): Promise<ApiKeyRow> {
  return db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function deleteSessionsOfKey(db: Executor, keyId: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('key_id', '=', keyId).execute()
}

export async function insertSession(db: Executor, row: Insertable<ConsoleSessionTable>): Promise<void> {
  await db.insertInto('console_sessions').values(row).execute()
}

/** A live session (not expired at `now`) whose key is still active, with its key and tenant. */
export async function findLiveSession(
  db: Executor,
  idHash: string,
  now: Date,
): Promise<{ session: Selectable<ConsoleSessionTable>; key: ApiKeyRow; tenant: Tenant } | undefined> {
  const session = await db
    .selectFrom('console_sessions')
    .selectAll()
    .where('id_hash', '=', idHash)
    .where('expires_at', '>', now)
    .executeTakeFirst()
  if (!session) return undefined
  const key = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('id', '=', session.key_id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  if (!key) return undefined
  const tenant = await findTenantById(db, key.tenant_id)
  return tenant ? { session, key, tenant } : undefined
}

export async function deleteSession(db: Executor, idHash: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute()
}

/** Sessions that expired before `now`: nothing can use them any more. */
export async function deleteExpiredSessions(db: Executor, now: Date): Promise<void> {
  await db.deleteFrom('console_sessions').where('expires_at', '<=', now).execute()
}
