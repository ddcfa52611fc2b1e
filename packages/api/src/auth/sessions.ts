/**
 * Console sessions: a tenant key (either role) exchanged for an opaque cookie value. Only the
 * value's SHA-256 is stored, with the key it was signed in with, its CSRF token and its expiry; a
 * session dies when it expires, when its owner signs out and when its key is revoked (looked up on
 * every request: no cache, so revocation and sign-out act at once).
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { DomainError } from '../shared/errors.ts'
import { hashApiKey } from './keys.ts'
import * as repo from './repository.ts'
import type { TenantService } from './service.ts'

export interface ConsoleSession {
  tenant: Tenant
  key: repo.ApiKeyRow
  csrfToken: string
  expiresAt: Date
}

export interface ConsoleSessionService {
  /** Signs in: a new session for a valid key (UNAUTHENTICATED, field "key", otherwise) and its cookie value. */
  signIn(apiKey: string): Promise<{ cookieValue: string; session: ConsoleSession }>
  /** The live session a cookie value stands for, or null. */
  authenticate(cookieValue: string): Promise<ConsoleSession | null>
  signOut(cookieValue: string): Promise<void>
}

const BAD_KEY = 'This API key is not valid (unknown or revoked). Sign in with a tenant secret key (br_sk_…).'

export function createConsoleSessionService({
  db,
  clock,
  tenants,
  ttlSeconds,
}: {
  db: Db
  clock: Clock
  tenants: TenantService
  ttlSeconds: number
}): ConsoleSessionService {
  return {
    async signIn(apiKey) {
      const found = await tenants.authenticateKey(apiKey)
      if (!found) throw new DomainError('UNAUTHENTICATED', BAD_KEY, 'key')
      const now = clock.now()
      const cookieValue = randomBytes(32).toString('base64url')
      const csrfToken = randomBytes(24).toString('base64url')
      const expiresAt = new Date(now.getTime() + ttlSeconds * 1000)
      await db.transaction().execute(async (trx) => {
        await repo.deleteExpiredSessions(trx, now)
        await repo.insertSession(trx, {
          id_hash: hashApiKey(cookieValue),
          tenant_id: found.tenant.id,
          key_id: found.key.id,
          csrf_token: csrfToken,
          created_at: now,
          expires_at: expiresAt,
        })
      })
      return { cookieValue, session: { tenant: found.tenant, key: found.key, csrfToken, expiresAt } }
    },

    async authenticate(cookieValue) {
      if (!cookieValue || cookieValue.length > 200) return null
      const found = await repo.findLiveSession(db, hashApiKey(cookieValue), clock.now())
      if (!found) return null
      return {
        tenant: found.tenant,
        key: found.key,
        csrfToken: found.session.csrf_token,
        expiresAt: new Date(found.session.expires_at),
      }
    },

    signOut: (cookieValue) => repo.deleteSession(db, hashApiKey(cookieValue)),
  }
}
