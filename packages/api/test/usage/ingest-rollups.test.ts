import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import type { PricedLineJson } from '../../src/db/types.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { rollupDeltas } from '../../src/usage/rollups.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// The ingest statement sums rollup deltas in SQL; rollupDeltas (JS, used by repricing) is the
// independent reference they must equal, exactly, after replays and concurrent overlapping batches.

const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
      duplicates
      rejected
    }
  }
`
const NOW = '2026-11-20T12:00:00Z'
// Plans apply from the time they are set: set them 6 hours before NOW, then move the clock to NOW.
const clock = fixedClock(new Date(Date.parse(NOW) - 6 * 3_600_000).toISOString())

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ clock })
  // A margin plan for one customer makes amounts with 18 decimal places (rounded), a markup for the rest.
  const markup = await t.gql(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "12.5" }) { kind } }`)
  const margin = await t.gql(
    `mutation { setPricingPlan(input: { customerId: "c1", kind: MARGIN, percent: "30" }) { kind } }`,
  )
  expect([markup.errors, margin.errors]).toEqual([undefined, undefined])
  clock.advance(6 * 3_600_000)
})
afterAll(() => t.close())

const MODELS = [
  { model: 'gpt-4o', provider: 'openai' },
  { model: 'claude-sonnet-4-5', provider: 'anthropic' },
  { model: 'gemini-2.5-flash', provider: null },
  { model: 'no-such-model-xyz', provider: 'acme' },
]

function event(i: number) {
  const m = MODELS[i % MODELS.length]!
  const input = 1 + ((i * 7919) % 200_000)
  return {
    id: `ev-${i}`,
    customerId: `c${i % 3}`,
    model: m.model,
    ...(m.provider ? { provider: m.provider } : {}),
    // Spread over a few hours, some on an exact hour boundary.
    timestamp: new Date(Date.parse(NOW) - (i % 5) * 1_800_000 - (i % 2 ? 0 : 1)).toISOString(),
    inputTokens: input,
    outputTokens: (i * 31) % 5000,
    cacheReadTokens: i % 4 === 1 ? Math.floor(input / 3) : 0,
    cacheWriteTokens: i % 4 === 1 ? Math.floor(input / 5) : 0,
    ...(i % 3 === 0 ? { feature: i % 2 ? 'chat' : 'search' } : {}),
    ...(i % 5 === 0 ? { units: [{ unit: 'web_searches', quantity: String(i % 3) }] } : {}),
  }
}

async function expectRollupsMatchEvents() {
  const db = t.database.db
  const events = await db.selectFrom('usage_events').selectAll().where('tenant_id', '=', t.tenant.id).execute()
  // The data exercises what it should: priced and unpriced events, plans (amount ≠ cost), several lines.
  expect(
    events.some((e) => e.status === 'UNPRICED') && events.some((e) => e.amount !== null && e.amount !== e.cost),
  ).toBe(true)
  expect(events.some((e) => e.plan_kind === 'MARGIN') && events.some((e) => e.plan_kind === 'MARKUP')).toBe(true)
  const expected = rollupDeltas(t.tenant.id, events, (e) => e.lines as PricedLineJson[])
  const rollups = await db.selectFrom('usage_rollups').selectAll().where('tenant_id', '=', t.tenant.id).execute()
  const lines = await db.selectFrom('usage_line_rollups').selectAll().where('tenant_id', '=', t.tenant.id).execute()
  const key = (r: { customer_id: string; bucket: Date | string; provider: string; model: string; feature: string }) =>
    [r.customer_id, new Date(r.bucket).toISOString(), r.provider, r.model, r.feature].join('|')
  const norm = (v: string | number) => new Decimal(v).toFixed()
  const rollupView = (r: (typeof rollups)[number] | (typeof expected.rollups)[number]) => [
    key(r),
    Number(r.events),
    Number(r.unpriced_events),
    Number(r.input_tokens),
    Number(r.output_tokens),
    norm(r.cost),
    norm(r.amount),
  ]
  const lineView = (r: (typeof lines)[number] | (typeof expected.lineRollups)[number]) => [
    key(r) + '|' + r.usage_type,
    Number(r.events),
    norm(r.quantity),
    norm(r.cost),
    norm(r.amount),
  ]
  const sorted = <T>(rows: T[]) => rows.sort((a, b) => String(a).localeCompare(String(b)))
  expect(sorted(rollups.map(rollupView))).toEqual(sorted(expected.rollups.map(rollupView)))
  expect(sorted(lines.map(lineView))).toEqual(sorted(expected.lineRollups.map(lineView)))
  return events.length
}

describe('ingest rollups (summed in SQL with the insert)', () => {
  it('equal the JS fold of the stored events, exactly, and replays add nothing', async () => {
    const first = Array.from({ length: 60 }, (_, i) => event(i))
    const r1 = await t.gql(BATCH, { events: first })
    expect(r1.data!.recordUsageBatch).toEqual({ recorded: 60, duplicates: 0, rejected: 0 })
    expect(await expectRollupsMatchEvents()).toBe(60)

    // A replay of half of it plus new events plus an in-batch repeat: only the 20 new ones count.
    const second = [...first.slice(0, 30), ...Array.from({ length: 20 }, (_, i) => event(100 + i)), event(100)]
    const r2 = await t.gql(BATCH, { events: second })
    expect(r2.data!.recordUsageBatch).toEqual({ recorded: 20, duplicates: 31, rejected: 0 })
    expect(await expectRollupsMatchEvents()).toBe(80)
  })

  it('stay exact under concurrent overlapping batches', async () => {
    const batches = Array.from({ length: 6 }, (_, b) => Array.from({ length: 40 }, (_, i) => event(200 + b * 20 + i)))
    const results = await Promise.all(batches.map((events) => t.gql(BATCH, { events })))
    for (const r of results) expect(r.errors).toBeUndefined()
    const recorded = results.reduce((n, r) => n + r.data!.recordUsageBatch.recorded, 0)
    expect(recorded).toBe(140)
    expect(await expectRollupsMatchEvents()).toBe(80 + 140)
  })
})
