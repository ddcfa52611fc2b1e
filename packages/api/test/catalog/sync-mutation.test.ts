import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const fixture = (name: string) =>
  readFileSync(new URL(`../../../catalog-sync/test/fixtures/${name}`, import.meta.url), 'utf8')
const SYNC =
  'mutation($s: String!, $dry: Boolean) { syncCatalogSource(source: $s, dryRun: $dry) { source models rowsOpened rowsClosed unchanged held } }'
const SOURCES = '{ catalogSources { source lastAttemptAt lastSuccessAt consecutiveFailures lastError } }'

/** syncCatalogSource: what the CLI refers a user to while the API has the embedded database open. */
describe('syncCatalogSource', () => {
  let t: TestApp
  let server: Server
  let serving = true

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (serving && req.url === '/api/v1/models')
        res.writeHead(200, { 'content-type': 'application/json' }).end(fixture('openrouter-models.json'))
      else res.writeHead(503).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    t = await createTestApp({
      clock: fixedClock('2026-12-06T12:00:00Z'),
      loadCatalog: false,
      config: { OPENROUTER_MODELS_URL: `${base}/api/v1/models`, CATALOG_SYNC_INTERVAL: 3_600_000 },
    })
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
    await t.close()
  })

  it('is for catalog admins only, and says what else changes the public catalog', async () => {
    const refused = await t.gql(SYNC, { s: 'openrouter' })
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect(refused.errors?.[0]?.message).toContain('`catalog-sync --source <name>`')
    expect((await t.gql(SOURCES)).data?.catalogSources).toEqual([])
  })

  it('syncs the configured feed and records the run in catalogSources like a poll', async () => {
    t.app.services.config.CATALOG_ADMIN_TENANTS = [t.tenant.id]
    const dry = await t.gql(SYNC, { s: 'openrouter', dry: true })
    const rows = dry.data?.syncCatalogSource.rowsOpened
    expect(rows).toBeGreaterThan(0)
    expect(await t.database.db.selectFrom('price_catalog').select('id').execute()).toEqual([])
    expect((await t.gql(SOURCES)).data?.catalogSources).toEqual([])
    const synced = await t.gql(SYNC, { s: 'openrouter' })
    expect(synced.data?.syncCatalogSource).toEqual({
      source: 'openrouter',
      models: 4,
      rowsOpened: rows,
      rowsClosed: 0,
      unchanged: 0,
      held: 0,
    })
    expect((await t.gql(SOURCES)).data?.catalogSources).toEqual([
      {
        source: 'openrouter',
        lastAttemptAt: '2026-12-06T12:00:00.000Z',
        lastSuccessAt: '2026-12-06T12:00:00.000Z',
        consecutiveFailures: 0,
        lastError: null,
      },
    ])
    const state = await t.database.db
      .selectFrom('catalog_source_state')
      .select('next_attempt_at')
      .executeTakeFirstOrThrow()
    expect(state.next_attempt_at.toISOString()).toBe('2026-12-06T13:00:00.000Z')
  })

  it('answers an unknown source and a failing feed with a clear error, the failure recorded', async () => {
    const unknown = await t.gql(SYNC, { s: 'bogus' })
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'source' })
    serving = false
    const failed = await t.gql(SYNC, { s: 'openrouter' })
    expect(failed.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'source' })
    expect(failed.errors?.[0]?.message).toMatch(/^openrouter failed \(http\); the catalog is unchanged for it/)
    const state = (await t.gql(SOURCES)).data?.catalogSources[0]
    expect(state).toMatchObject({ consecutiveFailures: 1, lastSuccessAt: '2026-12-06T12:00:00.000Z' })
    expect(state.lastError).toContain('503')
  })
})
