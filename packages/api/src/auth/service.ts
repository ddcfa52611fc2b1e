/**
 * Tenants and their API keys. A key has a role: ADMIN (everything for its tenant) or READ_ONLY
 * (queries and subscriptions; every mutation is refused by schema/mutation-guard.ts). The key made
 * with a tenant is its ADMIN key "default". Keys are stored hashed; a revoked key stops working at
 * once in this process (its cache entry and console sessions go) and within CACHE_TTL_MS elsewhere.
 */
import { randomBytes } from 'node:crypto'
import { createAuditService, type AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { ApiKeyRole, Tenant } from '../db/types.ts'
import { checkTimeZone } from '../budgets/periods.ts'
import { badInput, notFound } from '../shared/errors.ts'
import { normalizeWidgetOrigins } from '../widget-sessions/origins.ts'
import { displayPrefix, generateApiKey, generateSigningSecret, hashApiKey } from './keys.ts'
import * as repo from './repository.ts'

export type ApiKeyRow = repo.ApiKeyRow

interface CreatedTenant {
  tenant: Tenant
  /** Shown once; only its hash is stored. */
  apiKey: string
  signingSecret: string
}

/** A key that authenticated, with its tenant. */
interface AuthenticatedKey {
  tenant: Tenant
  key: ApiKeyRow
}

export interface TenantService {
  create(input: { name: string; requireSignatures?: boolean; currency?: string }): Promise<CreatedTenant>
  /** The tenant and key a bearer key stands for (either role), or null when unknown or revoked. */
  authenticateKey(apiKey: string): Promise<AuthenticatedKey | null>
  /**
   * The tenant of an ADMIN key, or null: for the paths that write without GraphQL (gateway, OTLP
   * ingest), which a READ_ONLY key may not use.
   */
  authenticate(apiKey: string): Promise<Tenant | null>
  /**
   * updateTenantSettings. A field left out (or null, for requireSignatures and budgetTimeZone) is
   * unchanged; widgetOrigins null means unrestricted, a list exactly those origins (validated).
   */
  updateSettings(
    tenantId: string,
    settings: {
      requireSignatures?: boolean | null
      widgetOrigins?: readonly string[] | null
      budgetTimeZone?: string | null
    },
  ): Promise<Tenant>
  listKeys(tenantId: string, options?: { includeRevoked?: boolean }): Promise<ApiKeyRow[]>
  /** A new key; its secret is returned once. */
  createKey(tenantId: string, input: { name: string; role: ApiKeyRole }): Promise<{ key: ApiKeyRow; secret: string }>
  /** Revokes a key and ends its console sessions; refuses to leave the tenant without an ADMIN key. */
  revokeKey(tenantId: string, id: string): Promise<ApiKeyRow>
}

const CACHE_TTL_MS = 5_000

/** What the audit log keeps of a key: never its hash. */
const keyForAudit = (key: ApiKeyRow) => ({
  id: key.id,
  name: key.name,
  role: key.role,
  prefix: key.key_prefix,
  createdAt: key.created_at,
  revokedAt: key.revoked_at,
})

/** What the audit log keeps of a tenant's settings: never its signing secret or key hash. */
const settingsForAudit = (t: Tenant) => ({
  requireSignatures: t.require_signatures,
  widgetOrigins: t.widget_origins,
  budgetTimeZone: t.budget_time_zone,
})

const newKeyId = () => 'key_' + randomBytes(9).toString('base64url')

function keyName(name: string): string {
  const trimmed = name.trim()
  if (trimmed.length < 1 || trimmed.length > 100) throw badInput('name must be 1-100 characters', 'input.name')
  return trimmed
}

export function createTenantService({
  db,
  clock,
  audit = createAuditService({ db, clock }),
}: {
  db: Db
  clock: Clock
  /** Defaults to an audit log of its own over db (the CLIs); the app passes the one it shares. */
  audit?: AuditService
}): TenantService {
  // Every request authenticates; a short-lived cache keeps that off the database on hot ingest paths.
  const cache = new Map<string, { found: AuthenticatedKey; expires: number }>()

  const authenticateKey = async (apiKey: string): Promise<AuthenticatedKey | null> => {
    const hash = hashApiKey(apiKey)
    const now = clock.now().getTime()
    const hit = cache.get(hash)
    if (hit && hit.expires > now) return hit.found
    const found = await repo.findActiveKeyByHash(db, hash)
    if (!found) {
      cache.delete(hash)
      return null
    }
    if (cache.size > 10_000) cache.clear()
    cache.set(hash, { found, expires: now + CACHE_TTL_MS })
    return found
  }

  return {
    async create({ name, requireSignatures = false, currency = 'USD' }) {
      const apiKey = generateApiKey()
      const signingSecret = generateSigningSecret()
      const tenant = await db.transaction().execute(async (trx) => {
        const tenant = await repo.insertTenant(trx, {
          id: 'ten_' + randomBytes(9).toString('base64url'),
          name,
          apiKeyHash: hashApiKey(apiKey),
          apiKeyPrefix: displayPrefix(apiKey),
          signingSecret,
          requireSignatures,
          currency,
        })
        await repo.insertApiKey(trx, {
          id: newKeyId(),
          tenant_id: tenant.id,
          key_hash: hashApiKey(apiKey),
          key_prefix: displayPrefix(apiKey),
          name: 'default',
          role: 'ADMIN',
          created_at: clock.now(),
        })
        return tenant
      })
      return { tenant, apiKey, signingSecret }
    },

    authenticateKey,

    async authenticate(apiKey) {
      const found = await authenticateKey(apiKey)
      return found?.key.role === 'ADMIN' ? found.tenant : null
    },

    async updateSettings(tenantId, input) {
      const tenant = await db.transaction().execute(async (trx) => {
        const before = await repo.findTenantById(trx, tenantId)
        const after = await repo.updateTenantSettings(trx, tenantId, {
          requireSignatures: input.requireSignatures ?? undefined,
          ...('widgetOrigins' in input
            ? { widgetOrigins: input.widgetOrigins == null ? null : normalizeWidgetOrigins(input.widgetOrigins) }
            : {}),
          ...(input.budgetTimeZone == null
            ? {}
            : { budgetTimeZone: checkTimeZone(input.budgetTimeZone, 'input.budgetTimeZone') }),
        })
        await audit.record(trx, {
          tenantId,
          action: 'tenant.updateSettings',
          entityType: 'Tenant',
          entityId: tenantId,
          before: before ? settingsForAudit(before) : null,
          after: settingsForAudit(after),
        })
        return after
      })
      for (const [hash, entry] of cache) if (entry.found.tenant.id === tenantId) cache.delete(hash)
      return tenant
    },

    listKeys: (tenantId, options = {}) => repo.listApiKeys(db, tenantId, options.includeRevoked ?? false),

    async createKey(tenantId, input) {
      const name = keyName(input.name)
      const secret = generateApiKey()
      const key = await db.transaction().execute(async (trx) => {
        const key = await repo.insertApiKey(trx, {
          id: newKeyId(),
          tenant_id: tenantId,
          key_hash: hashApiKey(secret),
          key_prefix: displayPrefix(secret),
          name,
          role: input.role,
          created_at: clock.now(),
        })
        await audit.record(trx, {
          tenantId,
          action: 'apiKey.create',
          entityType: 'ApiKey',
          entityId: key.id,
          after: keyForAudit(key),
        })
        return key
      })
      return { key, secret }
    },

    async revokeKey(tenantId, id) {
      const revoked = await db.transaction().execute(async (trx) => {
        // Admin keys first, always in the same order: two revocations cannot both pass the check.
        const admins = await repo.lockActiveAdminKeys(trx, tenantId)
        const key = await repo.lockApiKey(trx, tenantId, id)
        if (!key) throw notFound(`No API key ${id}`, 'id')
        if (key.revoked_at) return key
        if (key.role === 'ADMIN' && admins.length === 1 && admins[0]?.id === key.id)
          throw badInput(
            'This is the last active ADMIN key of the tenant: create another ADMIN key before revoking it.',
            'id',
          )
        const after = await repo.revokeApiKey(trx, tenantId, id, clock.now())
        await repo.deleteSessionsOfKey(trx, id)
        await audit.record(trx, {
          tenantId,
          action: 'apiKey.revoke',
          entityType: 'ApiKey',
          entityId: id,
          before: keyForAudit(key),
          after: keyForAudit(after),
        })
        return after
      })
      for (const [hash, entry] of cache) if (entry.found.key.id === id) cache.delete(hash)
      return revoked
    },
  }
}
