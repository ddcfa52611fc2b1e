import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { createTestApp, fixedClock, type GqlResponse, type TestApp } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

const NOW = '2026-11-20T12:00:00Z'

const RECORD = `mutation($events: [UsageEventInput!]!) {
  recordUsageBatch(events: $events) { recorded rejected results { status error { code message field } } }
}`

const SUMMARY = `query($customerId: String, $from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]) {
  usageSummary(customerId: $customerId, from: $from, to: $to, groupBy: $groupBy) {
    customerId from to currency events unpricedEvents inputTokens outputTokens cost amount
    groups { model provider feature usageType bucketStart events inputTokens outputTokens cost amount }
  }
}`

const EVENTS = `query($customerId: String!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  usageEvents(customerId: $customerId, from: $from, to: $to, first: $first, after: $after) {
    edges { cursor node { id customerId timestamp cost amount } }
    pageInfo { hasNextPage endCursor }
  }
}`

interface EventInput {
  id: string
  customerId: string
  model: string
  timestamp: string
  provider?: string
  inputTokens?: number
  outputTokens?: number
  cacheReadTokens?: number
  feature?: string
}

/*
 * Tenant A's fixture, hand-priced with the bundled catalog (no plan: amount = cost).
 *   gpt-4o:            input 2.5/M, cache read 1.25/M, output 10/M
 *   gpt-4o-mini:       input 0.15/M, output 0.6/M
 *   claude-sonnet-4-5: input 3/M, output 15/M (below its 200k-token tier)
 */
const FIXTURE: EventInput[] = [
  // 1M in + 1M out = 2.5 + 10 = 12.5
  {
    id: 'e1',
    customerId: 'acme',
    model: 'gpt-4o',
    timestamp: '2026-11-19T10:15:00Z',
    inputTokens: 1_000_000,
    outputTokens: 1_000_000,
    feature: 'chat',
  },
  // input 100k exclusive = 0.25, cache read 100k = 0.125, output 10k = 0.1 → 0.475
  {
    id: 'e2',
    customerId: 'acme',
    model: 'gpt-4o',
    timestamp: '2026-11-19T10:45:00Z',
    inputTokens: 200_000,
    cacheReadTokens: 100_000,
    outputTokens: 10_000,
    feature: 'summarize',
  },
  // 0.15 + 0.6 = 0.75
  {
    id: 'e3',
    customerId: 'acme',
    model: 'gpt-4o-mini',
    timestamp: '2026-11-19T11:30:00Z',
    inputTokens: 1_000_000,
    outputTokens: 1_000_000,
  },
  // unknown model: UNPRICED, cost 0 in sums
  {
    id: 'e4',
    customerId: 'acme',
    model: 'mystery-model-x',
    provider: 'acme-ai',
    timestamp: '2026-11-19T11:50:00Z',
    inputTokens: 500,
    outputTokens: 50,
  },
  // 100k × 3/M + 10k × 15/M = 0.3 + 0.15 = 0.45
  {
    id: 'e5',
    customerId: 'acme',
    model: 'claude-sonnet-4-5',
    timestamp: '2026-11-20T09:05:00Z',
    inputTokens: 100_000,
    outputTokens: 10_000,
    feature: 'chat',
  },
  // another customer: 0.0025 + 0.01 = 0.0125
  {
    id: 'e6',
    customerId: 'globex',
    model: 'gpt-4o',
    timestamp: '2026-11-19T10:20:00Z',
    inputTokens: 1_000,
    outputTokens: 1_000,
    feature: 'chat',
  },
]

const DAY_19 = '2026-11-19T00:00:00.000Z'
const DAY_20 = '2026-11-20T00:00:00.000Z'
const WHOLE = { from: DAY_19, to: '2026-11-21T00:00:00Z' }

let t: TestApp

async function record(events: EventInput[], key?: string) {
  const res = await t.gql(RECORD, { events }, key)
  expect(res.errors).toBeUndefined()
  expect(res.data!.recordUsageBatch.rejected, JSON.stringify(res.data!.recordUsageBatch.results)).toBe(0)
}

async function summary(variables: Record<string, unknown>, key?: string) {
  const res = await t.gql(SUMMARY, variables, key)
  expect(res.errors).toBeUndefined()
  return res.data!.usageSummary
}

/** A group with every field; dimensions not given are null. */
function group(
  g: Partial<Record<'model' | 'provider' | 'feature' | 'usageType' | 'bucketStart', string>> & {
    events: number
    inputTokens: number
    outputTokens: number
    cost: string
    amount?: string
  },
) {
  return {
    model: null,
    provider: null,
    feature: null,
    usageType: null,
    bucketStart: null,
    ...g,
    amount: g.amount ?? g.cost,
  }
}

beforeAll(async () => {
  t = await createTestApp({ clock: fixedClock(NOW) })
  await record(FIXTURE)
})
afterAll(() => t?.close())

describe('usageSummary totals', () => {
  it('sums one customer over whole days', async () => {
    expect(await summary({ customerId: 'acme', ...WHOLE })).toEqual({
      customerId: 'acme',
      from: DAY_19,
      to: '2026-11-21T00:00:00.000Z',
      currency: 'USD',
      events: 5,
      unpricedEvents: 1,
      inputTokens: 1_000_000 + 200_000 + 1_000_000 + 500 + 100_000,
      outputTokens: 1_000_000 + 10_000 + 1_000_000 + 50 + 10_000,
      cost: '14.175',
      amount: '14.175',
      groups: [],
    })
  })

  it('sums the whole tenant when customerId is null', async () => {
    const s = await summary({ customerId: null, ...WHOLE })
    expect(s).toMatchObject({ customerId: null, events: 6, unpricedEvents: 1, cost: '14.1875', amount: '14.1875' })
  })

  it('is zero, as "0", for a range without events', async () => {
    const s = await summary({
      customerId: 'acme',
      from: '2026-10-01T00:00:00Z',
      to: '2026-10-02T00:00:00Z',
      groupBy: ['MODEL'],
    })
    expect(s).toMatchObject({
      events: 0,
      unpricedEvents: 0,
      inputTokens: 0,
      outputTokens: 0,
      cost: '0',
      amount: '0',
      groups: [],
    })
  })
})

describe('usageSummary groups', () => {
  it('groups by MODEL (canonical name; unpriced events under their reported model)', async () => {
    const s = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['MODEL'] })
    expect(s.groups).toEqual([
      group({ model: 'claude-sonnet-4-5', events: 1, inputTokens: 100_000, outputTokens: 10_000, cost: '0.45' }),
      group({ model: 'gpt-4o', events: 2, inputTokens: 1_200_000, outputTokens: 1_010_000, cost: '12.975' }),
      group({ model: 'gpt-4o-mini', events: 1, inputTokens: 1_000_000, outputTokens: 1_000_000, cost: '0.75' }),
      group({ model: 'mystery-model-x', events: 1, inputTokens: 500, outputTokens: 50, cost: '0' }),
    ])
  })

  it('groups by PROVIDER', async () => {
    const s = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['PROVIDER'] })
    expect(s.groups).toEqual([
      group({ provider: 'acme-ai', events: 1, inputTokens: 500, outputTokens: 50, cost: '0' }),
      group({ provider: 'anthropic', events: 1, inputTokens: 100_000, outputTokens: 10_000, cost: '0.45' }),
      group({ provider: 'openai', events: 3, inputTokens: 2_200_000, outputTokens: 2_010_000, cost: '13.725' }),
    ])
  })

  it('groups by FEATURE, with null for events without one (sorted last)', async () => {
    const s = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['FEATURE'] })
    expect(s.groups).toEqual([
      group({ feature: 'chat', events: 2, inputTokens: 1_100_000, outputTokens: 1_010_000, cost: '12.95' }),
      group({ feature: 'summarize', events: 1, inputTokens: 200_000, outputTokens: 10_000, cost: '0.475' }),
      group({ events: 2, inputTokens: 1_000_500, outputTokens: 1_000_050, cost: '0.75' }),
    ])
  })

  it('groups by USAGE_TYPE from priced lines; the groups add up to the total cost', async () => {
    const s = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['USAGE_TYPE'] })
    expect(s.groups).toEqual([
      // cache_read is an input token type: its quantity counts as input tokens
      group({ usageType: 'cache_read', events: 1, inputTokens: 100_000, outputTokens: 0, cost: '0.125' }),
      // 0.25 + 2.5 + 0.15 + 0.3
      group({
        usageType: 'input',
        events: 4,
        inputTokens: 100_000 + 1_000_000 + 1_000_000 + 100_000,
        outputTokens: 0,
        cost: '3.2',
      }),
      // 10 + 0.1 + 0.6 + 0.15
      group({ usageType: 'output', events: 4, inputTokens: 0, outputTokens: 2_020_000, cost: '10.85' }),
    ])
    // Totals still come from the event rollups: they include the unpriced event.
    expect(s).toMatchObject({ events: 5, unpricedEvents: 1, cost: '14.175' })
  })

  it('groups by DAY and HOUR in UTC', async () => {
    const byDay = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['DAY'] })
    expect(byDay.groups).toEqual([
      group({ bucketStart: DAY_19, events: 4, inputTokens: 2_200_500, outputTokens: 2_010_050, cost: '13.725' }),
      group({ bucketStart: DAY_20, events: 1, inputTokens: 100_000, outputTokens: 10_000, cost: '0.45' }),
    ])
    const byHour = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['HOUR'] })
    expect(byHour.groups).toEqual([
      group({
        bucketStart: '2026-11-19T10:00:00.000Z',
        events: 2,
        inputTokens: 1_200_000,
        outputTokens: 1_010_000,
        cost: '12.975',
      }),
      group({
        bucketStart: '2026-11-19T11:00:00.000Z',
        events: 2,
        inputTokens: 1_000_500,
        outputTokens: 1_000_050,
        cost: '0.75',
      }),
      group({
        bucketStart: '2026-11-20T09:00:00.000Z',
        events: 1,
        inputTokens: 100_000,
        outputTokens: 10_000,
        cost: '0.45',
      }),
    ])
  })

  it('groups by combinations, ordered by bucket, then model, provider, feature, usage type', async () => {
    const s = await summary({ customerId: null, ...WHOLE, groupBy: ['FEATURE', 'DAY', 'MODEL'] })
    expect(s.groups).toEqual([
      group({
        bucketStart: DAY_19,
        model: 'gpt-4o',
        feature: 'chat',
        events: 2,
        inputTokens: 1_001_000,
        outputTokens: 1_001_000,
        cost: '12.5125',
      }),
      group({
        bucketStart: DAY_19,
        model: 'gpt-4o',
        feature: 'summarize',
        events: 1,
        inputTokens: 200_000,
        outputTokens: 10_000,
        cost: '0.475',
      }),
      group({
        bucketStart: DAY_19,
        model: 'gpt-4o-mini',
        events: 1,
        inputTokens: 1_000_000,
        outputTokens: 1_000_000,
        cost: '0.75',
      }),
      group({
        bucketStart: DAY_19,
        model: 'mystery-model-x',
        events: 1,
        inputTokens: 500,
        outputTokens: 50,
        cost: '0',
      }),
      group({
        bucketStart: DAY_20,
        model: 'claude-sonnet-4-5',
        feature: 'chat',
        events: 1,
        inputTokens: 100_000,
        outputTokens: 10_000,
        cost: '0.45',
      }),
    ])

    const lines = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['USAGE_TYPE', 'MODEL', 'PROVIDER'] })
    expect(lines.groups).toEqual([
      group({
        model: 'claude-sonnet-4-5',
        provider: 'anthropic',
        usageType: 'input',
        events: 1,
        inputTokens: 100_000,
        outputTokens: 0,
        cost: '0.3',
      }),
      group({
        model: 'claude-sonnet-4-5',
        provider: 'anthropic',
        usageType: 'output',
        events: 1,
        inputTokens: 0,
        outputTokens: 10_000,
        cost: '0.15',
      }),
      group({
        model: 'gpt-4o',
        provider: 'openai',
        usageType: 'cache_read',
        events: 1,
        inputTokens: 100_000,
        outputTokens: 0,
        cost: '0.125',
      }),
      group({
        model: 'gpt-4o',
        provider: 'openai',
        usageType: 'input',
        events: 2,
        inputTokens: 1_100_000,
        outputTokens: 0,
        cost: '2.75',
      }),
      group({
        model: 'gpt-4o',
        provider: 'openai',
        usageType: 'output',
        events: 2,
        inputTokens: 0,
        outputTokens: 1_010_000,
        cost: '10.1',
      }),
      group({
        model: 'gpt-4o-mini',
        provider: 'openai',
        usageType: 'input',
        events: 1,
        inputTokens: 1_000_000,
        outputTokens: 0,
        cost: '0.15',
      }),
      group({
        model: 'gpt-4o-mini',
        provider: 'openai',
        usageType: 'output',
        events: 1,
        inputTokens: 0,
        outputTokens: 1_000_000,
        cost: '0.6',
      }),
    ])

    const hourly = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['HOUR', 'USAGE_TYPE'] })
    expect(
      hourly.groups.map((g: { bucketStart: string; usageType: string; cost: string }) => [
        g.bucketStart,
        g.usageType,
        g.cost,
      ]),
    ).toEqual([
      ['2026-11-19T10:00:00.000Z', 'cache_read', '0.125'],
      ['2026-11-19T10:00:00.000Z', 'input', '2.75'],
      ['2026-11-19T10:00:00.000Z', 'output', '10.1'],
      ['2026-11-19T11:00:00.000Z', 'input', '0.15'],
      ['2026-11-19T11:00:00.000Z', 'output', '0.6'],
      ['2026-11-20T09:00:00.000Z', 'input', '0.3'],
      ['2026-11-20T09:00:00.000Z', 'output', '0.15'],
    ])
  })

  it('ignores a repeated dimension and treats DAY with HOUR as hourly', async () => {
    const s = await summary({ customerId: 'acme', ...WHOLE, groupBy: ['DAY', 'HOUR', 'HOUR'] })
    expect(s.groups.map((g: { bucketStart: string }) => g.bucketStart)).toEqual([
      '2026-11-19T10:00:00.000Z',
      '2026-11-19T11:00:00.000Z',
      '2026-11-20T09:00:00.000Z',
    ])
  })
})

describe('usageSummary partial-hour edges', () => {
  it('includes exactly the events in [from, to) when neither is on the hour', async () => {
    // e1 (10:15) and e4 (11:50) fall outside; e2 (10:45) and e3 (11:30) inside.
    const s = await summary({
      customerId: 'acme',
      from: '2026-11-19T10:30:00Z',
      to: '2026-11-19T11:40:00Z',
      groupBy: ['HOUR'],
    })
    expect(s).toMatchObject({ events: 2, unpricedEvents: 0, cost: '1.225' })
    expect(s.groups.map((g: { bucketStart: string; cost: string }) => [g.bucketStart, g.cost])).toEqual([
      ['2026-11-19T10:00:00.000Z', '0.475'],
      ['2026-11-19T11:00:00.000Z', '0.75'],
    ])
  })

  it('is half-open: an event exactly at `to` is out, exactly at `from` is in', async () => {
    // e6 is at 10:20:00 exactly.
    const before = await summary({ customerId: null, from: '2026-11-19T10:10:00Z', to: '2026-11-19T10:20:00Z' })
    expect(before).toMatchObject({ events: 1, cost: '12.5' })
    const after = await summary({ customerId: null, from: '2026-11-19T10:20:00Z', to: '2026-11-19T10:50:00Z' })
    expect(after).toMatchObject({ events: 2, cost: '0.4875' })
  })

  it('merges rollup hours with both edges, for events and for lines', async () => {
    // Edges [10:30, 11:00) and [09:00, 09:30) on the 20th, whole hours in between: e2, e3, e4, e5.
    const range = { customerId: 'acme', from: '2026-11-19T10:30:00Z', to: '2026-11-20T09:30:00Z' }
    const s = await summary({ ...range, groupBy: ['MODEL'] })
    expect(s).toMatchObject({
      events: 4,
      unpricedEvents: 1,
      inputTokens: 1_300_500,
      outputTokens: 1_020_050,
      cost: '1.675',
    })
    expect(s.groups.map((g: { model: string; cost: string }) => [g.model, g.cost])).toEqual([
      ['claude-sonnet-4-5', '0.45'],
      ['gpt-4o', '0.475'],
      ['gpt-4o-mini', '0.75'],
      ['mystery-model-x', '0'],
    ])
    const lines = await summary({ ...range, groupBy: ['USAGE_TYPE'] })
    expect(
      lines.groups.map((g: { usageType: string; cost: string; events: number }) => [g.usageType, g.events, g.cost]),
    ).toEqual([
      ['cache_read', 1, '0.125'],
      ['input', 3, '0.7'],
      ['output', 3, '0.85'],
    ])
    // Cutting e5's hour at 09:05 exactly leaves it out.
    expect(await summary({ ...range, to: '2026-11-20T09:05:00Z' })).toMatchObject({ events: 3, cost: '1.225' })
  })
})

describe('usageSummary input checks', () => {
  const errorOf = async (variables: Record<string, unknown>) => {
    const res = await t.gql(SUMMARY, variables)
    expect(res.data).toBeNull()
    return res.errors![0]!
  }

  it('requires from < to', async () => {
    const err = await errorOf({ from: DAY_20, to: DAY_19 })
    expect(err.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' })
    expect((await errorOf({ from: DAY_20, to: DAY_20 })).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'to',
    })
  })

  it('caps the range at 400 days and HOUR grouping at 31 days', async () => {
    expect((await errorOf({ from: '2025-01-01T00:00:00Z', to: '2026-02-06T00:00:00Z' })).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'to',
    })
    const ok = await t.gql(SUMMARY, { from: '2025-01-01T00:00:00Z', to: '2026-02-05T00:00:00Z', groupBy: ['DAY'] })
    expect(ok.errors).toBeUndefined()
    const hourly = await errorOf({ from: '2026-10-01T00:00:00Z', to: '2026-11-02T00:00:00Z', groupBy: ['HOUR'] })
    expect(hourly.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'groupBy' })
    expect(hourly.message).toMatch(/31 days/)
  })

  it('requires a key', async () => {
    const res = await t.gql(SUMMARY, WHOLE, null)
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED' })
  })
})

describe('tenant isolation', () => {
  it("never shows tenant A's events or summary to tenant B's key", async () => {
    const b = await t.createTenant('Tenant B')
    // B has its own customer "acme" and even its own event "e1".
    await record(
      [
        {
          id: 'e1',
          customerId: 'acme',
          model: 'gpt-4o-mini',
          timestamp: '2026-11-19T10:15:00Z',
          inputTokens: 1_000_000,
        },
      ],
      b.apiKey,
    )

    expect(await summary({ customerId: 'acme', ...WHOLE, groupBy: ['MODEL'] }, b.apiKey)).toMatchObject({
      events: 1,
      cost: '0.15',
      groups: [group({ model: 'gpt-4o-mini', events: 1, inputTokens: 1_000_000, outputTokens: 0, cost: '0.15' })],
    })
    expect(await summary({ customerId: null, ...WHOLE, groupBy: ['USAGE_TYPE'] }, b.apiKey)).toMatchObject({
      events: 1,
      cost: '0.15',
    })
    expect(await summary({ customerId: 'globex', ...WHOLE }, b.apiKey)).toMatchObject({ events: 0, cost: '0' })
    // Edges (raw events) are tenant-scoped too.
    expect(
      await summary({ customerId: null, from: '2026-11-19T10:10:00Z', to: '2026-11-19T10:50:00Z' }, b.apiKey),
    ).toMatchObject({ events: 1 })

    const events = await t.gql(EVENTS, { customerId: 'acme' }, b.apiKey)
    expect(events.data!.usageEvents.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(['e1'])
    expect(events.data!.usageEvents.edges[0].node.cost).toBe('0.15')
    expect((await t.gql(EVENTS, { customerId: 'globex' }, b.apiKey)).data!.usageEvents.edges).toEqual([])
  })
})

describe('usageEvents', () => {
  // Two pairs share a timestamp: the id breaks the tie (descending).
  const PAGER = [
    ['p1', '2026-11-18T08:00:00Z'],
    ['p2', '2026-11-18T09:00:00Z'],
    ['p3', '2026-11-18T09:00:00Z'],
    ['p4', '2026-11-18T09:30:00.123Z'],
    ['p5', '2026-11-18T10:00:00Z'],
    ['p6', '2026-11-18T10:00:00Z'],
    ['p7', '2026-11-18T11:00:00Z'],
  ] as const
  const NEWEST_FIRST = ['p7', 'p6', 'p5', 'p4', 'p3', 'p2', 'p1']

  beforeAll(async () => {
    await record(
      PAGER.map(([id, timestamp]) => ({
        id,
        customerId: 'pager',
        model: 'gpt-4o',
        timestamp,
        inputTokens: 10,
        outputTokens: 1,
      })),
    )
  })

  it('walks all 7 events exactly once, newest first, 3 at a time', async () => {
    const seen: string[] = []
    const pages: { size: number; hasNextPage: boolean }[] = []
    let after: string | null = null
    for (let i = 0; i < 5; i++) {
      const res: GqlResponse = await t.gql(EVENTS, { customerId: 'pager', first: 3, after })
      expect(res.errors).toBeUndefined()
      const { edges, pageInfo } = res.data!.usageEvents
      seen.push(...edges.map((e: { node: { id: string } }) => e.node.id))
      pages.push({ size: edges.length, hasNextPage: pageInfo.hasNextPage })
      expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null)
      if (!pageInfo.hasNextPage) break
      after = pageInfo.endCursor
    }
    expect(seen).toEqual(NEWEST_FIRST)
    expect(pages).toEqual([
      { size: 3, hasNextPage: true },
      { size: 3, hasNextPage: true },
      { size: 1, hasNextPage: false },
    ])
  })

  it('defaults to 50, filters by [from, to) and reports no next page on an exact fit', async () => {
    const all = await t.gql(EVENTS, { customerId: 'pager' })
    expect(all.data!.usageEvents.edges).toHaveLength(7)
    expect(all.data!.usageEvents.pageInfo.hasNextPage).toBe(false)

    const exact = await t.gql(EVENTS, { customerId: 'pager', first: 7 })
    expect(exact.data!.usageEvents.pageInfo.hasNextPage).toBe(false)

    const windowed = await t.gql(EVENTS, {
      customerId: 'pager',
      from: '2026-11-18T09:00:00Z',
      to: '2026-11-18T10:00:00Z',
    })
    expect(windowed.data!.usageEvents.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(['p4', 'p3', 'p2'])
    expect(windowed.data!.usageEvents.edges[0].node.timestamp).toBe('2026-11-18T09:30:00.123Z')
  })

  it('filters by model as usageSummary groups it, and by feature, paging within the filter', async () => {
    const MODEL_EVENTS = `query($customerId: String!, $model: String, $feature: String, $first: Int, $after: String) {
      usageEvents(customerId: $customerId, model: $model, feature: $feature, first: $first, after: $after) {
        edges { node { id model canonicalModel feature } }
        pageInfo { hasNextPage endCursor }
      }
    }`
    // A few events of one model behind many newer ones of another: the filter runs on the server.
    const old = Array.from({ length: 7 }, (_, i) => ({
      id: `mf-mini-${i}`,
      customerId: 'model-filter',
      model: 'gpt-4o-mini',
      timestamp: `2026-11-10T0${i}:00:00Z`,
      inputTokens: 10,
      outputTokens: 1,
      feature: i % 2 ? 'chat' : 'search',
    }))
    const newer = Array.from({ length: 30 }, (_, i) => ({
      id: `mf-4o-${i}`,
      customerId: 'model-filter',
      model: 'gpt-4o-2024-08-06',
      timestamp: `2026-11-11T${String(i % 24).padStart(2, '0')}:${String(i).padStart(2, '0')}:00Z`,
      inputTokens: 10,
      outputTokens: 1,
    }))
    await record([...old, ...newer])
    const summary = await t.gql(SUMMARY, {
      customerId: 'model-filter',
      from: '2026-11-01T00:00:00Z',
      to: '2026-12-01T00:00:00Z',
      groupBy: ['MODEL'],
    })
    const groups = summary.data!.usageSummary.groups as { model: string; events: number }[]
    const seen = new Map<string, string[]>()
    for (const g of groups) {
      const ids: string[] = []
      let after: string | null = null
      for (;;) {
        const res: GqlResponse = await t.gql(MODEL_EVENTS, {
          customerId: 'model-filter',
          model: g.model,
          first: 4,
          after,
        })
        expect(res.errors).toBeUndefined()
        ids.push(...res.data!.usageEvents.edges.map((e: { node: { id: string } }) => e.node.id))
        if (!res.data!.usageEvents.pageInfo.hasNextPage) break
        after = res.data!.usageEvents.pageInfo.endCursor
      }
      expect(ids, g.model).toHaveLength(g.events)
      seen.set(g.model, ids)
    }
    expect([...seen.values()].flat().sort()).toEqual([...old, ...newer].map((e) => e.id).sort())
    expect(seen.get(groups.find((g) => g.events === 7)!.model)).toEqual(old.map((e) => e.id).reverse())
    const chat = await t.gql(MODEL_EVENTS, { customerId: 'model-filter', feature: 'chat' })
    expect(chat.data!.usageEvents.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([
      'mf-mini-5',
      'mf-mini-3',
      'mf-mini-1',
    ])
    expect(
      (await t.gql(MODEL_EVENTS, { customerId: 'model-filter', model: 'no-such-model' })).data!.usageEvents.edges,
    ).toEqual([])
  })

  it('rejects a bad cursor, first above 500 and an empty range', async () => {
    for (const after of [
      'not a cursor!',
      'bm9wZQ',
      Buffer.from(JSON.stringify(['yesterday', 'p1'])).toString('base64url'),
    ]) {
      const res = await t.gql(EVENTS, { customerId: 'pager', after })
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    }
    expect((await t.gql(EVENTS, { customerId: 'pager', first: 501 })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'first',
    })
    expect((await t.gql(EVENTS, { customerId: 'pager', first: -1 })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'first',
    })
    expect((await t.gql(EVENTS, { customerId: 'pager', first: 500 })).errors).toBeUndefined()
    expect(
      (await t.gql(EVENTS, { customerId: 'pager', from: DAY_20, to: DAY_19 })).errors?.[0]?.extensions,
    ).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'to',
    })
  })

  it('resolves customer and line prices', async () => {
    await t.gql(`mutation { upsertCustomer(input: { id: "acme", name: "Acme Inc." }) { id } }`)
    const res = await t.gql(
      `query { usageEvents(customerId: "acme", from: "2026-11-19T10:45:00Z", to: "2026-11-19T10:46:00Z") {
        edges { node { id customer { id name } lines { usageType priceId price { id model usageType unitPrice } } } } } }`,
    )
    expect(res.errors).toBeUndefined()
    const [edge] = res.data!.usageEvents.edges
    expect(edge.node.customer).toEqual({ id: 'acme', name: 'Acme Inc.' })
    const lines = edge.node.lines as {
      usageType: string
      priceId: string
      price: { id: string; model: string; usageType: string; unitPrice: string }
    }[]
    expect(lines.map((l) => [l.usageType, l.price.unitPrice])).toEqual([
      ['input', '0.0000025'],
      ['cache_read', '0.00000125'],
      ['output', '0.00001'],
    ])
    for (const line of lines)
      expect(line.price).toMatchObject({ id: line.priceId, model: 'gpt-4o', usageType: line.usageType })
  })
})

describe('no N+1', () => {
  let database: TestDatabase
  let queries = 0
  let gql: (query: string, variables?: Record<string, unknown>) => Promise<{ data?: any; errors?: unknown[] }>

  const countingPlugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      queries++
      return args.node
    },
    transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      return Promise.resolve(args.result)
    },
  }

  beforeAll(async () => {
    database = await createTestDatabase()
    const config = defaultConfig({ LOG_LEVEL: 'silent' })
    const clock = fixedClock(NOW)
    const app = createApp({
      db: database.db.withPlugin(countingPlugin),
      clock,
      config,
      logger: createLogger(config.LOG_LEVEL),
    })
    await app.services.catalog.syncBundled()
    const { apiKey } = await app.services.tenants.create({ name: 'N+1' })
    gql = async (query, variables) => {
      const response = await app.yoga.fetch('http://burnrate.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ query, variables }),
      })
      return (await response.json()) as { data?: any; errors?: unknown[] }
    }
    // 100 events per customer across three models (several price rows), four customers.
    const models = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5']
    const events = Array.from({ length: 400 }, (_, i) => ({
      id: `n${i}`,
      customerId: `c${i % 4}`,
      model: models[i % 3]!,
      timestamp: new Date(Date.parse('2026-11-19T00:00:00Z') + i * 60_000).toISOString(),
      inputTokens: 1000 + i,
      cacheReadTokens: i % 2 ? 100 : 0,
      outputTokens: 100 + i,
    }))
    const res = await gql(RECORD, { events })
    expect(res.errors).toBeUndefined()
    expect(res.data!.recordUsageBatch.recorded).toBe(400)
  })
  afterAll(() => database?.destroy())

  const PAGE = `query($customerId: String!, $first: Int) {
    usageEvents(customerId: $customerId, first: $first) {
      edges { node { id customer { id name } lines { usageType price { id unitPrice } } } }
    }
  }`

  async function countQueries(query: string, variables: Record<string, unknown>) {
    queries = 0
    const res = await gql(query, variables)
    expect(res.errors).toBeUndefined()
    return { count: queries, data: res.data! }
  }

  it('serves a page of 100 events with customers and prices in a constant number of queries', async () => {
    const small = await countQueries(PAGE, { customerId: 'c1', first: 10 })
    const large = await countQueries(PAGE, { customerId: 'c1', first: 100 })
    expect(small.data.usageEvents.edges).toHaveLength(10)
    expect(large.data.usageEvents.edges).toHaveLength(100)
    expect(
      large.data.usageEvents.edges.every(
        (e: any) => e.node.customer.id === 'c1' && e.node.lines.every((l: any) => l.price?.unitPrice),
      ),
    ).toBe(true)
    // events page + customers + prices
    expect(large.count).toBeLessThanOrEqual(3)
    expect(large.count).toBe(small.count)
  })

  it('batches across customers when several pages are asked for at once', async () => {
    const ALIASED = `query($first: Int) {
      ${[0, 1, 2, 3].map((i) => `c${i}: usageEvents(customerId: "c${i}", first: $first) { edges { node { id customer { id } lines { price { id unitPrice } } } } }`).join('\n')}
    }`
    const small = await countQueries(ALIASED, { first: 3 })
    const large = await countQueries(ALIASED, { first: 25 })
    expect(Object.values(large.data).flatMap((c: any) => c.edges)).toHaveLength(100)
    // One page query per alias, and at most one customer and one price query per page: never per event.
    expect(large.count).toBeLessThanOrEqual(4 * 3)
    expect(small.count).toBeLessThanOrEqual(4 * 3)
  })
})
