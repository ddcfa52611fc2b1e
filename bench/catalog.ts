/**
 * Catalog sync and lookup speed, against a fresh PostgreSQL database:
 *   1. a full sync of the bundled genai-prices data into an empty catalog (parse + diff + insert +
 *      change log + the post-commit reload and re-pricing hook), through the app's catalog service;
 *   2. a no-op re-sync of the same data (lock, read, diff, nothing written);
 *   3. the ingest path's price lookup: resolve(model) + pricesAt(provider, model, at[, tenant]).
 *
 *   npx tsx bench/catalog.ts [--resyncs 5] [--lookups 1000000]
 */
import { performance } from 'node:perf_hooks'
import { loadBundledGenaiPrices } from '../packages/catalog-sync/src/index.ts'
import { createApp } from '../packages/api/src/app.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { defaultConfig } from '../packages/api/src/config.ts'
import { createDatabase, migrateToLatest } from '../packages/api/src/db/database.ts'
import { createLogger } from '../packages/api/src/logger.ts'
import { createFreshDatabase, numericOptions } from './lib.ts'

const options = numericOptions('catalog', {
  resyncs: { env: 'BENCH_RESYNCS', default: 5, help: 'no-op re-syncs to time (median reported)' },
  lookups: { env: 'BENCH_LOOKUPS', default: 1_000_000, help: 'price lookups to time' },
})

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const ms = (value: number) => `${value.toFixed(1)} ms`

const database = await createFreshDatabase('catalog')
const db = createDatabase({ databaseUrl: database.url, poolSize: 4 })
try {
  await migrateToLatest(db)
  const config = defaultConfig({ LOG_LEVEL: 'silent', CATALOG_SYNC_INTERVAL: 0 })
  const app = createApp({ db, clock: systemClock, config, logger: createLogger('silent') })
  const catalog = app.services.catalog

  let started = performance.now()
  const parsed = await loadBundledGenaiPrices()
  const parseMs = performance.now() - started

  started = performance.now()
  const full = await catalog.syncBundled()
  const fullMs = performance.now() - started

  const resyncs: number[] = []
  for (let i = 0; i < options.resyncs; i++) {
    started = performance.now()
    const summary = await catalog.syncBundled()
    resyncs.push(performance.now() - started)
    if (summary.rowsOpened !== 0 || summary.rowsClosed !== 0) throw new Error('a re-sync wrote rows')
  }

  // A tenant with one negotiated price, so the tenant-aware path is measured too.
  const tenant = await app.services.tenants.create({ name: 'bench' })
  await catalog.setOverride(tenant.tenant.id, {
    provider: 'openai',
    model: 'gpt-4o',
    usageType: 'input',
    unitPrice: '0.000002',
    effectiveFrom: '2026-01-01T00:00:00Z',
  })
  await catalog.ensureFresh()

  const names = ['gpt-4o-2024-08-06', 'claude-sonnet-4-5', 'gemini-2.5-pro', 'deepseek-chat']
  const base = Date.parse('2026-11-01T00:00:00Z')
  let rows = 0
  const lookup = (n: number, tenantId: string | null) => {
    for (let i = 0; i < n; i++) {
      const resolved = catalog.resolve(names[i & 3]!, null, tenantId)
      if (resolved)
        rows += catalog.pricesAt(
          resolved.provider,
          resolved.model,
          new Date(base + (i % 2_592_000) * 1000),
          tenantId,
        ).length
    }
  }
  lookup(100_000, null) // warm-up (JIT, resolution cache)
  started = performance.now()
  lookup(options.lookups, null)
  const publicNs = ((performance.now() - started) * 1e6) / options.lookups
  started = performance.now()
  lookup(options.lookups, tenant.tenant.id)
  const tenantNs = ((performance.now() - started) * 1e6) / options.lookups
  if (rows === 0) throw new Error('lookups found no prices')

  console.log(`bundled genai-prices ${full.sourceVersion}: ${parsed.models} models, ${parsed.prices.length} rows`)
  console.log(`parse + normalize (in memory)      ${ms(parseMs)}`)
  console.log(
    `full sync into an empty catalog    ${ms(fullMs)}  (${full.rowsOpened} rows opened; includes parse, change log, reload, re-pricing hook)`,
  )
  console.log(
    `no-op re-sync                      ${ms(median(resyncs))} median of ${resyncs.length} (${resyncs.map((v) => v.toFixed(0)).join(', ')} ms)`,
  )
  console.log(
    `lookup resolve + pricesAt          ${publicNs.toFixed(0)} ns/op public, ${tenantNs.toFixed(0)} ns/op with a tenant (${options.lookups} ops each)`,
  )
  console.log(
    `RESULT catalog full-sync=${fullMs.toFixed(0)}ms noop-resync=${median(resyncs).toFixed(0)}ms lookup=${publicNs.toFixed(0)}ns tenant-lookup=${tenantNs.toFixed(0)}ns`,
  )
} finally {
  await db.destroy()
  await database.drop()
}
