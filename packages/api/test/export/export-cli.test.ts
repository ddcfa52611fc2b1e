import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { defaultConfig, loadConfig } from '../../src/config.ts'
import type { Db } from '../../src/db/database.ts'
import { createLogger } from '../../src/logger.ts'
import { openDatabase, systemClock } from '../../src/runtime.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { readBackParquet, startFakeS3 } from '../support/s3.ts'

const API = fileURLToPath(new URL('../..', import.meta.url))
const onPostgres = Boolean(process.env.DATABASE_URL)

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** `tsx src/cli/export.ts …` in packages/api, as `pnpm --filter @burnrate/api run export -- …` runs it. */
function exportCli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', 'src/cli/export.ts', ...args],
      { cwd: API, env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

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

describe(`export CLI (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let dataDir: string
  let database: TestDatabase | undefined
  let env: Record<string, string>
  let tenantId: string
  let apiKey: string
  let summary: { events: number; amount: string }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'burnrate-export-cli-'))
    database = onPostgres ? await createTestDatabase() : undefined
    env = { DATA_DIR: dataDir, DATABASE_URL: database?.url ?? '', LOG_LEVEL: 'silent' }
    const db: Db = database?.db ?? (await openDatabase(loadConfig({ DATA_DIR: dataDir })))
    try {
      const app = createApp({
        db,
        clock: systemClock,
        config: defaultConfig({ LOG_LEVEL: 'silent' }),
        logger: createLogger('silent'),
      })
      await app.services.catalog.syncBundled()
      const created = await app.services.tenants.create({ name: 'Export' })
      tenantId = created.tenant.id
      apiKey = created.apiKey
      const gql = async (query: string, variables: Record<string, unknown>) => {
        const response = await app.yoga.fetch('http://burnrate.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
          body: JSON.stringify({ query, variables }),
        })
        return (await response.json()) as { data: any; errors?: unknown }
      }
      const events = Array.from({ length: 12 }, (_, i) => ({
        id: `cli-${i}`,
        customerId: 'cust-1',
        model: 'gpt-4o-mini',
        provider: 'openai',
        inputTokens: 1000 + i,
        outputTokens: 300,
        timestamp: new Date(Date.UTC(2026, 4, 1 + (i % 3), i)).toISOString(),
      }))
      // One outside the exported range.
      events.push({ ...events[0]!, id: 'cli-late', timestamp: '2026-05-10T00:00:00Z' })
      const r = await gql(BATCH, { events })
      expect(r.data?.recordUsageBatch.recorded, JSON.stringify(r)).toBe(13)
      summary = (await gql(SUMMARY, { from: '2026-05-01T00:00:00Z', to: '2026-05-04T00:00:00Z' })).data.usageSummary
    } finally {
      // PGlite: the CLI is another process and needs the data directory free.
      if (!database) await db.destroy()
    }
  }, 180_000)

  afterAll(async () => {
    await database?.destroy()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('writes Parquet and CSV per day and a manifest that match usageSummary', { timeout: 180_000 }, async () => {
    const out = join(dataDir, 'out')
    const run = await exportCli(
      ['--', '--tenant', apiKey, '--from', '2026-05-01', '--to', '2026-05-04T00:00:00Z', '--out', out],
      env,
    )
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(`exported 12 events`)
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'))
    expect(manifest.tenantId).toBe(tenantId)
    expect(manifest.files.map((f: { day: string }) => f.day)).toEqual(['2026-05-01', '2026-05-02', '2026-05-03'])
    expect(manifest.totals.rows).toBe(12)
    expect(summary.events).toBe(12)
    expect(manifest.totals.amount).toBe(summary.amount)
    const csv = await readFile(join(out, manifest.files[0].csv), 'utf8')
    expect(csv.trim().split('\n')).toHaveLength(1 + manifest.files[0].rows)
    const duck = await DuckDBInstance.create(':memory:')
    const conn = await duck.connect()
    try {
      const r = await conn.runAndReadAll(
        `select count(*)::varchar as n, sum(amount)::varchar as amount from read_parquet('${out}/usage_events/**/*.parquet')`,
      )
      const back = r.getRowObjects()[0] as { n: string; amount: string }
      expect(Number(back.n)).toBe(12)
      expect(Number(back.amount)).toBeCloseTo(Number(summary.amount), 9)
    } finally {
      conn.closeSync()
      duck.closeSync()
    }

    // The tenant id works as well as its key.
    const byId = await exportCli(
      ['--tenant', tenantId, '--from', '2026-05-10', '--to', '2026-05-11', '--out', join(dataDir, 'out2')],
      env,
    )
    expect(byId.code, byId.stderr).toBe(0)
    expect(byId.stdout).toContain('exported 1 events')
  })

  it(
    'uploads to s3://bucket/prefix: DuckDB reads back totals equal to usageSummary',
    { timeout: 180_000 },
    async () => {
      const s3 = await startFakeS3()
      try {
        const { EXPORT_S3_BUCKET: _bucket, ...s3Env } = s3.config
        const run = await exportCli(
          [
            '--tenant',
            tenantId,
            '--from',
            '2026-05-01',
            '--to',
            '2026-05-04',
            '--out',
            `s3://${s3.bucket}/finance/may/`,
          ],
          { ...env, ...Object.fromEntries(Object.entries(s3Env).map(([k, v]) => [k, String(v)])) },
        )
        expect(run.code, run.stderr).toBe(0)
        expect(run.stdout).toContain(`to s3://${s3.bucket}/finance/may/`)
        const keys = await s3.keys('finance/may/')
        expect(keys).toContain('finance/may/manifest.json')
        expect(keys).toContain('finance/may/usage_events/date=2026-05-01/events.parquet')
        expect(keys).toContain('finance/may/line_items/date=2026-05-03/line_items.csv')
        const local = await s3.download('finance/may')
        const manifest = JSON.parse(await readFile(join(local, 'manifest.json'), 'utf8'))
        const events = await readBackParquet(local, 'usage_events')
        expect(events.rows).toBe(summary.events)
        expect(new Decimal(events.amount).eq(summary.amount)).toBe(true)
        expect(manifest.totals).toMatchObject({ rows: 12, amount: summary.amount })
        const lines = await readBackParquet(local, 'line_items')
        expect(lines.rows).toBe(manifest.lineItems.totals.rows)
        expect(lines.rows).toBeGreaterThanOrEqual(24)
        expect(new Decimal(lines.amount).eq(summary.amount)).toBe(true)
        await rm(local, { recursive: true, force: true })

        const bad = await exportCli(
          ['--tenant', tenantId, '--from', '2026-05-01', '--to', '2026-05-04', '--out', 's3://Not_A_Bucket'],
          env,
        )
        expect(bad.code).toBe(1)
        expect(bad.stderr).toContain('--out: "s3://Not_A_Bucket" is not s3://<bucket>/<prefix>')
      } finally {
        await s3.close()
      }
    },
  )

  it('exits 1 with a clear message on missing arguments, bad dates and bad ranges', { timeout: 180_000 }, async () => {
    const out = join(dataDir, 'bad')
    const missing = await exportCli(['--tenant', tenantId, '--from', '2026-05-01'], env)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('missing --to, --out')
    const badDate = await exportCli(
      ['--tenant', tenantId, '--from', '2026-13-01', '--to', '2026-05-04', '--out', out],
      env,
    )
    expect(badDate.code).toBe(1)
    expect(badDate.stderr).toContain('--from must be an ISO 8601 date')
    const backwards = await exportCli(
      ['--tenant', tenantId, '--from', '2026-05-04', '--to', '2026-05-01', '--out', out],
      env,
    )
    expect(backwards.code).toBe(1)
    expect(backwards.stderr).toContain('--to must be after --from')
    const tooLong = await exportCli(
      ['--tenant', tenantId, '--from', '2025-01-01', '--to', '2026-05-01', '--out', out],
      env,
    )
    expect(tooLong.code).toBe(1)
    expect(tooLong.stderr).toContain('--to: an export covers at most 366 days')
    const unknown = await exportCli(
      ['--tenant', 'ten_nope', '--from', '2026-05-01', '--to', '2026-05-02', '--out', out],
      env,
    )
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('no tenant with id or API key')
  })

  it.skipIf(onPostgres)(
    'refuses while a running API holds the PGlite data directory',
    { timeout: 180_000 },
    async () => {
      const db = await openDatabase(loadConfig({ DATA_DIR: dataDir }))
      try {
        const run = await exportCli(
          ['--tenant', tenantId, '--from', '2026-05-01', '--to', '2026-05-02', '--out', join(dataDir, 'locked')],
          env,
        )
        expect(run.code).toBe(1)
        expect(run.stderr).toContain('refused')
        expect(run.stderr).toContain('exportUsage(input: { from, to })')
      } finally {
        await db.destroy()
      }
    },
  )
})
