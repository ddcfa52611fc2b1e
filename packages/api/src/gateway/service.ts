import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { createKeyBox, keyHint, parseGatewayKey, type KeyBox } from './crypto.ts'
import type { GatewayProvider, GatewayProviderKeyRow } from './db-types.ts'
import * as repo from './repository.ts'

const MAX_KEY_LENGTH = 1024
const CACHE_TTL_MS = 5_000

export interface ProviderKeyView {
  provider: GatewayProvider
  hint: string
  updatedAt: Date
}

export interface GatewayService {
  /** False when GATEWAY_ENCRYPTION_KEY is not set: keys cannot be stored and the gateway refuses calls. */
  readonly enabled: boolean
  setProviderKey(tenant: Tenant, provider: GatewayProvider, apiKey: string): Promise<ProviderKeyView>
  deleteProviderKey(tenant: Tenant, provider: GatewayProvider): Promise<boolean>
  providerKeys(tenant: Tenant): Promise<ProviderKeyView[]>
  /** The tenant's decrypted key for forwarding, or null when none is set. */
  providerKey(tenantId: string, provider: GatewayProvider): Promise<string | null>
}

const view = (row: GatewayProviderKeyRow): ProviderKeyView => ({
  provider: row.provider,
  hint: row.key_hint,
  updatedAt: new Date(row.updated_at),
})

export function createGatewayService({ db, clock, config }: { db: Db; clock: Clock; config: Config }): GatewayService {
  const box: KeyBox | null = config.GATEWAY_ENCRYPTION_KEY
    ? createKeyBox(parseGatewayKey(config.GATEWAY_ENCRYPTION_KEY))
    : null
  // Every gateway call needs the key; a short cache keeps a database read and a decryption off the hot path.
  const cache = new Map<string, { key: string | null; expires: number }>()

  const requireBox = (): KeyBox => {
    if (!box) throw badInput('The gateway is disabled on this server: GATEWAY_ENCRYPTION_KEY is not set.')
    return box
  }

  return {
    enabled: box !== null,

    async setProviderKey(tenant, provider, apiKey) {
      const sealer = requireBox()
      const key = apiKey.trim()
      if (key.length < 8 || key.length > MAX_KEY_LENGTH || /\s/.test(key))
        throw badInput(`apiKey must be 8-${MAX_KEY_LENGTH} characters without spaces`, 'input.apiKey')
      const row = await repo.upsertProviderKey(db, {
        tenantId: tenant.id,
        provider,
        keyEnc: sealer.seal(key, tenant.id, provider),
        keyHint: keyHint(key),
        now: clock.now(),
      })
      cache.delete(`${tenant.id}/${provider}`)
      return view(row)
    },

    async deleteProviderKey(tenant, provider) {
      cache.delete(`${tenant.id}/${provider}`)
      return repo.deleteProviderKey(db, tenant.id, provider)
    },

    async providerKeys(tenant) {
      return (await repo.listProviderKeys(db, tenant.id)).map(view)
    },

    async providerKey(tenantId, provider) {
      const sealer = requireBox()
      const cacheKey = `${tenantId}/${provider}`
      const now = clock.now().getTime()
      const hit = cache.get(cacheKey)
      if (hit && hit.expires > now) return hit.key
      const row = await repo.findProviderKey(db, tenantId, provider)
      const key = row ? sealer.open(row.key_enc, tenantId, provider) : null
      if (cache.size > 10_000) cache.clear()
      cache.set(cacheKey, { key, expires: now + CACHE_TTL_MS })
      return key
    },
  }
}
