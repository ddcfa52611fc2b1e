import { createHash, randomBytes } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import * as repo from './repository.ts'

const WIDGET_TOKEN_PREFIX = 'br_ws_'

export const WIDGET_SESSION_LIMITS = {
  defaultTtlSeconds: 15 * 60,
  minTtlSeconds: 60,
  maxTtlSeconds: 24 * 60 * 60,
  customerIdLength: 255,
} as const

export interface IssuedWidgetSession {
  /** Shown once; only its hash is stored. */
  token: string
  customerId: string
  expiresAt: Date
  /** false: the session sees amounts only, not unit prices, catalog rows, the plan or the tenant's cost. */
  priceDetails: boolean
}

export type WidgetAuthentication =
  | { status: 'valid'; tenant: Tenant; customerId: string; sessionId: string; expiresAt: Date; priceDetails: boolean }
  | { status: 'expired'; expiresAt: Date }
  | { status: 'unknown' }

export interface WidgetSessionService {
  create(
    tenant: Tenant,
    input: { customerId: string; ttlSeconds?: number | null; priceDetails?: boolean | null },
  ): Promise<IssuedWidgetSession>
  authenticate(token: string): Promise<WidgetAuthentication>
}

export function isWidgetToken(token: string): boolean {
  return token.startsWith(WIDGET_TOKEN_PREFIX)
}

/** 256 random bits: a fast hash is enough, nothing to brute-force or salt. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function createWidgetSessionService({ db, clock }: { db: Db; clock: Clock }): WidgetSessionService {
  return {
    async create(tenant, { customerId, ttlSeconds, priceDetails: asked }) {
      if (customerId.length === 0 || customerId.length > WIDGET_SESSION_LIMITS.customerIdLength) {
        throw badInput(`customerId must be 1-${WIDGET_SESSION_LIMITS.customerIdLength} characters`, 'customerId')
      }
      const ttl = ttlSeconds ?? WIDGET_SESSION_LIMITS.defaultTtlSeconds
      if (
        !Number.isSafeInteger(ttl) ||
        ttl < WIDGET_SESSION_LIMITS.minTtlSeconds ||
        ttl > WIDGET_SESSION_LIMITS.maxTtlSeconds
      ) {
        throw badInput(
          `ttlSeconds must be between ${WIDGET_SESSION_LIMITS.minTtlSeconds} and ${WIDGET_SESSION_LIMITS.maxTtlSeconds} (24 hours); default ${WIDGET_SESSION_LIMITS.defaultTtlSeconds}`,
          'ttlSeconds',
        )
      }
      const now = clock.now()
      const token = WIDGET_TOKEN_PREFIX + randomBytes(32).toString('base64url')
      const expiresAt = new Date(now.getTime() + ttl * 1000)
      // Default true: the widget has always shown unit prices and the plan; hiding them is opt-in.
      const priceDetails = asked ?? true
      await repo.insertSession(db, {
        id: 'ws_' + randomBytes(9).toString('base64url'),
        tenant_id: tenant.id,
        customer_id: customerId,
        token_hash: hashToken(token),
        expires_at: expiresAt,
        created_at: now,
        price_details: priceDetails,
      })
      return { token, customerId, expiresAt, priceDetails }
    },

    async authenticate(token) {
      if (!isWidgetToken(token)) return { status: 'unknown' }
      // Not cached: the row must be read anyway to check expiry, and it comes with its tenant in one query.
      const row = await repo.findSessionWithTenant(db, hashToken(token))
      if (!row) return { status: 'unknown' }
      const { session_id, session_customer_id, session_expires_at, session_price_details, ...tenant } = row
      const expiresAt = new Date(session_expires_at)
      if (expiresAt.getTime() <= clock.now().getTime()) return { status: 'expired', expiresAt }
      return {
        status: 'valid',
        tenant: tenant as Tenant,
        customerId: session_customer_id,
        sessionId: session_id,
        expiresAt,
        priceDetails: session_price_details,
      }
    },
  }
}
