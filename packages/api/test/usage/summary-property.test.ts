import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, fixedClock, type GqlResponse, type TestApp } from '../support/app.ts'

/*
 * Property: whatever the events, plans, window and grouping, usageSummary agrees exactly with the
 * events it covers (read back through usageEvents), and its groups add up to its totals. The
 * summary reads rollups for whole hours and raw events for partial-hour edges; this holds it to
 * the plain definition.
 */

const HOUR = 3_600_000
const BASE = Date.parse('2026-11-10T00:00:00Z')
const SPAN_HOURS = 72
const NOW = '2026-11-20T12:00:00Z'
const CUSTOMERS = ['alpha', 'beta'] as const
const DIMENSIONS = ['MODEL', 'PROVIDER', 'FEATURE', 'USAGE_TYPE', 'DAY', 'HOUR'] as const

const RECORD = `mutation($events: [UsageEventInput!]!) {
  recordUsageBatch(events: $events) { recorded results { status error { code message field } } }
}`
const SET_PLAN = `mutation($input: PricingPlanInput!) { setPricingPlan(input: $input) { kind percent } }`
const EVENTS = `query($customerId: String!, $after: String) {
  usageEvents(customerId: $customerId, first: 100, after: $after) {
    edges { node { id customerId timestamp status cost amount inputTokens outputTokens } }
    pageInfo { hasNextPage endCursor }
  }
}`
const SUMMARY = `query($customerId: String, $from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]) {
  usageSummary(customerId: $customerId, from: $from, to: $to, groupBy: $groupBy) {
    events unpricedEvents inputTokens outputTokens cost amount
    groups { model provider feature usageType bucketStart events inputTokens outputTokens cost amount }
  }
}`

interface StoredEvent {
  id: string
  customerId: string
  timestamp: string
  status: 'PRICED' | 'UNPRICED'
  cost: string | null
  amount: string | null
  inputTokens: number
  outputTokens: number
}

interface Group {
  model: string | null
  provider: string | null
  feature: string | null
  usageType: string | null
  bucketStart: string | null
  events: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
}

/** A time in the fixture's span: on the hour, or anywhere (to the millisecond). */
const instant = fc.oneof(
  fc.integer({ min: 0, max: SPAN_HOURS }).map((h) => BASE + h * HOUR),
  fc.integer({ min: 0, max: SPAN_HOURS * HOUR - 1 }).map((ms) => BASE + ms),
)

const eventArb = fc
  .record({
    model: fc.constantFrom('gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'mystery-model-x'),
    customerId: fc.constantFrom(...CUSTOMERS),
    at: instant,
    // Up to 300k input tokens crosses claude-sonnet-4-5's 200k long-context tier.
    inputTokens: fc.integer({ min: 0, max: 300_000 }),
    outputTokens: fc.integer({ min: 0, max: 40_000 }),
    // Shares (in %) of input read from / written to the cache, and of output spent reasoning.
    cacheRead: fc.integer({ min: 0, max: 50 }),
    cacheWrite: fc.integer({ min: 0, max: 50 }),
    reasoning: fc.integer({ min: 0, max: 100 }),
    feature: fc.constantFrom(null, 'chat', 'agent'),
  })
  .map((e) => ({
    model: e.model,
    customerId: e.customerId,
    timestamp: new Date(e.at).toISOString(),
    inputTokens: e.inputTokens,
    outputTokens: e.outputTokens,
    cacheReadTokens: Math.floor((e.inputTokens * e.cacheRead) / 100),
    cacheWriteTokens: Math.floor((e.inputTokens * e.cacheWrite) / 100),
    reasoningTokens: Math.floor((e.outputTokens * e.reasoning) / 100),
    ...(e.feature ? { feature: e.feature } : {}),
  }))

/** Percent with up to 3 decimals; MARGIN stays below 100. */
const planArb = fc
  .record({
    customerId: fc.constantFrom(null, ...CUSTOMERS),
    kind: fc.constantFrom('MARKUP' as const, 'MARGIN' as const),
    thousandths: fc.integer({ min: 0, max: 99_999 }),
    // Plans start before the first event or somewhere among them.
    at: fc
      .integer({ min: -1, max: SPAN_HOURS })
      .chain((h) => fc.integer({ min: 0, max: HOUR - 1 }).map((ms) => BASE + h * HOUR + ms)),
  })
  .map((p) => ({ ...p, percent: new Decimal(p.thousandths).dividedBy(1000).toFixed() }))

/**
 * A window endpoint: anywhere in the span, on the hour, or at or near an event's time, so that
 * partial-hour edges and the half-open bounds really cut between events.
 */
function endpointArb(times: readonly number[]) {
  const span = fc.oneof(instant, fc.constant(BASE - HOUR), fc.constant(BASE + (SPAN_HOURS + 1) * HOUR))
  if (times.length === 0) return span
  const at = fc.constantFrom(...times)
  return fc.oneof(
    span,
    at,
    fc.tuple(at, fc.integer({ min: -HOUR / 2, max: HOUR / 2 })).map(([t, d]) => t + d),
  )
}

/** A summary query: [from, to) with from < to, a scope and a grouping. */
function queryArb(times: readonly number[]) {
  return fc.record({
    window: fc
      .tuple(endpointArb(times), endpointArb(times))
      .filter(([a, b]) => a !== b)
      .map(([a, b]) => ({ from: new Date(Math.min(a, b)).toISOString(), to: new Date(Math.max(a, b)).toISOString() })),
    customerId: fc.constantFrom(null, ...CUSTOMERS),
    groupBy: fc.subarray([...DIMENSIONS]),
  })
}

const scenarioArb = fc.array(eventArb, { maxLength: 60 }).chain((events) =>
  fc.record({
    events: fc.constant(events),
    plans: fc.array(planArb, { maxLength: 3 }),
    queries: fc.array(queryArb(events.map((e) => Date.parse(e.timestamp))), { minLength: 1, maxLength: 6 }),
  }),
)

const sum = (values: (string | null)[]) =>
  values.reduce((total, v) => (v === null ? total : total.plus(v)), new Decimal(0)).toFixed()

let t: TestApp
const clock = fixedClock(NOW)

async function ok<T = Record<string, any>>(promise: Promise<GqlResponse<T>>): Promise<T> {
  const res = await promise
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined()
  return res.data!
}

async function readBack(key: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = []
  for (const customerId of CUSTOMERS) {
    let after: string | null = null
    for (;;) {
      const data: Record<string, any> = await ok(t.gql(EVENTS, { customerId, after }, key))
      events.push(...data.usageEvents.edges.map((e: { node: StoredEvent }) => e.node))
      if (!data.usageEvents.pageInfo.hasNextPage) break
      after = data.usageEvents.pageInfo.endCursor
    }
  }
  return events
}

beforeAll(async () => {
  t = await createTestApp({ clock })
})
afterAll(() => t?.close())

describe('usageSummary (property)', () => {
  it('equals the exact sum of the events in [from, to), and its groups add up to it', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ events, plans, queries }) => {
        const tenant = await t.createTenant()
        // Plans take effect from the moment they are set, so set each one at its own time, then
        // come back to NOW (after every event) to record.
        for (const plan of [...plans].sort((a, b) => a.at - b.at)) {
          clock.set(new Date(plan.at))
          await ok(
            t.gql(
              SET_PLAN,
              { input: { customerId: plan.customerId, kind: plan.kind, percent: plan.percent } },
              tenant.apiKey,
            ),
          )
        }
        clock.set(NOW)
        const recorded = await ok(
          t.gql(RECORD, { events: events.map((e, i) => ({ id: `ev-${i}`, ...e })) }, tenant.apiKey),
        )
        expect(recorded.recordUsageBatch.recorded, JSON.stringify(recorded.recordUsageBatch.results)).toBe(
          events.length,
        )

        const stored = await readBack(tenant.apiKey)
        expect(stored).toHaveLength(events.length)

        const whole = {
          from: new Date(BASE - HOUR).toISOString(),
          to: new Date(BASE + (SPAN_HOURS + 1) * HOUR).toISOString(),
        }
        for (const { window, customerId, groupBy } of [{ window: whole, customerId: null, groupBy: [] }, ...queries]) {
          const from = Date.parse(window.from)
          const to = Date.parse(window.to)
          const covered = stored.filter(
            (e) =>
              (customerId === null || e.customerId === customerId) &&
              Date.parse(e.timestamp) >= from &&
              Date.parse(e.timestamp) < to,
          )
          const { usageSummary: s } = await ok(t.gql(SUMMARY, { customerId, ...window, groupBy }, tenant.apiKey))
          const context = JSON.stringify({ customerId, window, groupBy })

          expect(s.cost, context).toBe(sum(covered.map((e) => e.cost)))
          expect(s.amount, context).toBe(sum(covered.map((e) => e.amount)))
          expect(s.events, context).toBe(covered.length)
          expect(s.unpricedEvents, context).toBe(covered.filter((e) => e.status === 'UNPRICED').length)
          expect(s.inputTokens, context).toBe(covered.reduce((n, e) => n + e.inputTokens, 0))
          expect(s.outputTokens, context).toBe(covered.reduce((n, e) => n + e.outputTokens, 0))

          const groups = s.groups as Group[]
          if (groupBy.length === 0) {
            expect(groups, context).toEqual([])
            continue
          }
          // Groups are distinct and add up to the totals' money.
          const keys = groups.map((g) => JSON.stringify([g.bucketStart, g.model, g.provider, g.feature, g.usageType]))
          expect(new Set(keys).size, context).toBe(keys.length)
          expect(sum(groups.map((g) => g.cost)), context).toBe(s.cost)
          expect(sum(groups.map((g) => g.amount)), context).toBe(s.amount)
          if (!groupBy.includes('USAGE_TYPE')) {
            // Event groups also partition the counts (usage-type groups only cover priced lines).
            expect(
              groups.reduce((n, g) => n + g.events, 0),
              context,
            ).toBe(s.events)
            expect(
              groups.reduce((n, g) => n + g.inputTokens, 0),
              context,
            ).toBe(s.inputTokens)
            expect(
              groups.reduce((n, g) => n + g.outputTokens, 0),
              context,
            ).toBe(s.outputTokens)
          }
        }
      }),
      { numRuns: 20 },
    )
  })
})
