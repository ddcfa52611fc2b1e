import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { readBackParquet } from '../support/s3.ts'

const onPostgres = Boolean(process.env.DATABASE_URL)

const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
    }
  }
`
const SUMMARY = /* GraphQL */ `
  query ($from: DateTime!, $to: DateTime!) {
    usageSummary(from: $from, to: $to) {
      events
      amount
    }
  }
`

describe(`scheduled retention, RETENTION_RAW_EVENTS_MONTHS (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestApp
  let archive: string
  const lines: Record<string, unknown>[] = []
  // The fake clock: "now" is what decides which months are old.
  const clock = fixedClock(new Date('2026-09-15T12:00:00Z'))

  beforeAll(async () => {
    archive = await mkdtemp(join(tmpdir(), 'burnrate-retention-'))
    t = await createTestApp({ clock })
    const events = Array.from({ length: 12 }, (_, i) => ({
      id: `r-${i}`,
      customerId: 'cust-1',
      model: 'gpt-4o-mini',
      provider: 'openai',
      inputTokens: 1000 + i,
      outputTokens: 200,
      // March, April and August 2026.
      timestamp: new Date(Date.UTC(2026, [2, 3, 7][i % 3]!, 2 + i, 5)).toISOString(),
    }))
    expect((await t.gql(BATCH, { events })).data?.recordUsageBatch.recorded).toBe(12)
  })
  afterAll(async () => {
    await t.close()
    await rm(archive, { recursive: true, force: true })
  })

  const scheduledApp = (keepMonths: number | undefined) =>
    createApp({
      db: t.database.db,
      clock,
      config: defaultConfig({
        LOG_LEVEL: 'info',
        RETENTION_RAW_EVENTS_MONTHS: keepMonths,
        RETENTION_ARCHIVE: archive,
        RETENTION_INTERVAL: 3_600_000,
      }),
      logger: createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)),
    })

  it('is off without RETENTION_RAW_EVENTS_MONTHS', async () => {
    expect(await scheduledApp(undefined).services.retentionSchedule.runOnce()).toBeNull()
  })

  it('runs on its schedule in the API process: archives, verifies and drops only whole old months; records and logs the run', async () => {
    const year = { from: '2026-01-01T00:00:00Z', to: '2027-01-01T00:00:00Z' }
    const before = (await t.gql(SUMMARY, year)).data!.usageSummary
    const april = (await t.gql(SUMMARY, { from: '2026-03-01T00:00:00Z', to: '2026-05-01T00:00:00Z' })).data!
      .usageSummary
    const app = scheduledApp(4)
    // Now 2026-09-15, keep 4 months: May … August stay; March and April go.
    app.services.retentionSchedule.start()
    let runs = await app.services.retentionSchedule.recent()
    for (let i = 0; i < 300 && (runs.length === 0 || runs[0]!.status === 'RUNNING'); i++) {
      await new Promise((r) => setTimeout(r, 100))
      runs = await app.services.retentionSchedule.recent()
    }
    await app.services.retentionSchedule.stop()
    expect(runs[0]).toMatchObject({ status: 'SUCCEEDED', keep_months: 4, archive })
    const report = runs[0]!.report as { dropped: { partition: string; rows: number; directory: string }[] }
    expect(report.dropped.map((d) => d.partition).sort()).toEqual(['usage_events_p2026_03', 'usage_events_p2026_04'])
    const left = await sql<{
      n: string
    }>`select count(*)::text as n from usage_events where ts < '2026-05-01Z'`.execute(t.database.db)
    expect(Number(left.rows[0]!.n)).toBe(0)
    // Summaries come from rollups: unchanged. The archive holds exactly what was dropped.
    expect((await t.gql(SUMMARY, year)).data!.usageSummary).toEqual(before)
    let rows = 0
    let amount = new Decimal(0)
    for (const d of report.dropped) {
      const back = await readBackParquet(d.directory, 'usage_events')
      rows += back.rows
      amount = amount.plus(back.amount)
      expect(JSON.parse(await readFile(join(d.directory, 'manifest.json'), 'utf8')).totals.rows).toBe(back.rows)
    }
    expect(rows).toBe(april.events)
    expect(amount.eq(april.amount)).toBe(true)
    // The log lines carry the run's job id.
    const finished = lines.find((l) => l.msg === 'retention run finished')
    expect(finished).toMatchObject({ job: 'retention', jobId: `retention:${runs[0]!.id}` })
    expect(
      lines.filter((l) => l.msg === 'retention dropped a usage_events partition' && l.jobId === finished!.jobId),
    ).toHaveLength(2)

    // A month later the cut-off is June: May has no partition (no events), August stays; nothing is dropped.
    clock.advance(31 * 86_400_000)
    const next = await app.services.retentionSchedule.runOnce()
    expect(next!.report).toEqual({ dropped: [], kept: [] })
  })

  it('one run at a time across processes; a run whose process died is failed once its lease ends', async () => {
    // Another process is running one.
    await sql`insert into retention_runs (id, status, keep_months, archive, started_at, lease_until)
      values ('ret_other', 'RUNNING', 4, ${archive}, ${clock.now()}, ${new Date(clock.now().getTime() + 3_600_000)})`.execute(
      t.database.db,
    )
    const app = scheduledApp(4)
    expect(await app.services.retentionSchedule.runOnce()).toBeNull()
    expect(lines.some((l) => l.msg === 'retention run skipped: another process is running one')).toBe(true)
    // That process died: past its lease (6 h) the run is FAILED with the reason and a new one runs.
    clock.advance(7 * 3_600_000)
    expect(await app.services.retentionSchedule.runOnce()).not.toBeNull()
    const runs = await app.services.retentionSchedule.recent(20)
    expect(runs.find((r) => r.id === 'ret_other')).toMatchObject({
      status: 'FAILED',
      error: 'the API process running it stopped before it finished',
    })
    expect(runs[0]!.status).toBe('SUCCEEDED')
  })

  it('retentionRuns pages the runs newest first for a tenant key: months dropped and kept, status, no cross-tenant figures', async () => {
    const RUNS = /* GraphQL */ `
      query ($first: Int, $after: String) {
        retentionRuns(first: $first, after: $after) {
          edges {
            cursor
            node {
              id
              status
              keepMonths
              startedAt
              finishedAt
              droppedMonths
              keptMonths {
                month
                reason
              }
              error
            }
          }
          pageInfo {
            hasNextPage
            endCursor
          }
        }
      }
    `
    const stored = await t.app.services.retentionSchedule.recent(100)
    expect(stored.length).toBeGreaterThanOrEqual(4)
    const seen: { id: string; status: string; droppedMonths: string[]; error: string | null }[] = []
    let after: string | null = null
    for (let pages = 0; pages < 10; pages++) {
      type Page = {
        retentionRuns: {
          edges: { node: (typeof seen)[number] }[]
          pageInfo: { hasNextPage: boolean; endCursor: string | null }
        }
      }
      const r = await t.gql<Page>(RUNS, { first: 2, after })
      expect(r.errors).toBeUndefined()
      const conn: Page['retentionRuns'] = r.data!.retentionRuns
      seen.push(...conn.edges.map((e) => e.node))
      if (!conn.pageInfo.hasNextPage) break
      after = conn.pageInfo.endCursor
    }
    // Every run once, in the stored order (newest first).
    expect(seen.map((r) => r.id)).toEqual(stored.map((r) => r.id))
    const first = seen.find((r) => r.droppedMonths.length > 0)
    expect(first).toMatchObject({
      status: 'SUCCEEDED',
      keepMonths: 4,
      droppedMonths: ['2026-03', '2026-04'],
      error: null,
    })
    expect(seen.find((r) => r.id === 'ret_other')).toMatchObject({
      status: 'FAILED',
      droppedMonths: [],
      error: 'the API process running it stopped before it finished',
    })
    // Another tenant sees the same runs (they span the whole ledger).
    const other = await t.createTenant('Other')
    const theirs = await t.gql(RUNS, { first: 100 }, other.apiKey)
    expect(theirs.data!.retentionRuns.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(
      stored.map((r) => r.id),
    )
    // Bad paging is a coded 4xx on its field; a widget session and no key are refused.
    const bad = await t.gql(RUNS, { first: 0 })
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' })
    const badCursor = await t.gql(RUNS, { after: 'not-a-cursor' })
    expect(badCursor.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    const session = await t.gql(`mutation { createWidgetSession(customerId: "cust-1") { token } }`)
    const widget = await t.gql(RUNS, {}, session.data!.createWidgetSession.token)
    expect(widget.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' })
    expect((await t.gql(RUNS, {}, null)).errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' })
  })
})
