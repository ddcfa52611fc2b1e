import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// The tsx that `npx tsx` resolves to, run directly: npm exec dies on SIGTERM without passing it on,
// which would orphan the server instead of stopping it; tsx itself relays signals and exit codes.
const TSX = join(ROOT, 'node_modules/.bin/tsx')
const onPostgres = Boolean(process.env.DATABASE_URL)

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

interface StartCommand {
  child: ChildProcess
  stdout(): string
  stderr(): string
  exited: Promise<number | null>
}

const running = new Set<ChildProcess>()

function runStartCommand(env: Record<string, string>): StartCommand {
  const child = spawn(TSX, ['packages/api/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    }),
  )
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** Resolves with the printed GraphQL URL once the start command says it is listening. */
function listening(api: StartCommand, timeoutMs = 150_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = /Burnrate API\s+(http:\/\/\S+\/graphql)/.exec(api.stdout())
      if (match?.[1]) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    const timer = setTimeout(
      () => reject(new Error(`no URL printed in time\nstdout:\n${api.stdout()}\nstderr:\n${api.stderr()}`)),
      timeoutMs,
    )
    api.child.stdout!.on('data', check)
    check()
    void api.exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before listening\nstdout:\n${api.stdout()}\nstderr:\n${api.stderr()}`))
    })
  })
}

async function stop(api: StartCommand): Promise<number | null> {
  api.child.kill('SIGTERM')
  const timeout = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 20_000).unref())
  const outcome = await Promise.race([api.exited, timeout])
  expect(outcome, `did not exit after SIGTERM\nstderr:\n${api.stderr()}`).not.toBe('still running')
  return outcome as number | null
}

function logEntries(api: StartCommand): Record<string, unknown>[] {
  return api
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

async function graphql(url: string, key: string | null, query: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  })
  // Without a key the request is refused on its headers, before its body is read.
  expect(response.status).toBe(key ? 200 : 401)
  return (await response.json()) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] }
}

const DEV_KEY = /Dev tenant key (br_sk_[A-Za-z0-9_-]+)/

describe(`the start command (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  let dataDir: string
  let database: TestDatabase | undefined
  let env: Record<string, string>
  let port: number
  let devKey: string
  let devTenantId: string

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'burnrate-start-'))
    database = onPostgres ? await createTestDatabase() : undefined
    port = await freePort()
    // An empty DATABASE_URL means unset: PGlite under DATA_DIR.
    env = { PORT: String(port), DATA_DIR: dataDir, DATABASE_URL: database?.url ?? '' }
  })

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL')
    await database?.destroy()
    await rm(dataDir, { recursive: true, force: true })
  })

  it(
    'starts on a fresh database, serves the dev tenant and the catalog, and stops cleanly on SIGTERM',
    { timeout: 240_000 },
    async () => {
      const api = runStartCommand(env)
      try {
        const url = await listening(api)
        expect(url).toBe(`http://127.0.0.1:${port}/graphql`)
        const printed = DEV_KEY.exec(api.stdout())
        expect(printed, api.stdout()).not.toBeNull()
        devKey = printed![1]!

        const tenant = await graphql(url, devKey, '{ tenant { id name } }')
        expect(tenant.errors).toBeUndefined()
        expect(tenant.data.tenant.name).toBe('Dev tenant')
        devTenantId = tenant.data.tenant.id

        const prices = await graphql(
          url,
          devKey,
          '{ providerPrices(model: "gpt-4o") { provider model usageType unit unitPrice currency } }',
        )
        expect(prices.errors).toBeUndefined()
        const rows = prices.data.providerPrices as {
          provider: string
          model: string
          usageType: string
          unitPrice: string
          currency: string
        }[]
        expect(rows.length).toBeGreaterThan(0)
        const input = rows.find((r) => r.usageType === 'input')
        expect(input).toMatchObject({ provider: 'openai', model: 'gpt-4o', currency: 'USD' })
        expect(Number(input!.unitPrice)).toBe(2.5e-6)
        expect(rows.some((r) => r.usageType === 'output')).toBe(true)

        const anonymous = await graphql(url, null, '{ tenant { id } }')
        expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
        expect((await fetch(url.replace('/graphql', '/healthz'))).status).toBe(200)

        const loaded = logEntries(api).find((entry) => entry.msg === 'price catalog loaded')
        expect(loaded).toBeDefined()
        expect(loaded!.rowsOpened).toBeGreaterThan(0)

        expect(await stop(api)).toBe(0)
        expect(logEntries(api).some((entry) => entry.msg === 'shutting down' && entry.signal === 'SIGTERM')).toBe(true)
        await expect(fetch(url.replace('/graphql', '/healthz'))).rejects.toThrow()

        if (!onPostgres) {
          const file = join(dataDir, 'dev-tenant.json')
          const saved = JSON.parse(await readFile(file, 'utf8')) as { tenantId: string; apiKey: string }
          expect(saved).toMatchObject({ tenantId: devTenantId, apiKey: devKey })
          // It holds a secret key: readable by its owner only.
          expect((await stat(file)).mode & 0o077).toBe(0)
        } else {
          // With DATABASE_URL the key is never written to disk.
          expect(existsSync(join(dataDir, 'dev-tenant.json'))).toBe(false)
        }
      } finally {
        api.child.kill('SIGKILL')
      }
    },
  )

  it(
    'restarts on the same data: the same dev tenant, and a catalog sync that writes nothing',
    { timeout: 240_000 },
    async () => {
      expect(devKey, 'the first start must have run').toBeDefined()
      const api = runStartCommand(env)
      try {
        const url = await listening(api)
        if (onPostgres) {
          // Only the embedded database keeps the dev key beside it; on PostgreSQL the key is shown once.
          expect(api.stdout()).not.toMatch(DEV_KEY)
          expect(api.stdout()).toContain('tenant:create')
        } else {
          expect(DEV_KEY.exec(api.stdout())?.[1]).toBe(devKey)
        }
        const tenant = await graphql(url, devKey, '{ tenant { id name } }')
        expect(tenant.data?.tenant).toEqual({ id: devTenantId, name: 'Dev tenant' })

        const loaded = logEntries(api).find((entry) => entry.msg === 'price catalog loaded')
        expect(loaded).toMatchObject({ rowsOpened: 0, rowsClosed: 0 })
        expect(loaded!.unchanged).toBeGreaterThan(0)

        expect(await stop(api)).toBe(0)
      } finally {
        api.child.kill('SIGKILL')
      }
    },
  )

  it('refuses a bad environment with exit code 1, listing every bad value', { timeout: 120_000 }, async () => {
    const api = runStartCommand({ ...env, PORT: 'abc', LOG_LEVEL: 'loud' })
    try {
      const timeout = new Promise<'still running'>((resolve) =>
        setTimeout(() => resolve('still running'), 60_000).unref(),
      )
      expect(await Promise.race([api.exited, timeout])).toBe(1)
      expect(api.stderr()).toContain('Invalid configuration')
      expect(api.stderr()).toMatch(/PORT: .*"abc"/)
      expect(api.stderr()).toMatch(/LOG_LEVEL: .*"loud"/)
      expect(api.stdout()).not.toContain('Burnrate API')
    } finally {
      api.child.kill('SIGKILL')
    }
  })
})
