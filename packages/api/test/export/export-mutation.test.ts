import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

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
      from
      to
      days
      rows
      amount
      cost
      files {
        day
        parquet
        csv
        rows
        amount
        cost
      }
    }
  }
`

describe(`exportUsage mutation (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestApp
  let exportDir: string
  beforeAll(async () => {
    exportDir = await mkdtemp(join(tmpdir(), 'burnrate-export-dir-'))
    t = await createTestApp({
      clock: fixedClock(new Date('2026-12-07T12:00:00Z')),
      config: { EXPORT_DIR: exportDir },
    })
    const events = Array.from({ length: 9 }, (_, i) => ({
      id: `m-${i}`,
      customerId: `cust-${i % 2}`,
      model: 'gpt-4o-mini',
      provider: 'openai',
      inputTokens: 2000 + i,
      outputTokens: 100 * i,
      timestamp: new Date(Date.UTC(2026, 5, 1 + (i % 2), i)).toISOString(),
    }))
    const r = await t.gql(BATCH, { events })
    expect(r.data?.recordUsageBatch.recorded, JSON.stringify(r)).toBe(9)
    // Another tenant's events never reach this tenant's export.
    const other = await t.createTenant('Other')
    await t.gql(BATCH, { events: [{ ...events[0], id: 'o-1' }] }, other.apiKey)
  })
  afterAll(async () => {
    await t.close()
    await rm(exportDir, { recursive: true, force: true })
  })

  it('writes a new folder per tenant and run under EXPORT_DIR and returns the manifest', async () => {
    const input = { from: '2026-06-01T00:00:00Z', to: '2026-06-03T00:00:00Z' }
    const r = await t.gql(EXPORT, { input })
    expect(r.errors).toBeUndefined()
    const e = r.data!.exportUsage
    const summary = (await t.gql(SUMMARY, input)).data!.usageSummary
    expect(e.directory.startsWith(join(exportDir, t.tenant.id) + '/')).toBe(true)
    expect(e.days).toEqual(['2026-06-01', '2026-06-02'])
    expect(e.rows).toBe(9)
    expect(summary.events).toBe(9)
    expect(e.amount).toBe(summary.amount)
    expect(e.cost).toBe(summary.cost)
    expect(e.files.map((f: { rows: number }) => f.rows)).toEqual([5, 4])
    expect(typeof e.files[0].amount).toBe('string')
    const manifest = JSON.parse(await readFile(join(e.directory, 'manifest.json'), 'utf8'))
    expect(manifest.tenantId).toBe(t.tenant.id)
    expect(manifest.totals).toEqual({ rows: 9, amount: e.amount, cost: e.cost })
    const csv = await readFile(join(e.directory, e.files[1].csv), 'utf8')
    expect(csv.trim().split('\n')).toHaveLength(5)

    // A second run (same clock instant) gets its own folder; the first stays.
    const again = (await t.gql(EXPORT, { input })).data!.exportUsage
    expect(again.directory).not.toBe(e.directory)
    expect(await readdir(join(exportDir, t.tenant.id))).toHaveLength(2)
  })

  it('rejects bad ranges with BAD_USER_INPUT and the field, before writing anything', async () => {
    const cases = [
      { input: { from: '2026-06-03T00:00:00Z', to: '2026-06-01T00:00:00Z' }, field: 'to' },
      { input: { from: '2026-06-01T00:00:00Z', to: '2026-06-01T00:00:00Z' }, field: 'to' },
      { input: { from: '2025-01-01T00:00:00Z', to: '2026-06-01T00:00:00Z' }, field: 'to' },
    ]
    const other = await t.createTenant('Empty')
    for (const c of cases) {
      const r = await t.gql(EXPORT, c, other.apiKey)
      expect(r.data).toBeNull()
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: c.field })
    }
    const notADate = await t.gql(EXPORT, { input: { from: 'yesterday', to: '2026-06-01T00:00:00Z' } }, other.apiKey)
    expect(notADate.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    await expect(readdir(join(exportDir, other.id))).rejects.toThrow()
  })

  it('needs a tenant key', async () => {
    const r = await t.gql(EXPORT, { input: { from: '2026-06-01T00:00:00Z', to: '2026-06-02T00:00:00Z' } }, null)
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })
})
