import { describe, expect, it } from 'vitest'
import type { Tenant } from '../../src/db/types.ts'
import { createBudgetLeases } from '../../src/gateway/budget-leases.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'

const tenant = { id: 'ten_1' } as Tenant
const d = (v: string) => new Decimal(v)

/**
 * A budget gate with one hard limit, deciding flexible reservations as the budgets service does
 * (at most half of what is left, refused when that is under minAmount) and counting what
 * reservations hold.
 */
function fakeGate(limit: string) {
  const open = new Map<string, Decimal>()
  const log: string[] = []
  let n = 0
  const held = () => [...open.values()].reduce((a, b) => a.plus(b), d('0'))
  return {
    log,
    held,
    open,
    gate: {
      async reserve(
        _tenant: Tenant,
        input: { customerId: string; amount: string; minAmount?: string | null; ttlSeconds?: number | null },
      ) {
        const left = d(limit).minus(held())
        let amount = d(input.amount)
        if (input.minAmount) amount = Decimal.min(amount, left.dividedBy(2))
        log.push(`reserve ${input.customerId} ${amount.toFixed()}`)
        if (amount.greaterThan(left) || (input.minAmount && amount.lessThan(input.minAmount)))
          return { granted: false, reservation: null, check: { remaining: left.toFixed() } }
        const id = `rsv_${++n}`
        open.set(id, amount)
        return { granted: true, reservation: { id, amount: amount.toFixed() }, check: { remaining: null } }
      },
      async release(_tenant: Tenant, id: string) {
        log.push(`release ${id}`)
        open.delete(id)
        return null
      },
    },
  }
}

const options = { callsPerLease: 10, minCallsPerLease: 2, maxAgeMs: 60_000, ttlSeconds: 120 }
const logger = createLogger('silent')
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('budget leases', () => {
  it('holds calls in memory on one lease; concurrent first calls share one reservation', async () => {
    const { gate, log } = fakeGate('1000')
    const leases = createBudgetLeases({ budgets: gate, logger }, options)
    const holds = await Promise.all(Array.from({ length: 10 }, () => leases.take(tenant, 'c', d('1'))))
    expect(holds.every((h) => h?.reservationId === 'rsv_1')).toBe(true)
    expect(log).toEqual(['reserve c 10'])
    // The eleventh does not fit: the full lease stops taking calls and a new one is taken.
    const eleventh = await leases.take(tenant, 'c', d('1'))
    expect(eleventh?.reservationId).toBe('rsv_2')
    expect(log).toEqual(['reserve c 10', 'reserve c 10'])
    // The first lease is released once its last call is done, not before.
    for (const h of holds.slice(0, 9)) h!.done(true)
    await settle()
    expect(log).not.toContain('release rsv_1')
    holds[9]!.done(true)
    await settle()
    expect(log).toContain('release rsv_1')
    eleventh!.done(true)
    await leases.close()
    expect(log.at(-1)).toBe('release rsv_2')
  })

  it('a call whose usage was not recorded gives its hold back; a recorded one keeps it taken', async () => {
    const { gate, log } = fakeGate('1000')
    const leases = createBudgetLeases({ budgets: gate, logger }, { ...options, callsPerLease: 2 })
    const a = await leases.take(tenant, 'c', d('1'))
    const b = await leases.take(tenant, 'c', d('1'))
    a!.done(false) // e.g. the provider answered an error: nothing billed, room given back
    b!.done(true)
    a!.done(true) // a second done is ignored
    const c = await leases.take(tenant, 'c', d('1'))
    expect(c?.reservationId).toBe('rsv_1')
    // b's recorded usage keeps its room taken: no fourth call fits on this lease.
    const next = await leases.take(tenant, 'c', d('1'))
    expect(next?.reservationId).toBe('rsv_2')
    expect(log.filter((l) => l.startsWith('reserve'))).toHaveLength(2)
  })

  it('never holds more than the limit leaves; near the limit no lease is had and the caller reserves alone', async () => {
    const { gate, held } = fakeGate('10')
    const leases = createBudgetLeases({ budgets: gate, logger }, options)
    const holds = []
    for (let i = 0; i < 20; i++) {
      const h = await leases.take(tenant, 'c', d('1'))
      if (!h) break
      holds.push(h)
      expect(held().lessThanOrEqualTo('10')).toBe(true)
    }
    // Leases of half of what is left: 5, then 2.5 (2 calls); then half of 2.5 is under the 2-call
    // minimum, so no lease: the rest would be reserved call by call.
    expect(holds).toHaveLength(7)
    expect(held().toFixed()).toBe('7.5')
    expect(await leases.take(tenant, 'c', d('1'))).toBeNull()
    for (const h of holds) h.done(true)
    await leases.close()
    expect(held().toFixed()).toBe('0')
  })

  it('customers and tenants have their own leases; a lease past its age takes no new call', async () => {
    const { gate, log } = fakeGate('1000')
    const leases = createBudgetLeases({ budgets: gate, logger }, { ...options, maxAgeMs: 30 })
    const x = await leases.take(tenant, 'c1', d('1'))
    const y = await leases.take(tenant, 'c2', d('1'))
    const z = await leases.take({ id: 'ten_2' } as Tenant, 'c1', d('1'))
    expect(new Set([x, y, z].map((h) => h!.reservationId)).size).toBe(3)
    for (const h of [x, y, z]) h!.done(true)
    // A deadline, not a timing assertion: the aged leases are released by their timers.
    for (let i = 0; i < 200 && log.filter((l) => l.startsWith('release')).length < 3; i++)
      await new Promise((r) => setTimeout(r, 10))
    expect(log.filter((l) => l.startsWith('release'))).toHaveLength(3)
    const again = await leases.take(tenant, 'c1', d('1'))
    expect(again?.reservationId).toBe('rsv_4')
    again!.done(true)
    await leases.close()
  })

  it('a later call on the second lease it waited for is held on it, not left without one', async () => {
    const { gate, log } = fakeGate('1000')
    const leases = createBudgetLeases({ budgets: gate, logger }, { ...options, callsPerLease: 2 })
    // Five at once: the first lease holds two; the third call takes a second lease and is held on
    // it, as is the fourth (which waited for it); the fifth finds both full and is left to reserve
    // alone (two leases asked for at most per call) — no lease is taken without a call on it.
    const holds = await Promise.all(Array.from({ length: 5 }, () => leases.take(tenant, 'c', d('1'))))
    expect(holds.map((h) => h?.reservationId ?? null)).toEqual(['rsv_1', 'rsv_1', 'rsv_2', 'rsv_2', null])
    expect(log.filter((l) => l.startsWith('reserve'))).toHaveLength(2)
    for (const h of holds) h?.done(true)
    await leases.close()
  })

  it('a reservation error gives the waiting calls no lease (each is then reserved alone), and the next call tries again', async () => {
    const { gate } = fakeGate('1000')
    let fail = true
    const flaky = {
      ...gate,
      reserve: async (...args: Parameters<typeof gate.reserve>) => {
        if (fail) throw new Error('database unavailable')
        return gate.reserve(...args)
      },
    }
    const leases = createBudgetLeases({ budgets: flaky, logger }, options)
    expect(await Promise.all([leases.take(tenant, 'c', d('1')), leases.take(tenant, 'c', d('1'))])).toEqual([
      null,
      null,
    ])
    fail = false
    const h = await leases.take(tenant, 'c', d('1'))
    expect(h?.reservationId).toBe('rsv_1')
    h!.done(true)
    await leases.close()
    // Closed (shutdown): no new lease is taken.
    expect(await leases.take(tenant, 'c', d('1'))).toBeNull()
  })
})
