import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { claimJob } from '../../src/export/repository.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { readBackParquet, startFakeS3 } from '../support/s3.ts'

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
const JOB_FIELDS = /* GraphQL */ `
  id
  status
  target
  from
  to
  rowsTotal
  rowsDone
  progress
  attempts
  error
  result {
    directory
    rows
    amount
    lineItems {
      rows
      amount
    }
  }
`
const START = `mutation ($input: UsageExportInput!) { startUsageExport(input: $input) { ${JOB_FIELDS} } }`
const JOB = `query ($id: ID!) { exportJob(id: $id) { ${JOB_FIELDS} } }`
const JOBS = /* GraphQL */ `
  query ($first: Int, $after: String) {
    exportJobs(first: $first, after: $after) {
      edges {
        node {
          id
          status
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`

describe(`export jobs: startUsageExport, exportJob, exportJobs (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestApp
  let exportDir: string
  let s3: Awaited<ReturnType<typeof startFakeS3>>
  const clock = fixedClock(new Date('2026-12-07T12:00:00Z'))
  const input = { from: '2026-06-01T00:00:00Z', to: '2026-06-04T00:00:00Z' }
  let summary: { events: number; amount: string }

  beforeAll(async () => {
    exportDir = await mkdtemp(join(tmpdir(), 'burnrate-export-jobs-'))
    s3 = await startFakeS3()
    t = await createTestApp({ clock, config: { EXPORT_DIR: exportDir, ...s3.config, EXPORT_JOB_MAX_ATTEMPTS: 2 } })
    const events = Array.from({ length: 25 }, (_, i) => ({
      id: `job-${i}`,
      customerId: `cust-${i % 3}`,
      model: 'gpt-4o-mini',
      provider: 'openai',
      inputTokens: 1500 + i,
      outputTokens: 40 * i,
      timestamp: new Date(Date.UTC(2026, 5, 1 + (i % 3), i % 24)).toISOString(),
    }))
    const r = await t.gql(BATCH, { events })
    expect(r.data?.recordUsageBatch.recorded, JSON.stringify(r)).toBe(25)
    summary = (await t.gql(SUMMARY, input)).data!.usageSummary
  })
  afterAll(async () => {
    await t.app.services.exportJobs.stop()
    await t.close()
    await s3.close()
    await rm(exportDir, { recursive: true, force: true })
  })

  it('queues a job, runs it in the background and reports progress and the manifest', async () => {
    const started = await t.gql(START, { input })
    expect(started.errors).toBeUndefined()
    const job = started.data!.startUsageExport
    expect(job).toMatchObject({ status: 'QUEUED', target: 'SERVER', rowsDone: 0, rowsTotal: null, result: null })
    expect(job.id).toMatch(/^exp_/)

    expect(await t.app.services.exportJobs.runOnce()).toBe(1)
    const done = (await t.gql(JOB, { id: job.id })).data!.exportJob
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 1,
      rowsTotal: 25,
      rowsDone: 25,
      progress: 1,
      error: null,
    })
    expect(done.result.rows).toBe(summary.events)
    expect(done.result.amount).toBe(summary.amount)
    expect(new Decimal(done.result.lineItems.amount).eq(summary.amount)).toBe(true)
    expect(done.result.directory.startsWith(join(exportDir, t.tenant.id))).toBe(true)
    const manifest = JSON.parse(await readFile(join(done.result.directory, 'manifest.json'), 'utf8'))
    expect(manifest.totals.rows).toBe(25)
    const back = await readBackParquet(done.result.directory, 'usage_events')
    expect(back.rows).toBe(summary.events)
    expect(new Decimal(back.amount).eq(summary.amount)).toBe(true)
  })

  it('runs a job to the S3 bucket with the worker started, as the API process does', async () => {
    t.app.services.exportJobs.startWorker()
    const job = (await t.gql(START, { input: { ...input, target: 'S3' } })).data!.startUsageExport
    let current = job
    for (let i = 0; i < 600 && (current.status === 'QUEUED' || current.status === 'RUNNING'); i++) {
      await new Promise((r) => setTimeout(r, 100))
      current = (await t.gql(JOB, { id: job.id })).data!.exportJob
    }
    await t.app.services.exportJobs.stop()
    expect(current.status, current.error).toBe('SUCCEEDED')
    expect(current.result.directory.startsWith(`s3://${s3.bucket}/${t.tenant.id}/`)).toBe(true)
    const local = await s3.download(current.result.directory.slice(`s3://${s3.bucket}/`.length))
    try {
      const back = await readBackParquet(local, 'usage_events')
      expect(back.rows).toBe(summary.events)
      expect(new Decimal(back.amount).eq(summary.amount)).toBe(true)
      const lines = await readBackParquet(local, 'line_items')
      expect(new Decimal(lines.amount).eq(summary.amount)).toBe(true)
    } finally {
      await rm(local, { recursive: true, force: true })
    }
  })

  it('survives a restart: a job whose process died is run again by the next one, then FAILED after the last attempt', async () => {
    const job = (await t.gql(START, { input })).data!.startUsageExport
    // A process claims it and dies (nothing finishes it, the lease is never extended).
    const claimed = await claimJob(t.database.db, {
      now: clock.now(),
      leaseUntil: new Date(clock.now().getTime() + 60_000),
      maxAttempts: 2,
    })
    expect(claimed).toMatchObject({ id: job.id, status: 'RUNNING', attempts: 1 })
    // While the lease holds, nobody else takes it.
    expect(await t.app.services.exportJobs.runOnce()).toBe(0)
    expect((await t.gql(JOB, { id: job.id })).data!.exportJob.status).toBe('RUNNING')

    // A new API process on the same database ("after the restart"), once the lease ran out.
    clock.advance(61_000)
    const restarted = createApp({
      db: t.database.db,
      clock,
      config: defaultConfig({ LOG_LEVEL: 'silent', EXPORT_DIR: exportDir, EXPORT_JOB_MAX_ATTEMPTS: 2 }),
      logger: createLogger('silent'),
    })
    expect(await restarted.services.exportJobs.runOnce()).toBe(1)
    const resumed = (await t.gql(JOB, { id: job.id })).data!.exportJob
    expect(resumed).toMatchObject({ status: 'SUCCEEDED', attempts: 2, rowsDone: 25 })
    expect(resumed.result.rows).toBe(summary.events)

    // Died on its last attempt: FAILED with the reason, not run a third time.
    const second = (await t.gql(START, { input })).data!.startUsageExport
    for (let attempt = 1; attempt <= 2; attempt++) {
      expect(
        await claimJob(t.database.db, {
          now: clock.now(),
          leaseUntil: new Date(clock.now().getTime() + 60_000),
          maxAttempts: 2,
        }),
      ).toMatchObject({ id: second.id, attempts: attempt })
      clock.advance(61_000)
    }
    expect(await restarted.services.exportJobs.runOnce()).toBe(0)
    const failed = (await t.gql(JOB, { id: second.id })).data!.exportJob
    expect(failed.status).toBe('FAILED')
    expect(failed.error).toContain('stopped before it finished, 2 attempt(s)')
    expect(failed.result).toBeNull()
  })

  it('refuses bad input before queuing, and one tenant never sees another tenant’s jobs', async () => {
    const other = await t.createTenant('Other')
    const bad = await t.gql(START, { input: { from: input.to, to: input.from } }, other.apiKey)
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' })
    const noBucketApp = await createTestApp({ loadCatalog: false })
    try {
      const noBucket = await noBucketApp.gql(START, { input: { ...input, target: 'S3' } })
      expect(noBucket.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'target' })
    } finally {
      await noBucketApp.close()
    }
    expect((await t.gql(JOBS, { first: 10 }, other.apiKey)).data!.exportJobs.edges).toEqual([])

    const mine = (await t.gql(JOBS, { first: 2 })).data!.exportJobs
    expect(mine.edges).toHaveLength(2)
    expect(mine.pageInfo.hasNextPage).toBe(true)
    const rest = (await t.gql(JOBS, { first: 10, after: mine.pageInfo.endCursor })).data!.exportJobs
    expect(rest.edges.length).toBeGreaterThan(0)
    const ids = [...mine.edges, ...rest.edges].map((e: { node: { id: string } }) => e.node.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect((await t.gql(JOB, { id }, other.apiKey)).data!.exportJob).toBeNull()
    expect((await t.gql(JOB, { id: ids[0] }, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })
})
