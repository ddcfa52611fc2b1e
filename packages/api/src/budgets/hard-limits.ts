/**
 * "Does this customer have a hard stop?" — asked by the gateway before every call, so answered
 * from a short cache owned by one service instance. A budget write in this process invalidates the
 * customer's entry at once (before and after it); a budget set through another process is seen
 * within HARD_LIMIT_CACHE_MS.
 */
import type { Tenant } from '../db/types.ts'
import { checkCustomerId } from './input.ts'
import * as repo from './repository.ts'
import type { BudgetDeps } from './types.ts'

/** How long a customer's "has a hard budget" answer is reused (budgets set in other processes). */
const HARD_LIMIT_CACHE_MS = 1_000

export interface HardLimitCache {
  /** The cached answer, else `read()`'s — kept unless a budget write ran while it was read. */
  answer(tenantId: string, customerId: string, read: () => Promise<boolean>): Promise<boolean>
  /** A budget of the customer changes: its next answer is read afresh. */
  invalidate(tenantId: string, customerId: string): void
}

export function createHardLimitCache(): HardLimitCache {
  const entries = new Map<string, { hard: boolean; expires: number }>()
  const keyOf = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`
  // Bumped around every budget write: an answer read while one ran is not cached.
  let writes = 0
  return {
    async answer(tenantId, customerId, read) {
      const key = keyOf(tenantId, customerId)
      const now = Date.now()
      const hit = entries.get(key)
      if (hit && hit.expires > now) return hit.hard
      const before = writes
      const hard = await read()
      if (entries.size > 100_000) entries.clear()
      if (before === writes) entries.set(key, { hard, expires: now + HARD_LIMIT_CACHE_MS })
      return hard
    },
    invalidate(tenantId, customerId) {
      writes += 1
      entries.delete(keyOf(tenantId, customerId))
    },
  }
}

export async function hasHardLimit(
  { db, clock, prepaidGate }: Pick<BudgetDeps, 'db' | 'clock' | 'prepaidGate'>,
  cache: HardLimitCache,
  tenant: Tenant,
  customerId: string,
): Promise<boolean> {
  checkCustomerId(customerId)
  return cache.answer(
    tenant.id,
    customerId,
    async () =>
      (await repo.budgetsOfCustomers(db, tenant.id, [customerId])).some((b) => b.hard_limit) ||
      // A prepaid-only customer is under a hard stop too (its credits), so the gateway holds its calls.
      (prepaidGate ? (await prepaidGate(db, tenant.id, customerId, clock.now())).prepaidOnly : false),
  )
}
