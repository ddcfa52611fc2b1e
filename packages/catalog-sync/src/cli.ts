import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely'
import { applyCatalogSnapshot, DEFAULT_HOLD_RATIO, type CatalogDB } from './apply.ts'
import { findCatalogConflicts } from './conflicts.ts'
import { acquireDataDirLock, API_LOCK_HOLDER, DataDirLockedError, type DataDirLock } from './data-dir-lock.ts'
import { modelKey } from './model-key.ts'
import { listPendingChanges, resolvePendingChange, type PendingChange } from './pending.ts'
import { recordSyncFailure, recordSyncSuccess, syncRunSummary } from './source-state.ts'
import { SourceError } from './sources/fetch.ts'
import { parseOverridesFile } from './sources/overrides.ts'
import {
  isPublicSource,
  loadPublicSource,
  PUBLIC_SOURCES,
  SOURCE_URL_ENV,
  withRetry,
  type PublicSourceName,
} from './sources/registry.ts'
import type { CatalogCorrection, CatalogSyncSummary } from './types.ts'

type FetchedSource = keyof typeof SOURCE_URL_ENV
const FETCHED_SOURCES = Object.keys(SOURCE_URL_ENV) as FetchedSource[]
/** --openrouter-url, --litellm-url, --genai-prices-remote-url: each source its own URL, so one run can sync several. */
const urlFlag = (source: FetchedSource) => `${source}-url` as const

const USAGE = `usage: catalog-sync --source <${[...PUBLIC_SOURCES, 'overrides'].join('|')}>[,…] [--<source>-url <url|file>]… [--file <overrides.yaml>]
                    [--once | --every <1h|15m|30s>] [--dry-run] [--timeout <ms>] [--correct-from <ISO time>]
       catalog-sync pending          list held price changes (a price moving more than ${DEFAULT_HOLD_RATIO}× in one sync)
       catalog-sync confirm <id>     apply a held price change, from when the sync saw it
       catalog-sync reject <id>      drop a held price change; the price in force stays
  Where each source is read from (a URL or a file; the flag wins, the public feed when neither is set):
${FETCHED_SOURCES.map((source) => `    ${source.padEnd(20)} --${urlFlag(source).padEnd(24)} or ${SOURCE_URL_ENV[source]}`).join('\n')}
    --url <url|file> is the same for a run of one source.
  --correct-from: the source corrects the past; its prices apply from that instant on (then use repriceUsage).
    Not needed for a price whose start date the source states (genai-prices start_date): a sync applies
    it from that date when the catalog had another price there, and reports "past corrected from".
  Reads DATABASE_URL (PostgreSQL) or DATA_DIR (PGlite, default ./.data). PGlite allows one process at a time:
    while the API has DATA_DIR open the CLI refuses and names the GraphQL operation to use instead.
  Exit codes: 0 done, 1 a source or command failed (or the database is in use), 2 usage.`

interface CliSummary {
  models: number
  opened: number
  closed: number
  unchanged: number
  held: number
  rejected: number
  /** What the feeds stated that no row carries (unknown units, documentation entries, aliases), kept in catalog_feed_issues. */
  skipped: number
  /** Timelines whose past was corrected from a start date the source stated. */
  corrected: number
  conflicts: number
  failed: string[]
}

/** "1h", "15m", "30s", "500ms" or plain milliseconds → milliseconds. */
export function parseInterval(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (!match) throw new Error(`invalid interval "${text}": use e.g. 1h, 15m, 30s or milliseconds`)
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms']
  return Math.round(Number(match[1]) * factor)
}

const LISTED_CORRECTIONS = 5

/** "past corrected from <earliest> (openai/gpt-4o input, …) — run repriceUsage for events since then". */
function correctionLine(corrections: readonly CatalogCorrection[]): string {
  const earliest = new Date(Math.min(...corrections.map((c) => c.from.getTime())))
  const names = corrections
    .slice(0, LISTED_CORRECTIONS)
    .map(
      (c) =>
        `${modelKey(c.provider, c.model)} ${c.usageType}${c.timeWindow ? ' (windowed)' : ''} from ${c.from.toISOString()}`,
    )
  const more = corrections.length > LISTED_CORRECTIONS ? `, and ${corrections.length - LISTED_CORRECTIONS} more` : ''
  return `past corrected from ${earliest.toISOString()} (${names.join(', ')}${more}) — run repriceUsage for events since then`
}

export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
  isTty: boolean
  env: NodeJS.ProcessEnv
  db?: Kysely<CatalogDB>
  now?: () => Date
  signal?: AbortSignal
}

/**
 * io whose every line first clears the progress line, if one is shown: on a terminal the progress
 * line is rewritten in place on stderr, and any other line written over it would be mixed with it.
 */
function withProgress(io: CliIo): CliIo & { progress: (text: string) => void } {
  let shown = false
  const clear = () => {
    if (!shown) return
    shown = false
    io.err('\r\x1b[2K')
  }
  return {
    ...io,
    out: (line) => {
      clear()
      io.out(line)
    },
    err: (line) => {
      clear()
      io.err(line)
    },
    progress: (text) => {
      if (!io.isTty) return
      if (text === '') return clear()
      io.err(`\r\x1b[2K${text}`)
      shown = true
    },
  }
}

interface SyncValues {
  url?: string
  file?: string
  'dry-run'?: boolean
  timeout?: string
  'correct-from'?: string
  urls: Partial<Record<PublicSourceName, string>>
}

async function syncOnce(
  db: Kysely<CatalogDB>,
  sources: string[],
  values: SyncValues,
  io: ReturnType<typeof withProgress>,
  nextAttemptAt?: Date,
): Promise<CliSummary> {
  const total: CliSummary = {
    models: 0,
    opened: 0,
    closed: 0,
    unchanged: 0,
    held: 0,
    rejected: 0,
    skipped: 0,
    corrected: 0,
    conflicts: 0,
    failed: [],
  }
  const now = () => io.now?.() ?? new Date()
  const add = (summary: CatalogSyncSummary) => {
    total.models += summary.models
    total.opened += summary.rowsOpened
    total.closed += summary.rowsClosed
    total.unchanged += summary.unchanged
    total.held += summary.held ?? 0
    total.rejected += summary.rejected ?? 0
    total.skipped += summary.skipped ?? 0
    total.corrected += summary.corrections?.length ?? 0
  }
  for (const [index, source] of sources.entries()) {
    const step = `[${index + 1}/${sources.length}] ${source}`
    const attemptedAt = now()
    try {
      if (source === 'overrides') {
        if (!values.file) throw new Error('--source overrides needs --file <overrides.yaml|json>')
        const snapshots = parseOverridesFile(await readFile(values.file, 'utf8'))
        for (const [tenantId, snapshot] of snapshots) {
          io.progress(`${step}: applying ${snapshot.prices.length} rows for tenant ${tenantId}`)
          const observedAt = new Date(Math.min(...snapshot.prices.map((p) => p.effectiveFrom.getTime())))
          add(
            await applyCatalogSnapshot(db, snapshot, {
              observedAt,
              tenantId,
              holdRatio: Infinity,
              dryRun: values['dry-run'],
            }),
          )
        }
        io.progress('')
        continue
      }
      if (!isPublicSource(source)) throw new Error(`unknown source "${source}"`)
      io.progress(`${step}: loading`)
      const location = values.urls[source]
      const snapshot = await withRetry(
        () => loadPublicSource(source, location, { timeoutMs: values.timeout ? Number(values.timeout) : undefined }),
        {
          onRetry: (error, attempt, delayMs) =>
            io.err(
              `${source}: attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${delayMs} ms`,
            ),
        },
      )
      io.progress(`${step}: applying ${snapshot.prices.length} rows (${snapshot.models} models)`)
      const correctFrom = values['correct-from'] ? new Date(values['correct-from']) : null
      const observedAt = correctFrom && correctFrom < attemptedAt ? correctFrom : attemptedAt
      const summary = await applyCatalogSnapshot(db, snapshot, { observedAt, dryRun: values['dry-run'] })
      add(summary)
      if (!values['dry-run'])
        await recordSyncSuccess(db, source, {
          attemptedAt,
          succeededAt: now(),
          summary: syncRunSummary(summary, snapshot),
          nextAttemptAt,
        })
      for (const r of snapshot.rejected ?? [])
        io.err(`${source}: rejected ${r.model}${r.field ? ` ${r.field}` : ''} = ${r.rawValue ?? '(none)'}: ${r.reason}`)
      io.out(
        `${source} ${snapshot.sourceVersion}: ${summary.models} models, ${summary.rowsOpened} opened, ${summary.rowsClosed} closed, ${summary.unchanged} unchanged, ${summary.held ?? 0} held, ${summary.rejected ?? 0} rejected, ${summary.skipped ?? 0} skipped`,
      )
      const corrections = summary.corrections ?? []
      if (corrections.length > 0) io.out(`${source}: ${correctionLine(corrections)}`)
    } catch (error) {
      total.failed.push(source)
      const message = error instanceof Error ? error.message : String(error)
      // A failed public source shows in catalogSources like a failed poll (the API's own polling plan is left as it was).
      if (!values['dry-run'] && isPublicSource(source))
        await recordSyncFailure(db, source, { attemptedAt, error: message })
      const kind = error instanceof SourceError ? ` (${error.kind})` : ''
      io.err(`${source} failed${kind}; the catalog is unchanged for it: ${message}`)
    }
  }
  total.conflicts = (await findCatalogConflicts(db, now())).length
  return total
}

/** What to use instead while the API has the embedded database open: the GraphQL operation doing the same. */
function operationInstead(command: string, sources: string[], id: string | undefined, dryRun: boolean): string {
  if (command === 'confirm') return `the confirmPriceChange(id: "${id}") mutation`
  if (command === 'reject') return `the rejectPriceChange(id: "${id}") mutation`
  if (command === 'pending') return 'the pendingPriceChanges query'
  const operations = sources.map((source) =>
    source === 'overrides'
      ? 'the importPriceOverrides(document:) mutation (with each tenant’s own key)'
      : `the syncCatalogSource(source: "${source}"${dryRun ? ', dryRun: true' : ''}) mutation`,
  )
  return [...new Set(operations)].join(' and ')
}

/** PGlite under DATA_DIR, locked for this process (DataDirLockedError while the API or another CLI has it). */
async function openEmbedded(env: NodeJS.ProcessEnv): Promise<{ db: Kysely<CatalogDB>; lock: DataDirLock }> {
  const dataDir = join(env.DATA_DIR || './.data', 'pglite')
  const lock = acquireDataDirLock(dataDir, 'catalog-sync')
  try {
    const { PGlite } = await import('@electric-sql/pglite')
    return { db: new Kysely<CatalogDB>({ dialect: new PGliteDialect({ pglite: new PGlite(dataDir) }) }), lock }
  } catch (error) {
    lock.release()
    throw error
  }
}

async function openPostgres(url: string): Promise<Kysely<CatalogDB>> {
  const pg = (await import('pg')).default
  return new Kysely<CatalogDB>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
  })
}

const describeChange = (change: PendingChange) =>
  `${change.id}  ${change.source}  ${modelKey(change.provider, change.model)} ${change.usage_type}${change.time_window ? ` (${change.time_window})` : ''}  ` +
  `${change.old_unit_price} → ${change.new_unit_price}  seen ${change.observed_at.toISOString()}`

async function pendingCommand(
  db: Kysely<CatalogDB>,
  command: string,
  id: string | undefined,
  io: CliIo,
): Promise<number> {
  if (command === 'pending') {
    const changes = await listPendingChanges(db)
    if (changes.length === 0) io.out('no held price changes')
    for (const change of changes) io.out(describeChange(change))
    return 0
  }
  const resolved = await resolvePendingChange(
    db,
    Number(id),
    command === 'confirm' ? 'CONFIRM' : 'REJECT',
    io.now?.() ?? new Date(),
  )
  if (!resolved) {
    io.err(
      `no pending price change ${id} (it was never held, or is already confirmed or rejected): see \`catalog-sync pending\``,
    )
    return 1
  }
  const summary = resolved.summary
  io.out(
    `${command === 'confirm' ? 'confirmed' : 'rejected'} ${describeChange(resolved.change)}` +
      (summary
        ? `: rows opened ${summary.rowsOpened}, rows closed ${summary.rowsClosed} — run repriceUsage for events priced since then`
        : ''),
  )
  return 0
}

const COMMANDS = ['pending', 'confirm', 'reject'] as const

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a source or command failed, 2 usage). */
export async function runCli(argv: string[], rawIo: CliIo): Promise<number> {
  const io = withProgress(rawIo)
  let values
  let positionals: string[]
  try {
    const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        source: { type: 'string', multiple: true },
        url: { type: 'string' },
        ...Object.fromEntries(FETCHED_SOURCES.map((source) => [urlFlag(source), { type: 'string' as const }])),
        file: { type: 'string' },
        once: { type: 'boolean', default: false },
        every: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        timeout: { type: 'string' },
        'correct-from': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    })
    values = parsed.values as typeof parsed.values & Partial<Record<ReturnType<typeof urlFlag>, string>>
    positionals = parsed.positionals
  } catch (error) {
    io.err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  const command = positionals[0]
  if (command !== undefined) {
    const id = positionals[1]
    const known = (COMMANDS as readonly string[]).includes(command)
    const wantsId = command === 'confirm' || command === 'reject'
    const problem = !known
      ? `unknown command "${command}"`
      : values.source
        ? `${command} takes no --source`
        : wantsId && (id === undefined || !/^[1-9]\d{0,14}$/.test(id))
          ? `${command} needs the id of a held change (see \`catalog-sync pending\`)`
          : positionals.length > (wantsId ? 2 : 1)
            ? `unexpected ${positionals.slice(wantsId ? 2 : 1).join(' ')}`
            : null
    if (problem) {
      io.err(`${problem}\n${USAGE}`)
      return 2
    }
    return withDatabase(io, operationInstead(command, [], id, false), (db) => pendingCommand(db, command, id, io))
  }
  const sources = (values.source ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = sources.filter((s) => s !== 'overrides' && !isPublicSource(s))
  if (sources.length === 0 || unknown.length > 0 || (values.once && values.every)) {
    io.err(`${unknown.length ? `unknown source ${unknown.join(', ')}\n` : ''}${USAGE}`)
    return 2
  }
  const publicSources = sources.filter(isPublicSource)
  if (values.url && publicSources.length !== 1) {
    const flags = publicSources.filter((s): s is FetchedSource => s in SOURCE_URL_ENV).map((s) => `--${urlFlag(s)}`)
    io.err(
      `--url names one source's feed; give each source its own: ${flags.length ? flags.join(', ') : FETCHED_SOURCES.map((s) => `--${urlFlag(s)}`).join(', ')}\n${USAGE}`,
    )
    return 2
  }
  const urls: SyncValues['urls'] = {}
  for (const source of FETCHED_SOURCES) {
    const url = values[urlFlag(source)] || rawIo.env[SOURCE_URL_ENV[source]]
    if (url) urls[source] = url
  }
  if (values.url) urls[publicSources[0]!] = values.url
  if (values['correct-from'] && Number.isNaN(new Date(values['correct-from']).getTime())) {
    io.err(`--correct-from is not a date: ${values['correct-from']}\n${USAGE}`)
    return 2
  }
  let intervalMs: number | null = null
  if (values.every) {
    try {
      intervalMs = parseInterval(values.every)
    } catch (error) {
      io.err(`${(error as Error).message}\n${USAGE}`)
      return 2
    }
  }
  const syncValues: SyncValues = { ...values, urls }
  return withDatabase(io, operationInstead('sync', sources, undefined, values['dry-run']), async (db) => {
    for (;;) {
      const nextAttemptAt =
        intervalMs === null ? undefined : new Date((io.now?.() ?? new Date()).getTime() + intervalMs)
      const total = await syncOnce(db, sources, syncValues, io, nextAttemptAt)
      io.out(
        `${values['dry-run'] ? 'dry run (nothing written): ' : ''}models seen ${total.models}, rows opened ${total.opened}, rows closed ${total.closed}, unchanged ${total.unchanged}, held ${total.held}, rejected ${total.rejected}, skipped ${total.skipped}${total.corrected ? `, past corrected ${total.corrected}` : ''}, conflicts ${total.conflicts}${total.failed.length ? `, failed: ${total.failed.join(', ')}` : ''}`,
      )
      if (intervalMs === null) return total.failed.length ? 1 : 0
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs)
        io.signal?.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      if (io.signal?.aborted) return 0
    }
  })
}

/**
 * Opens the database (unless the caller injected one), checks it has the catalog tables, runs `use`
 * and closes it. An embedded database another process has open is refused, naming `instead`.
 */
async function withDatabase(
  io: CliIo,
  instead: string,
  use: (db: Kysely<CatalogDB>) => Promise<number>,
): Promise<number> {
  let db = io.db
  let lock: DataDirLock | undefined
  if (!db) {
    if (io.env.DATABASE_URL) db = await openPostgres(io.env.DATABASE_URL)
    else {
      try {
        ;({ db, lock } = await openEmbedded(io.env))
      } catch (error) {
        if (!(error instanceof DataDirLockedError)) throw error
        const api = error.owner.holder === API_LOCK_HOLDER
        io.err(
          `refused: ${error.message}. PGlite allows one process at a time, so a write from here could be lost. ` +
            (api
              ? `Use ${instead} on the running API instead, or stop the API and run this again.`
              : 'Run this again once it has finished.'),
        )
        return 1
      }
    }
  }
  try {
    const tables = [
      'price_catalog',
      'price_change_log',
      'catalog_pending_changes',
      'catalog_source_state',
      'catalog_sync_runs',
      'catalog_feed_issues',
    ]
    const { rows } = await sql<{ ready: boolean }>`select ${sql.join(
      tables.map((table) => sql`to_regclass(${`public.${table}`}) is not null`),
      sql` and `,
    )} as ready`.execute(db)
    if (!rows[0]?.ready) {
      io.err(
        'the database has no (current) catalog tables: start the API once against it (it runs the migrations), then sync',
      )
      return 1
    }
    return await use(db)
  } finally {
    if (!io.db) await db.destroy()
    lock?.release()
  }
}
