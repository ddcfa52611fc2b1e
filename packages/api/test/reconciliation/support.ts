import { createApp, type App } from '../../src/app.ts'
import type { Clock } from '../../src/clock.ts'
import { defaultConfig, type Config } from '../../src/config.ts'
import type { Tenant } from '../../src/db/types.ts'
import { createLogger } from '../../src/logger.ts'
import type { UsageEventInput } from '../../src/usage/validation.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import type { GqlResponse } from '../support/app.ts'

const MASTER_KEY = 'a'.repeat(64)

export interface ReconTestApp {
  app: App
  database: TestDatabase
  tenant: Tenant
  apiKey: string
  /** Every wait the provider clients asked for (Retry-After, backoff), instead of sleeping. */
  waits: number[]
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GqlResponse<T>>
  record(events: UsageEventInput[]): Promise<void>
  close(): Promise<void>
}

/** An app on a fresh database (no public catalog) whose provider clients reach `providerUrl`. */
export async function createReconTestApp(clock: Clock, providerUrl: string, config: Partial<Config> = {}) {
  const database = await createTestDatabase()
  const waits: number[] = []
  const cfg = defaultConfig({
    LOG_LEVEL: 'silent',
    RECONCILE_ENCRYPTION_KEY: MASTER_KEY,
    RECONCILE_OPENAI_URL: providerUrl,
    RECONCILE_ANTHROPIC_URL: providerUrl,
    RECONCILE_OPENROUTER_URL: providerUrl,
    RECONCILE_INTERVAL: 0,
    WEBHOOK_ALLOW_PRIVATE_TARGETS: true,
    ...config,
  })
  const app = createApp({
    db: database.db,
    clock,
    config: cfg,
    logger: createLogger('silent'),
    providerSleep: async (ms) => {
      waits.push(ms)
    },
  })
  const created = await app.services.tenants.create({ name: 'Recon tenant' })
  const gql: ReconTestApp['gql'] = async (query, variables) => {
    const response = await app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${created.apiKey}` },
      body: JSON.stringify({ query, variables }),
    })
    return (await response.json()) as GqlResponse<any>
  }
  const result: ReconTestApp = {
    app,
    database,
    tenant: created.tenant,
    apiKey: created.apiKey,
    waits,
    gql,
    async record(events) {
      for (let i = 0; i < events.length; i += 1000) {
        const results = await app.services.usage.record(created.tenant, events.slice(i, i + 1000))
        const failed = results.filter((r) => r.status !== 'RECORDED')
        if (failed.length > 0) throw new Error(`recording failed: ${JSON.stringify(failed[0])}`)
      }
    },
    close: () => database.destroy(),
  }
  return result
}
