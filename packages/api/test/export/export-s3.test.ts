import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
      cost
    }
  }
`
const EXPORT = /* GraphQL */ `
  mutation ($input: UsageExportInput!) {
    exportUsage(input: $input) {
      directory
      rows
      amount
      cost
      lineItems {
        rows
        amount
        cost
        files {
          day
          parquet
          rows
        }
      }
    }
  }
`

describe(`exportUsage to an S3-compatible bucket, with line items (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestApp
  let s3: Awaited<ReturnType<typeof startFakeS3>>
  const input = { from: '2026-06-01T00:00:00Z', to: '2026-06-03T00:00:00Z' }
  beforeAll(async () => {
    s3 = await startFakeS3()
    t = await createTestApp({
      clock: fixedClock(new Date('2026-12-07T12:00:00Z')),
      config: { ...s3.config, EXPORT_S3_PREFIX: 'burnrate' },
    })
    const events = Array.from({ length: 7 }, (_, i) => ({
      id: `s3-${i}`,
      customerId: `cust-${i % 2}`,
      model: i === 6 ? 'no-such-model' : 'gpt-4o-mini',
      provider: 'openai',
      inputTokens: 3000 + i,
      outputTokens: 70 * i,
      cacheReadTokens: i === 3 ? 1000 : undefined,
      timestamp: new Date(Date.UTC(2026, 5, 1 + (i % 2), i)).toISOString(),
    }))
    const r = await t.gql(BATCH, { events })
    expect(r.data?.recordUsageBatch.recorded, JSON.stringify(r)).toBe(7)
    const other = await t.createTenant('Other')
    await t.gql(BATCH, { events: [{ ...events[0], id: 'o-1' }] }, other.apiKey)
  })
  afterAll(async () => {
    await t.close()
    await s3.close()
  })

  it('uploads events, line items and the manifest under <prefix>/<tenant>/<run>/; DuckDB totals equal usageSummary', async () => {
    const r = await t.gql(EXPORT, { input: { ...input, target: 'S3' } })
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined()
    const e = r.data!.exportUsage
    expect(e.directory.startsWith(`s3://${s3.bucket}/burnrate/${t.tenant.id}/`)).toBe(true)
    const summary = (await t.gql(SUMMARY, input)).data!.usageSummary
    expect(e.rows).toBe(summary.events)
    expect(e.amount).toBe(summary.amount)

    const prefix = e.directory.slice(`s3://${s3.bucket}/`.length)
    const local = await s3.download(prefix)
    try {
      const manifest = JSON.parse(await readFile(join(local, 'manifest.json'), 'utf8'))
      expect(manifest.tenantId).toBe(t.tenant.id)
      const events = await readBackParquet(local, 'usage_events')
      expect(events.rows).toBe(7)
      expect(new Decimal(events.amount).eq(summary.amount)).toBe(true)
      expect(new Decimal(events.cost).eq(summary.cost)).toBe(true)
      // Line items: the billed lines of the priced events (the UNPRICED one has none); they add up to the same money.
      const lines = await readBackParquet(local, 'line_items')
      expect(lines.rows).toBe(e.lineItems.rows)
      expect(lines.rows).toBeGreaterThanOrEqual(12)
      expect(new Decimal(lines.amount).eq(summary.amount)).toBe(true)
      expect(new Decimal(lines.cost).eq(summary.cost)).toBe(true)
      expect(manifest.lineItems.totals).toEqual({
        rows: lines.rows,
        amount: e.lineItems.amount,
        cost: e.lineItems.cost,
      })
      expect(e.lineItems.files.map((f: { day: string }) => f.day)).toEqual(['2026-06-01', '2026-06-02'])
    } finally {
      await rm(local, { recursive: true, force: true })
    }

    // A second run at the same instant gets its own prefix; the first stays.
    const second = await t.gql(EXPORT, { input: { ...input, target: 'S3' } })
    expect(second.errors, JSON.stringify(second.errors)).toBeUndefined()
    const again = second.data!.exportUsage
    expect(again.directory).not.toBe(e.directory)
    expect(await s3.keys(prefix)).toContain(`${prefix}manifest.json`)
  })

  it('refuses target S3 when no bucket is configured, with BAD_USER_INPUT on field target', async () => {
    const plain = await createTestApp({ loadCatalog: false })
    try {
      const r = await plain.gql(EXPORT, { input: { ...input, target: 'S3' } })
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'target' })
    } finally {
      await plain.close()
    }
  })
})
