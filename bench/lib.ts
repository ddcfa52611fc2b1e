/**
 * Shared benchmark helpers: a fresh PostgreSQL database per run, the app on it (in process or on
 * real HTTP), the forked load client, psql for bulk SQL, CPU accounting and percentiles.
 *
 * Raw SQL goes through psql (installed with PostgreSQL) rather than a driver imported here: bench/
 * has no dependencies of its own, and psql's \copy is exactly the COPY FROM STDIN a client does.
 */
import { execFile, fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createApp, type App } from '../packages/api/src/app.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { defaultConfig, type Config } from '../packages/api/src/config.ts'
import { createDatabase, migrateToLatest, type Db } from '../packages/api/src/db/database.ts'
import type { Tenant } from '../packages/api/src/db/types.ts'
import { createLogger } from '../packages/api/src/logger.ts'
import { startServer, type RunningServer } from '../packages/api/src/server.ts'
import type { LoadMessage, LoadRequest, LoadResult } from './load-client.ts'

// ------------------------------------------------------------------ options

type OptionSpec = Record<string, { env: string; default: number; help: string }>

/**
 * Numeric options from `--name value` flags, else the environment variable, else the default.
 * `--help` prints them and exits.
 */
export function numericOptions<S extends OptionSpec>(bench: string, spec: S): { [K in keyof S]: number } {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean' },
      ...Object.fromEntries(Object.keys(spec).map((name) => [name, { type: 'string' as const }])),
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) {
    console.log(`npx tsx bench/${bench}.ts [options]`)
    for (const [name, o] of Object.entries(spec))
      console.log(`  --${name.padEnd(12)} ${o.env.padEnd(20)} default ${o.default}  ${o.help}`)
    process.exit(0)
  }
  const out = {} as { [K in keyof S]: number }
  for (const [name, o] of Object.entries(spec) as [keyof S & string, S[keyof S]][]) {
    const raw = (values as Record<string, string | boolean | undefined>)[name] ?? process.env[o.env]
    const value = raw === undefined || raw === '' ? o.default : Number(raw)
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`--${name} / ${o.env} must be a non-negative number, got ${String(raw)}`)
    out[name] = value
  }
  return out
}

// ------------------------------------------------------------------ psql and databases

export const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

export interface PsqlOptions {
  /** Unaligned, tuples-only output (psql -At): one row a line, columns split by '|'. Default true. */
  tuplesOnly?: boolean
}

/**
 * Runs an SQL script through psql (statements one by one, stopping at the first error) and returns
 * its standard output. psql meta-commands (\copy, \timing) work.
 */
export function psql(url: string, script: string, options: PsqlOptions = {}): Promise<string> {
  const args = ['-X', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-']
  if (options.tuplesOnly ?? true) args.push('-At', '-q')
  return new Promise((resolve, reject) => {
    const child = execFile(
      'psql',
      args,
      { maxBuffer: 256 * 1024 * 1024, env: { ...process.env, PGOPTIONS: '--client-min-messages=warning' } },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`psql failed: ${stderr || error.message}\n--- script ---\n${script.slice(0, 2000)}`))
        else resolve(stdout)
      },
    )
    child.stdin!.end(script)
  })
}

/** The first column of the first row of a query, as text. */
export async function psqlValue(url: string, query: string): Promise<string> {
  return (await psql(url, query)).split('\n')[0] ?? ''
}

/** Rows of a query as arrays of text columns. */
export async function psqlRows(url: string, query: string): Promise<string[][]> {
  const out = await psql(url, query)
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('|'))
}

export interface FreshDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

const cleanups = new Set<() => Promise<void>>()
let exiting = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (exiting) return
    exiting = true
    console.error(`\n${signal}: dropping benchmark databases…`)
    void Promise.allSettled([...cleanups].map((c) => c())).finally(() => process.exit(130))
  })
}

/** A new, empty database `burnrate_bench_<bench>_<pid>`, dropped by `drop()` (and on Ctrl-C). */
export async function createFreshDatabase(bench: string): Promise<FreshDatabase> {
  const name = `burnrate_bench_${bench}_${process.pid}`
  await psql(ADMIN_URL, `drop database if exists ${name} with (force);\ncreate database ${name};`)
  const drop = async () => {
    cleanups.delete(drop)
    // BENCH_KEEP_DB=1 leaves the database for inspection (drop it by hand afterwards).
    if (process.env.BENCH_KEEP_DB === '1') console.log(`kept database ${name}`)
    else await psql(ADMIN_URL, `drop database if exists ${name} with (force);`)
  }
  cleanups.add(drop)
  return { name, url: databaseUrl(name), drop }
}

// ------------------------------------------------------------------ the app

export interface BenchApp {
  database: FreshDatabase
  db: Db
  config: Config
  app: App
  tenant: Tenant
  apiKey: string
  /** Stops the HTTP server (if started), closes the pool and drops the database. */
  close(): Promise<void>
  /** Starts the real HTTP server on a free port. */
  listen(): Promise<RunningServer>
}

/**
 * Fresh database, migrations, the app with a silent logger, the bundled price catalog and one
 * tenant. `poolSize` defaults to the config default (DB_POOL_SIZE).
 */
export async function setUpApp(
  bench: string,
  options: { poolSize?: number; config?: Partial<Config> } = {},
): Promise<BenchApp> {
  const database = await createFreshDatabase(bench)
  const config = defaultConfig({
    DATABASE_URL: database.url,
    PORT: 0,
    LOG_LEVEL: 'silent',
    GRAPHIQL: false,
    DEV_TENANT: false,
    CATALOG_SYNC_ON_START: false,
    ...(options.poolSize ? { DB_POOL_SIZE: options.poolSize } : {}),
    ...options.config,
  })
  const logger = createLogger('silent')
  const db = createDatabase({ databaseUrl: database.url, poolSize: config.DB_POOL_SIZE })
  await migrateToLatest(db)
  const app = createApp({ db, clock: systemClock, config, logger })
  const sync = await app.services.catalog.syncBundled()
  console.log(`catalog: ${sync.models} models, ${sync.rowsOpened} price rows (${sync.source} ${sync.sourceVersion})`)
  const { tenant, apiKey } = await app.services.tenants.create({ name: `bench ${bench}` })
  let server: RunningServer | null = null
  return {
    database,
    db,
    config,
    app,
    tenant,
    apiKey,
    async listen() {
      const running = await startServer(app, config, logger)
      // Closing twice (the benchmark, then close() below) must not throw.
      let closed: Promise<void> | null = null
      server = { ...running, close: () => (closed ??= running.close()) }
      return server
    },
    async close() {
      await server?.close()
      await db.destroy()
      await database.drop()
    },
  }
}

/** A GraphQL request through yoga.fetch (in process, no socket). Throws on GraphQL errors. */
export async function graphql<T = any>(
  app: App,
  apiKey: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const response = await app.yoga.fetch('http://bench.local/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query, variables }),
  })
  const json = (await response.json()) as { data?: T; errors?: unknown[] }
  if (json.errors?.length || !json.data)
    throw new Error(`GraphQL error: ${JSON.stringify(json.errors ?? json).slice(0, 1000)}`)
  return json.data
}

// ------------------------------------------------------------------ load client

export interface LoadRun {
  result: LoadResult
  /** CPU used during the timed phase by this process (the API server), by all postgres processes on the host, and the machine's busy share. */
  cpu: CpuDelta
}

/** BENCH_CPU_PROFILE=file.cpuprofile: profile the API server (this process) during the timed phase only. */
const PROFILE_FILE = process.env.BENCH_CPU_PROFILE

async function startProfile(): Promise<Session | null> {
  if (!PROFILE_FILE) return null
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 500 })
  await session.post('Profiler.start')
  return session
}

async function stopProfile(session: Session | null): Promise<void> {
  if (!session || !PROFILE_FILE) return
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(PROFILE_FILE, JSON.stringify(profile))
  session.disconnect()
  console.log(
    `cpu profile of the timed phase written to ${PROFILE_FILE} (summarize: npx tsx bench/profile-top.ts ${PROFILE_FILE})`,
  )
}

/**
 * Forks bench/load-client.ts (its own process, so the load does not share the server's event
 * loop), runs the request and returns its result with the CPU accounting of the timed phase.
 */
export function runLoad(request: LoadRequest, database?: string): Promise<LoadRun> {
  const file = fileURLToPath(new URL('./load-client.ts', import.meta.url))
  // The parent's execArgv carries tsx's loader (and --cpu-prof when profiling: keep that out of the client).
  const child = fork(file, [], { execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof')) })
  return new Promise((resolve, reject) => {
    let before: CpuSnapshot | null = null
    let profiling: Promise<Session | null> = Promise.resolve(null)
    child.on('message', (message: LoadMessage) => {
      if (message.kind === 'measuring') {
        before = cpuSnapshot(database)
        profiling = startProfile()
      } else if (message.kind === 'failed') {
        reject(new Error(`load client failed: ${message.error}`))
      } else {
        const cpu = cpuDelta(before ?? cpuSnapshot(database), cpuSnapshot(database))
        profiling.then(stopProfile).then(() => resolve({ result: message.result, cpu }), reject)
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load client exited with code ${code}`))
    })
    child.send(request)
  })
}

// ------------------------------------------------------------------ CPU accounting

interface CpuSnapshot {
  at: number
  selfMs: number
  postgresMs: Map<string, number>
  databaseMs: Map<string, number>
  statements: number
  machineBusy: number
  machineTotal: number
}

export interface CpuDelta {
  wallMs: number
  /** This process (the API server when it runs here). */
  serverMs: number
  /** Every `postgres` process on the host: includes other users of a shared server; backends that exited during the interval are missed. */
  postgresMs: number
  /** Busy share of all cores over the interval, 0..1. */
  machineBusy: number
  /**
   * The backends connected to the benchmark's own database (runLoad's `database`): the steady
   * PostgreSQL figure on a shared host, since other users' backends are left out. 0 without it.
   */
  databaseMs: number
  /** Statements this process sent to PostgreSQL over the interval (every pg `Client#query`). */
  statements: number
}

// Counts every statement the API sends (pg's Client#query), for "statements per batch".
let statementsSent = 0
// The API's own pg (bench/ has no dependencies): the same module instance its pool uses.
const pg = createRequire(new URL('../packages/api/package.json', import.meta.url))('pg') as {
  Client: { prototype: { query: (...args: unknown[]) => unknown } }
}
const clientQuery = pg.Client.prototype.query
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  statementsSent += 1
  return (clientQuery as (...a: unknown[]) => unknown).apply(this, args)
} as typeof clientQuery

const TICK_MS = 10 // USER_HZ is 100 on Linux.

/** CPU ms so far of every `postgres` process on the host, by pid (with `database`: only its backends). */
function postgresCpuMs(database?: string): Map<string, number> {
  const byPid = new Map<string, number>()
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      if (!stat.slice(stat.indexOf('(') + 1, close).startsWith('postgres')) continue
      // A backend's title: "postgres: <cluster>: <user> <database> <client> <state>".
      if (database && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(` ${database} `)) continue
      const fields = stat.slice(close + 2).split(' ')
      byPid.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_MS) // utime, stime (fields 14 and 15 of stat)
    } catch {
      // The process ended while we looked.
    }
  }
  return byPid
}

/** CPU used between two readings by processes alive at the second; one that exited in between is not counted. */
function postgresDeltaMs(before: Map<string, number>, after: Map<string, number>): number {
  let ms = 0
  for (const [pid, now] of after) ms += now - (before.get(pid) ?? 0)
  return ms
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  const total = values.reduce((a, b) => a + b, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  return { busy: total - idle, total }
}

function cpuSnapshot(database?: string): CpuSnapshot {
  const { user, system } = process.cpuUsage()
  const machine = machineTicks()
  return {
    at: performance.now(),
    selfMs: (user + system) / 1000,
    postgresMs: postgresCpuMs(),
    databaseMs: database ? postgresCpuMs(database) : new Map(),
    statements: statementsSent,
    machineBusy: machine.busy,
    machineTotal: machine.total,
  }
}

function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  return {
    wallMs: b.at - a.at,
    serverMs: b.selfMs - a.selfMs,
    postgresMs: postgresDeltaMs(a.postgresMs, b.postgresMs),
    databaseMs: postgresDeltaMs(a.databaseMs, b.databaseMs),
    statements: b.statements - a.statements,
    machineBusy: (b.machineBusy - a.machineBusy) / Math.max(1, b.machineTotal - a.machineTotal),
  }
}

/** Where the timed phase's CPU went; `events` adds the API's cost per event (robust to a noisy host). */
export function describeCpu(cpu: CpuDelta, clientCpuMs: number, events: number): string {
  const share = (ms: number) => `${((ms / cpu.wallMs) * 100).toFixed(0)} %`
  return [
    `CPU over the timed phase (100 % = one core; ${cpus().length} cores):`,
    `  API server process ${share(cpu.serverMs)}, load client ${share(clientCpuMs)}, postgres (all on host) ${share(cpu.postgresMs)};`,
    `  machine busy ${(cpu.machineBusy * 100).toFixed(0)} % of all cores`,
    `  API server CPU per event ${((cpu.serverMs * 1000) / events).toFixed(0)} µs => at most ${fmt.int(events / (cpu.serverMs / 1000))} events/s per fully used core;` +
      ` postgres ${((cpu.postgresMs * 1000) / events).toFixed(0)} µs/event`,
    `  postgres backends of this database ${((cpu.databaseMs * 1000) / events).toFixed(0)} µs/event (${share(cpu.databaseMs)});` +
      ` ${fmt.int(cpu.statements)} statements sent (${(cpu.statements / events).toFixed(3)} per event)`,
  ].join('\n')
}

// ------------------------------------------------------------------ statistics and printing

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export interface Distribution {
  count: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  }
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - start }
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => n.toFixed(1),
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
  pct: (ratio: number) => `${(ratio * 100).toFixed(1)} %`,
}

/** What was run, where and when: printed first so a pasted output explains itself. */
export function printHeader(title: string, settings: Record<string, unknown>): void {
  const [one, five] = loadavg()
  console.log(`\n=== ${title}`)
  console.log(
    `date ${new Date().toISOString()}, node ${process.version}, ${cpus().length} cores, load average ${one!.toFixed(2)} / ${five!.toFixed(2)} (1 / 5 min)`,
  )
  console.log(`settings ${JSON.stringify(settings)}`)
}

/** Runs a benchmark's main, printing a failure and exiting non-zero. */
export function main(run: () => Promise<void>): void {
  run().then(
    () => process.exit(0),
    async (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error)
      await Promise.allSettled([...cleanups].map((c) => c()))
      process.exit(1)
    },
  )
}
