import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { signEvent } from '../../src/usage/signing.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const RECORD = /* GraphQL */ `
  mutation ($event: UsageEventInput!) {
    recordUsage(event: $event) {
      status
      error {
        code
        message
        field
      }
      event {
        id
        customerId
        model
        canonicalModel
        provider
        timestamp
        status
        cost
        amount
        currency
        feature
        lines {
          usageType
          quantity
          unitPrice
          cost
          amount
          priceId
        }
      }
    }
  }
`
const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
      duplicates
      rejected
      results {
        status
        error {
          code
          field
          message
        }
        event {
          id
          cost
          amount
        }
      }
    }
  }
`
const NOW = '2026-11-20T12:00:00Z'
const clock = fixedClock(NOW)
const base = {
  customerId: 'acme',
  model: 'gpt-4o-2024-08-06',
  timestamp: '2026-11-20T11:00:00Z',
  inputTokens: 1000,
  outputTokens: 500,
}

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ clock })
})
afterAll(() => t.close())

async function count(table: 'usage_events' | 'customers' | 'usage_rollups', tenantId = t.tenant.id) {
  const row = await t.database.db
    .selectFrom(table)
    .where('tenant_id', '=', tenantId)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

describe('recordUsage', () => {
  it('prices an event exactly, resolving the model alias and inferring the provider', async () => {
    const { data, errors } = await t.gql(RECORD, {
      event: { ...base, id: 'evt-1', cacheReadTokens: 400, feature: 'chat' },
    })
    expect(errors).toBeUndefined()
    const r = data!.recordUsage
    expect(r.status).toBe('RECORDED')
    expect(r.event).toMatchObject({
      id: 'evt-1',
      model: 'gpt-4o-2024-08-06',
      canonicalModel: 'gpt-4o',
      provider: 'openai',
      status: 'PRICED',
      currency: 'USD',
      feature: 'chat',
    })
    // 600 input × 2.5/M + 400 cache read × 1.25/M + 500 output × 10/M
    expect(
      r.event.lines.map((l: { usageType: string; quantity: string; cost: string }) => [
        l.usageType,
        l.quantity,
        l.cost,
      ]),
    ).toEqual([
      ['input', '600', '0.0015'],
      ['cache_read', '400', '0.0005'],
      ['output', '500', '0.005'],
    ])
    expect(r.event.cost).toBe('0.007')
    expect(r.event.amount).toBe('0.007')
    expect(r.event.lines.every((l: { priceId: string }) => /^\d+$/.test(l.priceId))).toBe(true)
  })

  it('answers a replay with DUPLICATE and the original event, changing nothing', async () => {
    const before = await count('usage_events')
    const { data } = await t.gql(RECORD, {
      event: { ...base, id: 'evt-1', cacheReadTokens: 400, feature: 'chat', timestamp: '2026-11-20T12:00:00+01:00' },
    })
    expect(data!.recordUsage.status).toBe('DUPLICATE')
    expect(data!.recordUsage.event.cost).toBe('0.007')
    expect(await count('usage_events')).toBe(before)
  })

  it('rejects the same id with different content as IDEMPOTENCY_CONFLICT', async () => {
    const { data } = await t.gql(RECORD, { event: { ...base, id: 'evt-1', inputTokens: 1001 } })
    expect(data!.recordUsage).toMatchObject({
      status: 'REJECTED',
      event: null,
      error: { code: 'IDEMPOTENCY_CONFLICT', field: 'id' },
    })
  })

  it('stores an unknown model as UNPRICED and never drops it', async () => {
    const { data } = await t.gql(RECORD, { event: { ...base, id: 'evt-unknown', model: 'totally-new-model-9000' } })
    expect(data!.recordUsage.status).toBe('RECORDED')
    expect(data!.recordUsage.event).toMatchObject({
      status: 'UNPRICED',
      cost: null,
      amount: null,
      lines: [],
      canonicalModel: null,
    })
  })

  it.each([
    [{ inputTokens: -1 }, 'inputTokens'],
    [{ cacheReadTokens: 1001 }, 'cacheReadTokens'],
    [{ cacheReadTokens: 600, cacheWriteTokens: 600 }, 'cacheWriteTokens'],
    [{ reasoningTokens: 501 }, 'reasoningTokens'],
    [{ timestamp: '2026-11-20T12:05:01Z' }, 'timestamp'],
    [{ id: '' }, 'id'],
    [{ id: 'x'.repeat(256) }, 'id'],
    [{ customerId: '' }, 'customerId'],
    [{ units: [{ unit: 'gold_bars', quantity: '1' }] }, 'units[0].unit'],
    [{ units: [{ unit: 'web_searches', quantity: '-1' }] }, 'units[0].quantity'],
    [{ metadata: ['not', 'an', 'object'] }, 'metadata'],
    [{ metadata: { blob: 'x'.repeat(4100) } }, 'metadata'],
  ])('rejects %j with INVALID_INPUT on %s and stores nothing', async (change, field) => {
    const before = await count('usage_events')
    const { data, errors } = await t.gql(RECORD, { event: { ...base, id: `bad-${field}`, ...change } })
    expect(errors).toBeUndefined()
    expect(data!.recordUsage).toMatchObject({
      status: 'REJECTED',
      event: null,
      error: { code: 'INVALID_INPUT', field },
    })
    expect(data!.recordUsage.error.message.length).toBeGreaterThan(10)
    expect(await count('usage_events')).toBe(before)
  })

  it('refuses type errors (fractional or overflowing tokens, unparseable timestamps) before anything is stored', async () => {
    const before = await count('usage_events')
    const cases: [Record<string, unknown>, string][] = [
      [{ inputTokens: 1.5 }, 'event.inputTokens'],
      [{ outputTokens: 2 ** 31 }, 'event.outputTokens'],
      [{ timestamp: 'yesterday' }, 'event.timestamp'],
    ]
    for (const [change, field] of cases) {
      const { data, errors } = await t.gql(RECORD, { event: { ...base, id: 'type-error', ...change } })
      expect(data).toBeUndefined()
      expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field })
    }
    expect(await count('usage_events')).toBe(before)
  })

  it('requires an API key', async () => {
    const { errors } = await t.gql(RECORD, { event: { ...base, id: 'anon' } }, null)
    expect(errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    const bad = await t.gql(RECORD, { event: { ...base, id: 'anon' } }, 'br_sk_wrong')
    expect(bad.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })
})

describe('recordUsageBatch', () => {
  it('returns one result per event in order; a bad event blocks nothing', async () => {
    const events = [
      { ...base, id: 'b-1' },
      { ...base, id: 'b-2', inputTokens: -5 },
      { ...base, id: 'evt-1', cacheReadTokens: 400, feature: 'chat' },
      { ...base, id: 'b-3', model: 'claude-sonnet-4-5' },
      { ...base, id: 'b-1' },
      { ...base, id: 'b-3', inputTokens: 7 },
    ]
    const { data, errors } = await t.gql(BATCH, { events })
    expect(errors).toBeUndefined()
    const out = data!.recordUsageBatch
    expect(out.results.map((r: { status: string }) => r.status)).toEqual([
      'RECORDED',
      'REJECTED',
      'DUPLICATE',
      'RECORDED',
      'DUPLICATE',
      'REJECTED',
    ])
    expect(out.results[1].error).toMatchObject({ code: 'INVALID_INPUT', field: 'inputTokens' })
    expect(out.results[5].error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' })
    expect(out.results[4].event.id).toBe('b-1')
    expect([out.recorded, out.duplicates, out.rejected]).toEqual([2, 2, 2])
  })

  it('refuses batches over 1,000 events as a whole', async () => {
    const events = Array.from({ length: 1001 }, (_, i) => ({ ...base, id: `big-${i}` }))
    const { errors } = await t.gql(BATCH, { events })
    expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'events' })
    expect(
      await t.database.db.selectFrom('usage_events').where('id', 'like', 'big-%').selectAll().execute(),
    ).toHaveLength(0)
  })

  it('stores exactly one event per id under concurrent overlapping batches', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `race-${i}`)
    const batches = Array.from({ length: 6 }, (_, b) =>
      ids.slice(b * 5, b * 5 + 40).map((id) => ({ ...base, id, customerId: `c-${id.length % 3}` })),
    )
    const replies = await Promise.all(batches.map((events) => t.gql(BATCH, { events })))
    const recorded = replies.reduce((n, r) => n + r.data!.recordUsageBatch.recorded, 0)
    const rows = await t.database.db
      .selectFrom('usage_events')
      .where('tenant_id', '=', t.tenant.id)
      .where('id', 'like', 'race-%')
      .select('id')
      .execute()
    expect(rows).toHaveLength(new Set(batches.flat().map((e) => e.id)).size)
    expect(recorded).toBe(rows.length)
    const rollup = await t.database.db
      .selectFrom('usage_rollups')
      .where('tenant_id', '=', t.tenant.id)
      .select((eb) => eb.fn.sum<string>('events').as('events'))
      .executeTakeFirstOrThrow()
    expect(Number(rollup.events)).toBe(await count('usage_events'))
  })
})

describe('signed events', () => {
  it('requires a valid signature when the tenant says so, and catches tampering', async () => {
    const other = await t.createTenant('Signed')
    const set = await t.gql(
      `mutation { updateTenantSettings(input: { requireSignatures: true }) { requireSignatures } }`,
      {},
      other.apiKey,
    )
    expect(set.data!.updateTenantSettings.requireSignatures).toBe(true)
    const event = {
      ...base,
      id: 'signed-1',
      units: [{ unit: 'web_searches', quantity: '2' }],
      metadata: { team: 'blue' },
    }
    const signature = signEvent(event, other.signingSecret)

    const unsigned = await t.gql(RECORD, { event }, other.apiKey)
    expect(unsigned.data!.recordUsage.error).toMatchObject({ code: 'INVALID_SIGNATURE', field: 'signature' })
    const tampered = await t.gql(RECORD, { event: { ...event, outputTokens: 5000, signature } }, other.apiKey)
    expect(tampered.data!.recordUsage).toMatchObject({ status: 'REJECTED', error: { code: 'INVALID_SIGNATURE' } })
    const good = await t.gql(RECORD, { event: { ...event, signature } }, other.apiKey)
    expect(good.data!.recordUsage.status).toBe('RECORDED')
    expect(await count('usage_events', other.id)).toBe(1)
  })
})

describe('pricing plans', () => {
  it('applies a plan from its effective time, never retroactively', async () => {
    const plan = await t.gql(
      `mutation { setPricingPlan(input: { kind: MARKUP, percent: "30" }) { kind percent customerId } }`,
    )
    expect(plan.data!.setPricingPlan).toEqual({ kind: 'MARKUP', percent: '30', customerId: null })
    const margin = await t.gql(
      `mutation { setPricingPlan(input: { customerId: "vip", kind: MARGIN, percent: "100" }) { kind } }`,
    )
    expect(margin.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.percent' })

    const before = await t.gql(RECORD, {
      event: { ...base, id: 'plan-before', timestamp: '2026-11-20T11:59:00Z', inputTokens: 1_000_000, outputTokens: 0 },
    })
    expect(before.data!.recordUsage.event).toMatchObject({ cost: '2.5', amount: '2.5' })
    const after = await t.gql(RECORD, {
      event: { ...base, id: 'plan-after', timestamp: NOW, inputTokens: 1_000_000, outputTokens: 0 },
    })
    expect(after.data!.recordUsage.event).toMatchObject({ cost: '2.5', amount: '3.25' })

    await t.gql(`mutation { setPricingPlan(input: { customerId: "vip", kind: MARGIN, percent: "30" }) { kind } }`)
    clock.advance(1000)
    const vip = await t.gql(RECORD, {
      event: {
        ...base,
        id: 'plan-vip',
        customerId: 'vip',
        timestamp: new Date(clock.now()).toISOString(),
        inputTokens: 1_000_000,
        outputTokens: 0,
      },
    })
    expect(vip.data!.recordUsage.event.amount).toBe('3.571428571428571429')
    const read = await t.gql(
      `{ vip: pricingPlan(customerId: "vip") { kind percent customerId } other: pricingPlan(customerId: "x") { kind percent customerId } }`,
    )
    expect(read.data).toEqual({
      vip: { kind: 'MARGIN', percent: '30', customerId: 'vip' },
      other: { kind: 'MARKUP', percent: '30', customerId: null },
    })
  })
})

describe('customers', () => {
  it('creates customers on first use and lets upsertCustomer set name and Stripe id', async () => {
    expect((await t.gql(`{ customer(id: "acme") { id name stripeCustomerId } }`)).data!.customer).toEqual({
      id: 'acme',
      name: null,
      stripeCustomerId: null,
    })
    const up = await t.gql(
      `mutation { upsertCustomer(input: { id: "acme", name: "Acme Inc", stripeCustomerId: "cus_123" }) { id name stripeCustomerId } }`,
    )
    expect(up.data!.upsertCustomer).toEqual({ id: 'acme', name: 'Acme Inc', stripeCustomerId: 'cus_123' })
    expect((await t.gql(`{ customer(id: "nobody") { id } }`)).data!.customer).toBeNull()
  })
})
