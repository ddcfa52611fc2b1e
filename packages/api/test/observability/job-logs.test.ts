import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { systemClock } from '../../src/runtime.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

/** Background work logs under a job name and a fresh job id per run, so one run's lines can be found together. */
describe('job ids on background work', () => {
  const lines: Record<string, unknown>[] = []
  let database: TestDatabase
  let app: App
  let feed: Server

  beforeAll(async () => {
    feed = createServer((_req, res) => res.writeHead(503).end('down'))
    await new Promise<void>((resolve) => feed.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(feed.address() as AddressInfo).port}`
    database = await createTestDatabase()
    const config = defaultConfig({
      LOG_LEVEL: 'info',
      CATALOG_SOURCES: ['openrouter'],
      OPENROUTER_MODELS_URL: `${base}/api/v1/models`,
      CATALOG_SYNC_INTERVAL: 3_600_000,
    })
    const logger = createLogger('info', (line) => lines.push(JSON.parse(line) as Record<string, unknown>))
    app = createApp({ db: database.db, clock: systemClock, config, logger })
  })
  afterAll(async () => {
    feed.close()
    await database?.destroy()
  })

  it('a catalog poll that fails logs its failure with job catalog-sync and a job id of its own', async () => {
    await app.services.catalog.poll()
    const failed = lines.filter((l) => l.msg === 'catalog source failed; the catalog is unchanged for it')
    expect(failed, JSON.stringify(lines)).toHaveLength(1)
    expect(failed[0]).toMatchObject({ source: 'openrouter', job: 'catalog-sync' })
    expect(String(failed[0]!.jobId)).toMatch(/^catalog-sync:[0-9a-f-]{36}$/)
    // The next poll is another run: another id (the lease is taken again after it expires; force it).
    await database.db.deleteFrom('catalog_source_state').execute()
    await app.services.catalog.poll()
    const again = lines.filter((l) => l.msg === 'catalog source failed; the catalog is unchanged for it')
    expect(again).toHaveLength(2)
    expect(again[1]!.jobId).not.toBe(failed[0]!.jobId)
  })
})
