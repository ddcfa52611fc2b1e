import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { copyMigratedDataDir, createTestDatabase } from '../../packages/api/test/support/db.ts'
import { postGraphQL, startApiProcess, type ApiProcess } from './api-process.ts'

/**
 * The real start command with the dev tenant and the widget demo (`/demo`), on a fresh database:
 * a new PostgreSQL database when DATABASE_URL is set, else PGlite in a temporary data directory.
 * For the browser tests and the widget bench.
 */
export interface DemoApi {
  api: ApiProcess
  origin: string
  devKey: string
  /** A GraphQL request with the dev tenant's key; throws on any error in the answer. */
  gql(query: string, variables?: Record<string, unknown>): Promise<any>
  stop(): Promise<void>
}

export async function startDemoApi(name: string): Promise<DemoApi> {
  const dataDir = await mkdtemp(join(tmpdir(), `burnrate-${name}-`))
  const database = process.env.DATABASE_URL ? await createTestDatabase() : undefined
  if (!database) await copyMigratedDataDir(dataDir)
  const api = await startApiProcess(
    {
      DATA_DIR: dataDir,
      DATABASE_URL: database?.url ?? '',
      DEV_TENANT: 'true',
      DEMO: 'true',
      CATALOG_SYNC_INTERVAL: '0',
      STRIPE_PUSH_ENABLED: 'false',
    },
    150_000,
  )
  const origin = api.url.replace(/\/graphql$/, '')
  const devKey = /Dev tenant key (br_sk_\S+)/.exec(api.output())![1]!
  return {
    api,
    origin,
    devKey,
    async gql(query, variables) {
      const result = await postGraphQL(`${origin}/graphql`, devKey, query, variables)
      if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`)
      return result.data
    },
    async stop() {
      await api.stop()
      await database?.destroy()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
