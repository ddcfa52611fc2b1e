import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../packages/api/src/app.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { defaultConfig, loadConfig } from '../packages/api/src/config.ts'
import type { Db } from '../packages/api/src/db/database.ts'
import { createLogger } from '../packages/api/src/logger.ts'
import { openDatabase } from '../packages/api/src/runtime.ts'
import { createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const onPostgres = Boolean(process.env.DATABASE_URL)

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** `npx tsx packages/api/src/cli/create-tenant.ts …` from the repository root. */
function createTenantCli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', 'packages/api/src/cli/create-tenant.ts', ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe(`tenant:create (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let dataDir: string
  let database: TestDatabase | undefined
  let env: Record<string, string>

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'burnrate-cli-'))
    database = onPostgres ? await createTestDatabase() : undefined
    env = { DATA_DIR: dataDir, DATABASE_URL: database?.url ?? '' }
  })

  afterAll(async () => {
    await database?.destroy()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('prints a key that authenticates against an app on the same database', { timeout: 180_000 }, async () => {
    const run = await createTenantCli(['--name', 'Acme', '--require-signatures'], env)
    expect(run.code, run.stderr).toBe(0)
    const tenantId = /^tenant\s+(ten_\S+) \(Acme\)$/m.exec(run.stdout)?.[1]
    const apiKey = /^api key\s+(br_sk_[A-Za-z0-9_-]+)$/m.exec(run.stdout)?.[1]
    const signingSecret = /^signing secret\s+(br_whsec_[A-Za-z0-9_-]+)$/m.exec(run.stdout)?.[1]
    expect(tenantId, run.stdout).toBeDefined()
    expect(apiKey, run.stdout).toBeDefined()
    expect(signingSecret, run.stdout).toBeDefined()

    // The CLI has exited, so the embedded database directory is free to open here.
    const db: Db = database?.db ?? (await openDatabase(loadConfig({ DATA_DIR: dataDir })))
    try {
      const config = defaultConfig({ LOG_LEVEL: 'silent' })
      const app = createApp({ db, clock: systemClock, config, logger: createLogger('silent') })
      const ask = async (key: string) => {
        const response = await app.yoga.fetch('http://burnrate.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ query: '{ tenant { id name requireSignatures currency } }' }),
        })
        return (await response.json()) as { data?: any; errors?: { extensions?: Record<string, unknown> }[] }
      }
      expect(await ask(apiKey!)).toEqual({
        data: { tenant: { id: tenantId, name: 'Acme', requireSignatures: true, currency: 'USD' } },
      })
      // Only the hash is stored: the printed secret is not a key, and neither is a near miss.
      expect((await ask(signingSecret!)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
      expect((await ask(apiKey!.slice(0, -1))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
      const stored = await db
        .selectFrom('tenants')
        .select(['api_key_hash'])
        .where('id', '=', tenantId!)
        .executeTakeFirstOrThrow()
      expect(stored.api_key_hash).not.toContain(apiKey!)
    } finally {
      if (!database) await db.destroy()
    }
  })

  it(
    'answers a missing --name, a typo or a bad currency with usage and exit code 2, creating nothing',
    { timeout: 180_000 },
    async () => {
      const fresh = await mkdtemp(join(tmpdir(), 'burnrate-cli-usage-'))
      try {
        const usageEnv = { ...env, DATA_DIR: fresh }
        const attempts = [
          [],
          ['--require-signatures'],
          ['--nmae', 'Acme'],
          ['Acme'],
          ['--name', 'Acme', '--currency', 'dollars'],
        ]
        const runs = await Promise.all(attempts.map((args) => createTenantCli(args, usageEnv)))
        for (const [i, run] of runs.entries()) {
          const args = attempts[i]!
          expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(2)
          expect(run.stdout).toBe('')
          expect(run.stderr).toMatch(args.includes('--currency') ? /ISO 4217/ : /usage: tenant:create --name <name>/)
        }
        // It stopped before opening any database.
        expect(existsSync(join(fresh, 'pglite'))).toBe(false)
        if (database) {
          const tenants = await database.db.selectFrom('tenants').select('name').execute()
          expect(tenants.map((t) => t.name)).toEqual(['Acme'])
        }
      } finally {
        await rm(fresh, { recursive: true, force: true })
      }
    },
  )

  it('answers a bad environment with exit code 1 and the list of bad values', { timeout: 120_000 }, async () => {
    const run = await createTenantCli(['--name', 'Acme'], { ...env, DATABASE_URL: 'mysql://x', DB_POOL_SIZE: '0' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('Invalid configuration')
    expect(run.stderr).toMatch(/DATABASE_URL: .*"mysql:\/\/x"/)
    expect(run.stderr).toMatch(/DB_POOL_SIZE: .*"0"/)
    expect(run.stdout).toBe('')
  })
})
