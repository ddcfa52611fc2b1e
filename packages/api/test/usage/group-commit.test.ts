import { Decimal } from 'decimal.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import type { Tenant } from '../../src/db/types.ts'
import { withGroupCommit, type GroupCommittedUsage } from '../../src/usage/group-commit.ts'
import type { UsageService } from '../../src/usage/service.ts'
import type { UsageEventInput } from '../../src/usage/validation.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// Group commit (usage/group-commit.ts): concurrent single events coalesced into one batch call.
// Each test wraps the app's pipeline in a counting recorder so it can see that calls were really
// coalesced (the window is long here so they are, on a loaded machine too; nothing is timed).

const NOW = '2026-11-20T12:00:00Z'
const clock = fixedClock(NOW)
const base = {
  model: 'gpt-4o-2024-08-06',
  timestamp: new Date('2026-11-20T11:00:00Z'),
  inputTokens: 1000,
  outputTokens: 500,
}

let t: TestApp
let tenant: Tenant
beforeAll(async () => {
  t = await createTestApp({ clock, config: { INGEST_GROUP_COMMIT_MS: 50 } })
  tenant = (await t.app.services.tenants.authenticate(t.tenant.apiKey))!
})
afterAll(async () => {
  await t.app.services.usage.drain()
  await t.close()
})

/** The app's pipeline behind a group commit that records the size of every batch it sends. */
function counted(
  options: { failWhen?: (input: UsageEventInput) => boolean; maxBatch?: number; maxWaitMs?: number } = {},
) {
  const sizes: number[] = []
  const inner: UsageService = {
    async record(tn, inputs) {
      sizes.push(inputs.length)
      if (options.failWhen && inputs.some(options.failWhen)) throw new Error('pipeline failed for this batch')
      return t.app.services.usage.record(tn, inputs)
    },
  }
  const usage: GroupCommittedUsage = withGroupCommit(inner, {
    maxWaitMs: options.maxWaitMs ?? 50,
    maxBatch: options.maxBatch ?? 256,
    maxInFlight: 2,
  })
  return { usage, sizes }
}

async function rollupTotals(customerId: string) {
  const row = await t.database.db
    .selectFrom('usage_rollups')
    .where('tenant_id', '=', tenant.id)
    .where('customer_id', '=', customerId)
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<string>('events'), eb.val('0')).as('events'),
      eb.fn.coalesce(eb.fn.sum<string>('amount'), eb.val('0')).as('amount'),
    ])
    .executeTakeFirstOrThrow()
  return { events: Number(row.events), amount: new Decimal(row.amount).toFixed() }
}

async function storedEvents(customerId: string) {
  return t.database.db
    .selectFrom('usage_events')
    .where('tenant_id', '=', tenant.id)
    .where('customer_id', '=', customerId)
    .select(['id', 'amount'])
    .execute()
}

describe('group commit of single events', () => {
  it('gives every caller its own result, and rollups and budgets count each event exactly once', async () => {
    const { usage, sizes } = counted()
    await t.app.services.budgets.setBudget(tenant, { customerId: 'gc-a', period: 'MONTH', limit: '1000' })
    const inputs = Array.from({ length: 40 }, (_, i) => ({
      ...base,
      id: `gc-own-${i}`,
      customerId: i % 2 ? 'gc-a' : 'gc-b',
      inputTokens: 1000 + i,
      feature: `f${i % 3}`,
    }))
    const results = await Promise.all(inputs.map((input) => usage.recordOne(tenant, input)))
    expect(Math.max(...sizes)).toBeGreaterThan(1)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40)
    for (const [i, result] of results.entries()) {
      expect(result.error).toBeNull()
      expect(result.status).toBe('RECORDED')
      expect(result.event?.id).toBe(`gc-own-${i}`)
      expect(result.event?.customer_id).toBe(inputs[i]!.customerId)
      expect(result.event?.input_tokens).toBe(inputs[i]!.inputTokens)
    }
    for (const customerId of ['gc-a', 'gc-b']) {
      const events = await storedEvents(customerId)
      expect(events).toHaveLength(20)
      const sum = events.reduce((s, e) => s.plus(e.amount!), new Decimal(0)).toFixed()
      expect(await rollupTotals(customerId)).toEqual({ events: 20, amount: sum })
      // The same amount per caller as the result it got.
      const byId = new Map(results.map((r) => [r.event!.id, r.event!.amount]))
      for (const e of events) expect(new Decimal(e.amount!).equals(byId.get(e.id)!)).toBe(true)
    }
    const [budget] = await t.app.services.budgets.budgets(tenant, 'gc-a')
    const spentA = (await storedEvents('gc-a')).reduce((s, e) => s.plus(e.amount!), new Decimal(0))
    expect(new Decimal(budget!.spent).equals(spentA)).toBe(true)
  })

  it('never puts two calls with one event id in a group: one RECORDED, replays DUPLICATE, changed content a conflict', async () => {
    const { usage, sizes } = counted()
    const same = { ...base, id: 'gc-dup', customerId: 'gc-dup' }
    const calls = [
      ...Array.from({ length: 5 }, () => usage.recordOne(tenant, same)),
      usage.recordOne(tenant, { ...same, outputTokens: 999 }),
      ...Array.from({ length: 5 }, (_, i) =>
        usage.recordOne(tenant, { ...base, id: `gc-dup-other-${i}`, customerId: 'gc-dup' }),
      ),
    ]
    const results = await Promise.all(calls)
    expect(results.map((r) => r.status).slice(0, 6)).toEqual([
      'RECORDED',
      'DUPLICATE',
      'DUPLICATE',
      'DUPLICATE',
      'DUPLICATE',
      'REJECTED',
    ])
    expect(results[5]!.error?.code).toBe('IDEMPOTENCY_CONFLICT')
    for (const r of results.slice(1, 5)) expect(r.event?.seq).toBe(results[0]!.event!.seq)
    expect(results.slice(6).every((r) => r.status === 'RECORDED')).toBe(true)
    // The other events went with the first group; each repeat waited for a later one.
    expect(sizes[0]).toBe(6)
    expect(await rollupTotals('gc-dup')).toMatchObject({ events: 6 })
    expect(await storedEvents('gc-dup')).toHaveLength(6)

    // Replayed later (a client retry): DUPLICATE, nothing counted twice.
    const again = await Promise.all([usage.recordOne(tenant, same), usage.recordOne(tenant, same)])
    expect(again.map((r) => r.status)).toEqual(['DUPLICATE', 'DUPLICATE'])
    expect(await rollupTotals('gc-dup')).toMatchObject({ events: 6 })
  })

  it('judges a repeat of a rejected event on its own, not as part of the rejected caller’s group', async () => {
    const { usage } = counted()
    // The first is refused by the budgets hook (no such reservation); the second, same id, is fine.
    const [bad, good] = await Promise.all([
      usage.recordOne(tenant, { ...base, id: 'gc-rep', customerId: 'gc-rep', reservationId: 'rsv_missing' }),
      usage.recordOne(tenant, { ...base, id: 'gc-rep', customerId: 'gc-rep' }),
    ])
    expect(bad.status).toBe('REJECTED')
    expect(bad.error?.field).toBe('reservationId')
    expect(good.status).toBe('RECORDED')
    expect(await rollupTotals('gc-rep')).toMatchObject({ events: 1 })
  })

  it('rejects a bad event alone among accepted ones in the same group', async () => {
    const { usage, sizes } = counted()
    const results = await Promise.all([
      usage.recordOne(tenant, { ...base, id: 'gc-mix-0', customerId: 'gc-mix' }),
      usage.recordOne(tenant, { ...base, id: 'gc-mix-bad', customerId: 'gc-mix', inputTokens: -5 }),
      usage.recordOne(tenant, { ...base, id: 'gc-mix-1', customerId: 'gc-mix' }),
      usage.recordOne(tenant, {
        ...base,
        id: 'gc-mix-future',
        customerId: 'gc-mix',
        timestamp: new Date('2027-06-01T00:00:00Z'),
      }),
      usage.recordOne(tenant, { ...base, id: 'gc-mix-2', customerId: 'gc-mix', model: 'no-such-model-xyz' }),
    ])
    expect(sizes).toEqual([5])
    expect(results.map((r) => r.status)).toEqual(['RECORDED', 'REJECTED', 'RECORDED', 'REJECTED', 'RECORDED'])
    expect(results[1]!.error?.code).toBe('INVALID_INPUT')
    expect(results[4]!.event?.status).toBe('UNPRICED')
    expect(await rollupTotals('gc-mix')).toMatchObject({ events: 3 })
  })

  it('when the pipeline throws for a group, retries each caller alone: only the failing one fails', async () => {
    const { usage, sizes } = counted({ failWhen: (input) => input.customerId === 'gc-boom' })
    const outcomes = await Promise.allSettled([
      usage.recordOne(tenant, { ...base, id: 'gc-iso-0', customerId: 'gc-iso' }),
      usage.recordOne(tenant, { ...base, id: 'gc-iso-boom', customerId: 'gc-boom' }),
      usage.recordOne(tenant, { ...base, id: 'gc-iso-1', customerId: 'gc-iso' }),
    ])
    expect(sizes[0]).toBe(3)
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    for (const o of [outcomes[0], outcomes[2]]) {
      expect(o!.status === 'fulfilled' && o!.value.status).toBe('RECORDED')
    }
    expect(await rollupTotals('gc-iso')).toMatchObject({ events: 2 })
    expect(await storedEvents('gc-boom')).toHaveLength(0)
  })

  it('sends a group as soon as maxBatch callers wait in it', async () => {
    const { usage, sizes } = counted({ maxBatch: 4 })
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        usage.recordOne(tenant, { ...base, id: `gc-max-${i}`, customerId: 'gc-max' }),
      ),
    )
    expect(results.every((r) => r.status === 'RECORDED')).toBe(true)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10)
  })

  it('sends a call that finds the pipeline idle at the end of its event-loop turn, with the calls of that turn, not after the window', async () => {
    // A ten-minute window: had the lone call waited for it, this test would time out.
    const { usage, sizes } = counted({ maxWaitMs: 600_000 })
    const lone = await usage.recordOne(tenant, { ...base, id: 'gc-idle-0', customerId: 'gc-idle' })
    expect(lone.status).toBe('RECORDED')
    // A burst of one turn still goes as one group.
    const burst = await Promise.all(
      [1, 2, 3].map((i) => usage.recordOne(tenant, { ...base, id: `gc-idle-${i}`, customerId: 'gc-idle' })),
    )
    expect(burst.map((r) => r.status)).toEqual(['RECORDED', 'RECORDED', 'RECORDED'])
    expect(sizes).toEqual([1, 3])
  })

  it('recordUsage over GraphQL goes through group commit and answers each call with its own event', async () => {
    const RECORD = /* GraphQL */ `
      mutation ($event: UsageEventInput!) {
        recordUsage(event: $event) {
          status
          error {
            code
          }
          event {
            id
            customerId
            cost
          }
        }
      }
    `
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.gql(RECORD, {
          event: {
            ...base,
            timestamp: '2026-11-20T11:00:00Z',
            id: i === 11 ? 'gql-gc-0' : `gql-gc-${i}`,
            customerId: `gql-gc-${i % 3}`,
          },
        }),
      ),
    )
    for (const [i, response] of responses.entries()) {
      expect(response.errors).toBeUndefined()
      const result = response.data!.recordUsage
      if (i === 11) {
        // Same id as call 0 with a different customer: different content.
        expect(result.status).toBe('REJECTED')
        expect(result.error.code).toBe('IDEMPOTENCY_CONFLICT')
      } else {
        expect(result.status).toBe('RECORDED')
        expect(result.event).toMatchObject({ id: `gql-gc-${i}`, customerId: `gql-gc-${i % 3}` })
      }
    }
  })
})
