import { createApp, type App } from '../../src/app.ts'
import { fixedClock, systemClock, type Clock } from '../../src/clock.ts'
import { defaultConfig, type Config } from '../../src/config.ts'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, type Logger } from '../../src/logger.ts'
import type { PrepaidPolicy } from '../../src/credits/types.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export interface GqlResponse<T = Record<string, any>> {
  data?: T
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[]
}

export interface TestApp {
  app: App
  database: TestDatabase
  /** A tenant created for the test, with its key. */
  tenant: { id: string; apiKey: string; signingSecret: string }
  /** POST /graphql in-process through yoga.fetch; `key` defaults to the test tenant's (null: no header). */
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    key?: string | null,
  ): Promise<GqlResponse<T>>
  createTenant(name?: string): Promise<{ id: string; apiKey: string; signingSecret: string }>
  close(): Promise<void>
}

/**
 * A whole app on a fresh database with the bundled price catalog loaded and one tenant.
 * Pass a clock to pin time (periods, future-timestamp checks).
 */
export async function createTestApp(
  options: { clock?: Clock; config?: Partial<Config>; loadCatalog?: boolean; prepaidPolicy?: PrepaidPolicy } = {},
): Promise<TestApp> {
  const database = await createTestDatabase()
  const config = defaultConfig({ LOG_LEVEL: 'silent', ...options.config })
  const app = createApp({
    db: database.db,
    clock: options.clock ?? systemClock,
    config,
    logger: testLogger(config),
    ...(options.prepaidPolicy ? { prepaidPolicy: options.prepaidPolicy } : {}),
  })
  if (options.loadCatalog !== false) await app.services.catalog.syncBundled()
  const createTenant = async (name = 'Test tenant') => {
    const created = await app.services.tenants.create({ name })
    handedOut(created.apiKey, created.signingSecret)
    return { id: created.tenant.id, apiKey: created.apiKey, signingSecret: created.signingSecret }
  }
  const tenant = await createTenant()
  return {
    app,
    database,
    tenant,
    createTenant,
    async gql(query, variables, key) {
      const apiKey = key === undefined ? tenant.apiKey : key
      const response = await app.yoga.fetch('http://burnrate.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
        body: JSON.stringify({ query, variables }),
      })
      return (await response.json()) as GqlResponse<any>
    },
    close: () => database.destroy(),
  }
}

/**
 * Under the whole-run log scan (test/support/log-capture.ts) the app logs at debug level into the run's
 * capture directory; otherwise at the configured level to stderr (tests default to silent).
 */
function testLogger(config: Config): Logger {
  const dir = process.env.BURNRATE_TEST_LOG_DIR
  if (!dir) return createLogger(config.LOG_LEVEL)
  const file = join(dir, `${process.pid}.log`)
  return createLogger('debug', (line) => appendFileSync(file, line + '\n'))
}

/** Records credentials the tests hand out, for the log scan to look for. */
function handedOut(...secrets: string[]): void {
  const dir = process.env.BURNRATE_TEST_LOG_DIR
  if (dir) appendFileSync(join(dir, `${process.pid}.secrets`), secrets.join('\n') + '\n')
}

export { fixedClock }
