import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { checkTimeZone } from '../budgets/periods.ts'
import { normalizeWidgetOrigins } from '../widget-sessions/origins.ts'
import { displayPrefix, generateApiKey, generateSigningSecret, hashApiKey } from './keys.ts'
import * as repo from './repository.ts'

export interface CreatedTenant {
  tenant: Tenant
  /** Shown once; only its hash is stored. */
  apiKey: string
  signingSecret: string
}

export interface TenantService {
  create(input: { name: string; requireSignatures?: boolean; currency?: string }): Promise<CreatedTenant>
  /** The tenant a bearer key belongs to, or null. */
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
}

const CACHE_TTL_MS = 5_000

export function createTenantService({ db, clock }: { db: Db; clock: Clock }): TenantService {
  // Every request authenticates; a short-lived cache keeps that off the database on hot ingest paths.
  const cache = new Map<string, { tenant: Tenant; expires: number }>()

  return {
    async create({ name, requireSignatures = false, currency = 'USD' }) {
      const apiKey = generateApiKey()
      const signingSecret = generateSigningSecret()
      const tenant = await repo.insertTenant(db, {
        id: 'ten_' + randomBytes(9).toString('base64url'),
        name,
        apiKeyHash: hashApiKey(apiKey),
        apiKeyPrefix: displayPrefix(apiKey),
        signingSecret,
        requireSignatures,
        currency,
      })
      return { tenant, apiKey, signingSecret }
    },

    async authenticate(apiKey) {
      const hash = hashApiKey(apiKey)
      const now = clock.now().getTime()
      const hit = cache.get(hash)
      if (hit && hit.expires > now) return hit.tenant
      const tenant = await repo.findTenantByKeyHash(db, hash)
      if (!tenant) {
        cache.delete(hash)
        return null
      }
      if (cache.size > 10_000) cache.clear()
      cache.set(hash, { tenant, expires: now + CACHE_TTL_MS })
      return tenant
    },

    async updateSettings(tenantId, input) {
      const tenant = await repo.updateTenantSettings(db, tenantId, {
        requireSignatures: input.requireSignatures ?? undefined,
        ...('widgetOrigins' in input
          ? { widgetOrigins: input.widgetOrigins == null ? null : normalizeWidgetOrigins(input.widgetOrigins) }
          : {}),
        ...(input.budgetTimeZone == null
          ? {}
          : { budgetTimeZone: checkTimeZone(input.budgetTimeZone, 'input.budgetTimeZone') }),
      })
      for (const [hash, entry] of cache) if (entry.tenant.id === tenantId) cache.delete(hash)
      return tenant
    },
  }
}
