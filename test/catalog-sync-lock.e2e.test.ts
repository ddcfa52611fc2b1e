import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copyMigratedDataDir, createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'
import { postGraphQL, ROOT, startApiProcess, type ApiProcess } from './support/api-process.ts'

const onPostgres = Boolean(process.env.DATABASE_URL)
const OPENROUTER_FIXTURE = join(ROOT, 'packages/catalog-sync/test/fixtures/openrouter-models.json')
const DEV_KEY = /Dev tenant key (br_sk_[A-Za-z0-9_-]+)/

interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** `npm run catalog-sync -- …`: the bin script, as the root script runs it. `reached` resolves once stdout matches `until`. */
function catalogSync(args: string[], env: Record<string, string>, until: (stdout: string) => boolean = () => false) {
  const child = spawn(process.execPath, ['packages/catalog-sync/bin/catalog-sync.mjs', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let markReached: () => void = () => {}
  const reached = new Promise<void>((resolve) => (markReached = resolve))
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (until(stdout)) markReached()
  })
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const done = new Promise<CliRun>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })))
  void done.then(() => markReached())
  return { reached, done, stop: () => child.kill('SIGTERM') }
}

const run = (args: string[], env: Record<string, string>) => catalogSync(args, env).done

describe.skipIf(onPostgres)('catalog-sync and a running API on one PGlite data dir', () => {
  let dataDir: string
  let env: Record<string, string>
  let api: ApiProcess | undefined

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'burnrate-lock-'))
    await copyMigratedDataDir(dataDir)
    env = { DATA_DIR: dataDir, DATABASE_URL: '', DEMO: 'false', CATALOG_SYNC_INTERVAL: '0' }
  })
  afterAll(async () => {
    await api?.stop('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  })

  it(
    'refuses while the API runs, naming the mutation to use; works once the API is gone',
    { timeout: 400_000 },
    async () => {
      api = await startApiProcess(env)
      const key = DEV_KEY.exec(api.output())?.[1]
      expect(key, api.output()).toBeDefined()

      const refused = await run(['--source', 'openrouter', '--url', OPENROUTER_FIXTURE], env)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/in use by the Burnrate API \(pid \d+/)
      expect(refused.stderr).toContain(
        'Use the syncCatalogSource(source: "openrouter") mutation on the running API instead',
      )
      const confirm = await run(['confirm', '7'], env)
      expect(confirm.code).toBe(1)
      expect(confirm.stderr).toContain('confirmPriceChange(id: "7")')
      // Nothing was written behind the API's back.
      const openrouterRows =
        '{ providerPrices(provider: "openrouter", model: "openai/gpt-4o") { source } catalogSources { source consecutiveFailures } }'
      const before = await postGraphQL(api.url, key!, openrouterRows)
      expect(before.data?.providerPrices.filter((p: { source: string }) => p.source === 'openrouter')).toEqual([])
      expect(before.data?.catalogSources).toEqual([])

      expect(await api.stop('SIGTERM')).toBe(0)
      const synced = await run(['--source', 'openrouter', '--url', OPENROUTER_FIXTURE], env)
      expect(synced.code, synced.stderr).toBe(0)
      const rows = Number(/models seen 4, rows opened (\d+)/.exec(synced.stdout)?.[1])
      expect(rows, synced.stdout).toBeGreaterThan(0)

      // The API started again sees what the CLI wrote: nothing lost.
      api = await startApiProcess(env)
      const after = await postGraphQL(api.url, key!, openrouterRows)
      expect(
        after.data?.providerPrices.filter((p: { source: string }) => p.source === 'openrouter').length,
      ).toBeGreaterThan(0)
      expect(after.data?.catalogSources).toEqual([{ source: 'openrouter', consecutiveFailures: 0 }])

      // A killed API leaves its lock behind; its pid is gone, so the CLI takes the lock over.
      await api.stop('SIGKILL')
      api = undefined
      expect(existsSync(join(dataDir, 'pglite.lock'))).toBe(true)
      const afterKill = await run(['--source', 'openrouter', '--url', OPENROUTER_FIXTURE], env)
      expect(afterKill.code, afterKill.stderr).toBe(0)
      expect(afterKill.stdout).toContain(`rows opened 0, rows closed 0, unchanged ${rows}`)
      expect(existsSync(join(dataDir, 'pglite.lock'))).toBe(false)
    },
  )

  it(
    'the API refuses to start while a CLI run has the data dir, and starts once it is done',
    { timeout: 400_000 },
    async () => {
      const looping = catalogSync(
        ['--source', 'openrouter', '--url', OPENROUTER_FIXTURE, '--every', '1h'],
        env,
        (out) => out.includes('models seen'),
      )
      await looping.reached
      await expect(startApiProcess(env)).rejects.toThrow(/Cannot start: .* in use by catalog-sync \(pid \d+/)
      looping.stop()
      expect((await looping.done).code).toBe(0)
      api = await startApiProcess(env)
      expect(api.url).toMatch(/^http:/)
    },
  )
})

describe.skipIf(!onPostgres)('catalog-sync beside a running API on PostgreSQL', () => {
  let database: TestDatabase
  let api: ApiProcess | undefined
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(async () => {
    await api?.stop('SIGKILL')
    await database.destroy()
  })

  it('syncs while the API runs (PostgreSQL has many writers) and the API sees it', { timeout: 400_000 }, async () => {
    const env = { DATABASE_URL: database.url!, DEMO: 'false', CATALOG_SYNC_INTERVAL: '0' }
    api = await startApiProcess(env)
    const key = DEV_KEY.exec(api.output())?.[1]
    const synced = await run(['--source', 'openrouter', '--url', OPENROUTER_FIXTURE], env)
    expect(synced.code, synced.stderr).toBe(0)
    const after = await postGraphQL(
      api.url,
      key!,
      '{ providerPrices(provider: "openrouter", model: "openai/gpt-4o") { source } catalogSources { source } }',
    )
    expect(
      after.data?.providerPrices.filter((p: { source: string }) => p.source === 'openrouter').length,
    ).toBeGreaterThan(0)
    expect(after.data?.catalogSources).toEqual([{ source: 'openrouter' }])
  })
})
