import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Tenant, UsageEventRow } from '../../src/db/types.ts'
import { createBurnratePubSub, type UsageUpdateEvent } from '../../src/pubsub.ts'
import { createUsageUpdates } from '../../src/subscriptions/usage-updates.ts'

describe('usage updates (coalescing)', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('publishes one event per customer per window, after the first change, counting every event', async () => {
    const pubsub = createBurnratePubSub()
    const seen: UsageUpdateEvent[] = []
    const iterator = pubsub.subscribe('usageUpdate', 't1')[Symbol.asyncIterator]()
    const updates = createUsageUpdates({ pubsub, windowMs: 200, now: () => new Date('2026-12-01T00:00:00Z') })
    const rows = (...customers: string[]) => customers.map((customer_id) => ({ customer_id }) as UsageEventRow)
    const tenant = { id: 't1' } as Tenant

    updates.afterIngest({ tenant, inserted: rows('a', 'a', 'b') })
    await vi.advanceTimersByTimeAsync(150)
    updates.afterIngest({ tenant, inserted: rows('a') })
    updates.afterChanges({ tenantId: 't1', changes: [{ customerId: 'b' } as never] })
    // Nothing before the window closes…
    const first = iterator.next()
    await vi.advanceTimersByTimeAsync(49)
    let settled = false
    void first.then(() => (settled = true))
    await Promise.resolve()
    expect(settled).toBe(false)
    // …then one event per customer with every change of the window.
    await vi.advanceTimersByTimeAsync(1)
    seen.push((await first).value, (await iterator.next()).value)
    expect(seen).toEqual([
      { tenantId: 't1', customerId: 'a', events: 3, at: '2026-12-01T00:00:00.000Z' },
      { tenantId: 't1', customerId: 'b', events: 2, at: '2026-12-01T00:00:00.000Z' },
    ])
    // A later change opens a new window.
    updates.afterIngest({ tenant, inserted: rows('b') })
    await vi.advanceTimersByTimeAsync(200)
    expect((await iterator.next()).value).toMatchObject({ customerId: 'b', events: 1 })
    await iterator.return?.()
  })
})
