import type { Executor } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'

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

export function findTenantByKeyHash(db: Executor, hash: string): Promise<Tenant | undefined> {
  return db.selectFrom('tenants').selectAll().where('api_key_hash', '=', hash).executeTakeFirst()
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
