import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DomainError } from '../../src/shared/errors.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
      duplicates
      results {
        status
      }
    }
  }
`
const SUMMARY = /* GraphQL */ `
  query ($from: DateTime!, $to: DateTime!) {
    usageSummary(from: $from, to: $to) {
      events
      cost
      amount
    }
  }
`

const event = (id: string, timestamp: string, customerId = 'cust-1') => ({
  id,
  customerId,
  model: 'gpt-4o-mini',
  provider: 'openai',
  inputTokens: 1234,
  outputTokens: 567,
  timestamp,
})

async function readBack(directory: string): Promise<{ n: string; amount: string; cost: string; tenants: string }> {
  const duck = await DuckDBInstance.create(':memory:')
  const conn = await duck.connect()
  try {
    const r = await conn.runAndReadAll(
      `select count(*)::varchar as n, sum(amount)::varchar as amount, sum(cost)::varchar as cost,
        string_agg(distinct tenant_id, ',')::varchar as tenants
       from read_parquet('${directory}/**/events.parquet')`,
    )
    return r.getRowObjects()[0] as { n: string; amount: string; cost: string; tenants: string }
  } finally {
    conn.closeSync()
    duck.closeSync()
  }
}

const num = (s: string) => Number(s)

describe('export and retention', () => {
  let t: TestApp
  let dir: string
  let otherKey: string
  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(new Date('2026-12-07T12:00:00Z')) })
    dir = await mkdtemp(join(tmpdir(), 'burnrate-export-'))
    const events = []
    for (let i = 0; i < 40; i++)
      events.push(event(`e-${i}`, new Date(Date.UTC(2026, 4 + (i % 3), 1 + (i % 27), i % 24, 7)).toISOString()))
    const r = await t.gql(BATCH, { events })
    expect(r.data!.recordUsageBatch.recorded).toBe(40)
    const other = await t.createTenant('Other')
    otherKey = other.apiKey
    await t.gql(
      BATCH,
      { events: [event('o-1', '2026-05-03T00:00:00Z'), event('o-2', '2026-06-03T00:00:00Z')] },
      otherKey,
    )
  })
  afterAll(async () => {
    await t.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('exports a tenant’s events by day to Parquet and CSV with a manifest; DuckDB totals equal usageSummary', async () => {
    const from = new Date('2026-05-01T00:00:00Z')
    const to = new Date('2026-08-01T00:00:00Z')
    const target = join(dir, 'tenant-export')
    const manifest = await t.app.services.exports.exportUsage(t.tenant.id, { from, to, directory: target })
    const summary = await t.gql(SUMMARY, { from: from.toISOString(), to: to.toISOString() })
    const s = summary.data!.usageSummary
    expect(manifest.totals.rows).toBe(40)
    expect(manifest.files.length).toBeGreaterThan(20)
    const back = await readBack(target)
    expect(num(back.n)).toBe(s.events)
    expect(num(back.amount)).toBe(num(s.amount))
    expect(num(back.cost)).toBe(num(s.cost))
    // Only this tenant's rows.
    expect(back.tenants).toBe(t.tenant.id)
    const onDisk = JSON.parse(await readFile(join(target, 'manifest.json'), 'utf8'))
    expect(onDisk.totals).toEqual(manifest.totals)
    const csv = await readFile(join(target, manifest.files[0]!.csv), 'utf8')
    expect(csv.split('\n')[0]).toContain('tenant_id,id,customer_id,ts')
  })

  it('rejects bad inputs with a coded error and its field', async () => {
    const bad = t.app.services.exports.exportUsage(t.tenant.id, {
      from: new Date('2026-06-01Z'),
      to: new Date('2026-05-01Z'),
      directory: dir,
    })
    await expect(bad).rejects.toBeInstanceOf(DomainError)
    await expect(bad).rejects.toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' })
    await expect(t.app.services.retention.run({ keepMonths: 0, directory: dir })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'keepMonths',
    })
  })

  it('retention exports, verifies and drops old partitions; rollups, summaries and idempotency stay', async () => {
    const db = t.app.services.db
    const before = await t.gql(SUMMARY, { from: '2026-05-01T00:00:00Z', to: '2026-08-01T00:00:00Z' })
    const raw = await sql<{ n: string }>`select count(*)::text as n from usage_events where ts < '2026-07-01Z'`.execute(
      db,
    )
    const target = join(dir, 'retention')
    // Keep 5 months before December: May and June 2026 (and older) go.
    const report = await t.app.services.retention.run({ keepMonths: 5, directory: target })
    expect(report.kept).toEqual([])
    const dropped = report.dropped.map((d) => d.partition)
    expect(dropped).toContain('usage_events_p2026_05')
    expect(dropped).toContain('usage_events_p2026_06')
    expect(dropped).not.toContain('usage_events_p2026_07')
    expect(report.dropped.reduce((n, d) => n + d.rows, 0)).toBe(num(raw.rows[0]!.n))
    const gone = await sql<{
      n: string
    }>`select count(*)::text as n from usage_events where ts < '2026-07-01Z'`.execute(db)
    expect(num(gone.rows[0]!.n)).toBe(0)
    // The archive holds both tenants' rows of those months, read back by DuckDB.
    const back = await readBack(target)
    expect(num(back.n)).toBe(num(raw.rows[0]!.n))
    // Summaries read rollups: unchanged.
    const after = await t.gql(SUMMARY, { from: '2026-05-01T00:00:00Z', to: '2026-08-01T00:00:00Z' })
    expect(after.data!.usageSummary).toEqual(before.data!.usageSummary)
    // A replay of a dropped event is still a no-op.
    const replay = await t.gql(BATCH, { events: [event('e-0', new Date(Date.UTC(2026, 4, 1, 0, 7)).toISOString())] })
    expect(replay.data!.recordUsageBatch.results[0].status).toBe('DUPLICATE')
    const still = await t.gql(SUMMARY, { from: '2026-05-01T00:00:00Z', to: '2026-08-01T00:00:00Z' })
    expect(still.data!.usageSummary).toEqual(before.data!.usageSummary)
  })
})
