/** A grant's state at a time, read from its row (pure): its status, whether a balance counts it, its draw-down shape. */
import type { CreditGrantRow } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { OpenGrant } from './consume.ts'
import type { GrantView } from './types.ts'

export function statusOf(row: CreditGrantRow, now: Date): GrantView['status'] {
  if (row.expires_at && new Date(row.expires_at).getTime() <= now.getTime()) return 'EXPIRED'
  if (new Decimal(row.remaining).isZero()) return 'DEPLETED'
  if (new Date(row.effective_at).getTime() > now.getTime()) return 'PENDING'
  return 'ACTIVE'
}

export function openGrantOf(row: CreditGrantRow): OpenGrant {
  return {
    id: row.id,
    customerId: row.customer_id,
    remaining: row.remaining,
    priority: row.priority,
    effectiveAt: new Date(row.effective_at),
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    createdAt: new Date(row.created_at),
    scope: row.scope,
  }
}

/** Effective and unexpired at `now`: what a balance counts. */
export function availableNow(row: CreditGrantRow, now: Date): boolean {
  return (
    new Date(row.effective_at).getTime() <= now.getTime() &&
    (!row.expires_at || new Date(row.expires_at).getTime() > now.getTime())
  )
}

/** Past its expiry at `now` with something left: an EXPIRY entry is due. */
export function expiryDue(row: CreditGrantRow, now: Date): boolean {
  return (
    row.expires_at != null && new Date(row.expires_at).getTime() <= now.getTime() && new Decimal(row.remaining).gt(0)
  )
}
