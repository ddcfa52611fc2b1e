import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Executor } from '../../src/db/database.ts'
import { planHours, type TimeRange } from '../../src/shared/date-range.ts'
import * as repo from '../../src/usage/summary/repository.ts'
import type { GroupKeys, SummaryParts, SummaryScope } from '../../src/usage/summary/repository.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

/*
 * DAY and HOUR buckets are UTC, whatever the session's TimeZone: a connection set to a zone with a
 * half-hour (+05:30, −03:30) or quarter-hour (+13:45) offset must not move an event to another
 * day. Checked on both sources — whole hours from the rollups and partial-hour edges from raw
 * events — and for event and line aggregates. Also: the summary's rollup read is index-only.
 */

const RECORD = `mutation($events: [UsageEventInput!]!) {
  recordUsageBatch(events: $events) { recorded rejected results { status error { code message field } } }
}`

const HOUR = 3_600_000
const DAY = 24 * HOUR

// Around the UTC midnight of the 19th, and where local midnights of the zones below fall.
const TIMES = [
  '2026-11-18T18:29:00.000Z', // 23:59 on the 18th in Asia/Kolkata (+05:30)
  '2026-11-18T18:31:00.000Z', // 00:01 on the 19th in Asia/Kolkata
  '2026-11-18T23:59:59.999Z', // last instant of the UTC 18th
  '2026-11-19T00:00:00.000Z', // first instant of the UTC 19th
  '2026-11-19T03:29:00.000Z', // 23:59 on the 18th in America/St_Johns (−03:30)
  '2026-11-19T03:31:00.000Z', // 00:01 on the 19th in America/St_Johns
  '2026-11-19T10:14:00.000Z', // 23:59 on the 19th in Pacific/Chatham (+13:45)
  '2026-11-19T10:16:00.000Z', // 00:01 on the 20th in Pacific/Chatham
]
const ZONES = ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham']
const DAY_KEYS: GroupKeys = { model: false, provider: false, feature: false, bucket: 'DAY' }
const HOUR_KEYS: GroupKeys = { ...DAY_KEYS, bucket: 'HOUR' }

let t: TestApp
let scope: SummaryScope

beforeAll(async () => {
  t = await createTestApp({ clock: fixedClock('2026-11-20T12:00:00Z') })
  scope = { tenantId: t.tenant.id, customerId: 'zoned' }
  const events = TIMES.map((timestamp, i) => ({
    id: `z${i}`,
    customerId: 'zoned',
    model: 'gpt-4o',
    timestamp,
    inputTokens: 1000,
    outputTokens: 100,
  }))
  const res = await t.gql(RECORD, { events })
  expect(res.errors).toBeUndefined()
  expect(res.data!.recordUsageBatch.rejected).toBe(0)
})
afterAll(() => t?.close())

/** Runs fn on one connection whose TimeZone is `zone`. */
function inZone<T>(zone: string, fn: (db: Executor) => Promise<T>): Promise<T> {
  return t.app.services.db.transaction().execute(async (trx) => {
    await sql`select set_config('TimeZone', ${zone}, true)`.execute(trx)
    return fn(trx)
  })
}

/** Events per bucket start (ISO), computed in UTC from TIMES within [from, to). */
function expectedBuckets(unit: number, range: TimeRange): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const time of TIMES) {
    const at = Date.parse(time)
    if (at < range.from.getTime() || at >= range.to.getTime()) continue
    const start = new Date(Math.floor(at / unit) * unit).toISOString()
    counts[start] = (counts[start] ?? 0) + 1
  }
  return counts
}

function countsOf(rows: readonly { bucketStart: Date | null; events: number }[]): Record<string, number> {
  return Object.fromEntries(rows.map((r) => [r.bucketStart!.toISOString(), r.events]))
}

/** Only `hours` (rollups), only `days` (per-day rollups) or only `raw` (raw events), over one range. */
const fromHours = (range: TimeRange): SummaryParts => ({ days: null, hours: [range], raw: [] })
const fromDays = (range: TimeRange): SummaryParts => ({ days: range, hours: [], raw: [] })
const fromRaw = (range: TimeRange): SummaryParts => ({ days: null, hours: [], raw: [{ ...range, sign: 1 }] })

describe('DAY and HOUR buckets are UTC whatever the session TimeZone', () => {
  // Whole days covering every event: per-day and hourly rollups, and the same span as raw events.
  const whole: TimeRange = { from: new Date('2026-11-18T00:00:00Z'), to: new Date('2026-11-21T00:00:00Z') }

  for (const zone of ZONES) {
    it(`per-day and hourly rollups and raw events, events and lines, in ${zone}`, async () => {
      const { perDay, rollupDays, rawDays, rollupHours, rawHours, lineDays, rawLineDays } = await inZone(
        zone,
        async (db) => {
          const shown = await sql<{ zone: string }>`select current_setting('TimeZone') as zone`.execute(db)
          expect(shown.rows[0]!.zone).toBe(zone)
          return {
            perDay: await repo.eventAggregates(db, scope, fromDays(whole), DAY_KEYS),
            rollupDays: await repo.eventAggregates(db, scope, fromHours(whole), DAY_KEYS),
            rawDays: await repo.eventAggregates(db, scope, fromRaw(whole), DAY_KEYS),
            rollupHours: await repo.eventAggregates(db, scope, fromHours(whole), HOUR_KEYS),
            rawHours: await repo.eventAggregates(db, scope, fromRaw(whole), HOUR_KEYS),
            lineDays: await repo.lineAggregates(db, scope, fromHours(whole), DAY_KEYS),
            rawLineDays: await repo.lineAggregates(db, scope, fromRaw(whole), DAY_KEYS),
          }
        },
      )
      const days = expectedBuckets(DAY, whole)
      expect(days).toEqual({ '2026-11-18T00:00:00.000Z': 3, '2026-11-19T00:00:00.000Z': 5 })
      expect(countsOf(perDay)).toEqual(days)
      expect(countsOf(rollupDays)).toEqual(days)
      expect(countsOf(rawDays)).toEqual(days)
      expect(countsOf(rollupHours)).toEqual(expectedBuckets(HOUR, whole))
      expect(countsOf(rawHours)).toEqual(expectedBuckets(HOUR, whole))
      // gpt-4o prices input and output: one line of each per event.
      for (const lines of [lineDays, rawLineDays]) {
        const perDayLines: Record<string, number> = {}
        for (const l of lines)
          perDayLines[l.bucketStart!.toISOString()] = (perDayLines[l.bucketStart!.toISOString()] ?? 0) + l.events
        expect(perDayLines).toEqual(Object.fromEntries(Object.entries(days).map(([d, n]) => [d, 2 * n])))
      }
    })
  }

  // Partial hours read directly ([18:30, 19:00) and [03:00, 03:30), each half an hour), and read as
  // their whole hour's rollup less the part outside the range (from 18:29:30 and to 03:30:30: the
  // events at 18:29 and 03:31 lie in the parts taken away).
  const edged = [
    { from: '2026-11-18T18:30:00Z', to: '2026-11-19T03:30:00Z', sign: 1, expected: 2 },
    { from: '2026-11-18T18:29:30Z', to: '2026-11-19T03:30:30Z', sign: -1, expected: 2 },
  ] as const
  for (const { from: f, to: tEnd, sign, expected } of edged) {
    it(`merges partial hours (sign ${sign}) into the UTC day of their hour (session in Asia/Kolkata)`, async () => {
      const from = new Date(f)
      const to = new Date(tEnd)
      const { hours, raw } = planHours(from, to)
      expect(raw.map((r) => r.sign)).toEqual([sign, sign])
      const [rows, lines] = await inZone('Asia/Kolkata', (db) =>
        Promise.all([
          repo.eventAggregates(db, scope, { days: null, hours: [hours!], raw }, DAY_KEYS),
          repo.lineAggregates(db, scope, { hours: [hours!], raw }, DAY_KEYS),
        ]),
      )
      expect(countsOf(rows)).toEqual(expectedBuckets(DAY, { from, to }))
      expect(countsOf(rows)).toEqual({ '2026-11-18T00:00:00.000Z': expected, '2026-11-19T00:00:00.000Z': 2 })
      expect(lines.reduce((n, l) => n + l.events, 0)).toBe(2 * (expected + 2))
    })
  }
})

describe('usage_rollups key', () => {
  it("carries the aggregates, so a customer's hours are an index-only scan", async () => {
    const plan = await t.app.services.db.transaction().execute(async (trx) => {
      // The fixture is tiny: take the planner's sequential and bitmap scans away, as a large table would.
      await sql`select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`.execute(
        trx,
      )
      return sql<{
        'QUERY PLAN': string
      }>`explain select sum(events), sum(unpriced_events), sum(input_tokens), sum(output_tokens), sum(cost), sum(amount),
          max(provider), max(model), max(feature)
        from usage_rollups where tenant_id = ${scope.tenantId} and customer_id = 'zoned'
          and bucket >= timestamptz '2026-11-18T00:00:00Z' and bucket < timestamptz '2026-11-21T00:00:00Z'`.execute(trx)
    })
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Index Only Scan using usage_rollups_pk/)
  })
})
