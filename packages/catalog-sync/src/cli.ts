import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely'
import { applyCatalogSnapshot, type CatalogDB } from './apply.ts'
import { SourceError } from './sources/fetch.ts'
import { parseOverridesFile } from './sources/overrides.ts'
import { isPublicSource, loadPublicSource, PUBLIC_SOURCES, withRetry } from './sources/registry.ts'
import type { CatalogCorrection, CatalogSyncSummary } from './types.ts'

export const USAGE = `usage: catalog-sync --source <${[...PUBLIC_SOURCES, 'overrides'].join('|')}>[,…] [--url <url|file>] [--file <overrides.yaml>]
                    [--once | --every <1h|15m|30s>] [--dry-run] [--timeout <ms>] [--correct-from <ISO time>]
  --correct-from: the source corrects the past; its prices apply from that instant on (then use repriceUsage).
    Not needed for a price whose start date the source states (genai-prices start_date): a sync applies
    it from that date when the catalog had another price there, and reports "past corrected from".
  Reads DATABASE_URL (PostgreSQL) or DATA_DIR (PGlite, default ./.data; the API must not be running on it).`

export interface CliSummary {
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
export function correctionLine(corrections: readonly CatalogCorrection[]): string {
  const earliest = new Date(Math.min(...corrections.map((c) => c.from.getTime())))
  const names = corrections.slice(0, LISTED_CORRECTIONS).map((c) => `${c.provider}/${c.model} ${c.usageType}${c.timeWindow ? ' (windowed)' : ''} from ${c.from.toISOString()}`)
  const more = corrections.length > LISTED_CORRECTIONS ? `, and ${corrections.length - LISTED_CORRECTIONS} more` : ''
  return `past corrected from ${earliest.toISOString()} (${names.join(', ')}${more}) — run repriceUsage for events since then`
}

/** Public (provider, model, usage type) timelines where two sources price the row in force differently. */
export async function countConflicts(db: Kysely<CatalogDB>, at: Date): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select provider, model, usage_type from price_catalog
      where tenant_id is null and time_window is null and effective_from <= ${at} and (effective_to is null or effective_to > ${at})
      group by provider, model, usage_type
      having count(distinct source) > 1 and min(unit_price) <> max(unit_price)
    ) as disagreeing`.execute(db)
  return rows[0]?.n ?? 0
}

function openDb(env: NodeJS.ProcessEnv): Promise<Kysely<CatalogDB>> {
  return (async () => {
    if (env.DATABASE_URL) {
      const pg = (await import('pg')).default
      return new Kysely<CatalogDB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: env.DATABASE_URL, max: 2 }) }) })
    }
    const { PGlite } = await import('@electric-sql/pglite')
    return new Kysely<CatalogDB>({ dialect: new PGliteDialect({ pglite: new PGlite(join(env.DATA_DIR || './.data', 'pglite')) }) })
  })()
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

async function syncOnce(
  db: Kysely<CatalogDB>,
  sources: string[],
  values: { url?: string; file?: string; 'dry-run'?: boolean; timeout?: string; 'correct-from'?: string },
  io: CliIo,
): Promise<CliSummary> {
  const total: CliSummary = { models: 0, opened: 0, closed: 0, unchanged: 0, held: 0, rejected: 0, skipped: 0, corrected: 0, conflicts: 0, failed: [] }
  const progress = (text: string) => {
    if (io.isTty) io.err(`\r\x1b[2K${text}`)
  }
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
    try {
      if (source === 'overrides') {
        if (!values.file) throw new Error('--source overrides needs --file <overrides.yaml|json>')
        const snapshots = parseOverridesFile(await readFile(values.file, 'utf8'))
        for (const [tenantId, snapshot] of snapshots) {
          progress(`${step}: applying ${snapshot.prices.length} rows for tenant ${tenantId}`)
          const observedAt = new Date(Math.min(...snapshot.prices.map((p) => p.effectiveFrom.getTime())))
          add(await applyCatalogSnapshot(db, snapshot, { observedAt, tenantId, holdRatio: Infinity, dryRun: values['dry-run'] }))
        }
        continue
      }
      if (!isPublicSource(source)) throw new Error(`unknown source "${source}"`)
      progress(`${step}: loading`)
      const snapshot = await withRetry(() => loadPublicSource(source, values.url, { timeoutMs: values.timeout ? Number(values.timeout) : undefined }), {
        onRetry: (error, attempt, delayMs) => io.err(`${source}: attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${delayMs} ms`),
      })
      progress(`${step}: applying ${snapshot.prices.length} rows (${snapshot.models} models)`)
      const now = io.now?.() ?? new Date()
      const correctFrom = values['correct-from'] ? new Date(values['correct-from']) : null
      const observedAt = correctFrom && correctFrom < now ? correctFrom : now
      const summary = await applyCatalogSnapshot(db, snapshot, { observedAt, dryRun: values['dry-run'] })
      add(summary)
      for (const r of snapshot.rejected ?? []) io.err(`${source}: rejected ${r.model}${r.field ? ` ${r.field}` : ''} = ${r.rawValue ?? '(none)'}: ${r.reason}`)
      progress('')
      io.out(
        `${source} ${snapshot.sourceVersion}: ${summary.models} models, ${summary.rowsOpened} opened, ${summary.rowsClosed} closed, ${summary.unchanged} unchanged, ${summary.held ?? 0} held, ${summary.rejected ?? 0} rejected, ${summary.skipped ?? 0} skipped`,
      )
      const corrections = summary.corrections ?? []
      if (corrections.length > 0) io.out(`${source}: ${correctionLine(corrections)}`)
    } catch (error) {
      progress('')
      total.failed.push(source)
      const kind = error instanceof SourceError ? ` (${error.kind})` : ''
      io.err(`${source} failed${kind}; the catalog is unchanged for it: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  total.conflicts = await countConflicts(db, io.now?.() ?? new Date())
  return total
}

/** Runs the CLI; resolves to the process exit code (0 ok, 1 a source failed, 2 usage). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: argv,
      options: {
        source: { type: 'string', multiple: true },
        url: { type: 'string' },
        file: { type: 'string' },
        once: { type: 'boolean', default: false },
        every: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        timeout: { type: 'string' },
        'correct-from': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values
  } catch (error) {
    io.err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  const sources = (values.source ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)
  const unknown = sources.filter((s) => s !== 'overrides' && !isPublicSource(s))
  if (sources.length === 0 || unknown.length > 0 || (values.once && values.every)) {
    io.err(`${unknown.length ? `unknown source ${unknown.join(', ')}\n` : ''}${USAGE}`)
    return 2
  }
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
  const db = io.db ?? (await openDb(io.env))
  try {
    const { rows } = await sql<{ ready: boolean }>`select to_regclass('public.price_catalog') is not null and to_regclass('public.price_change_log') is not null as ready`.execute(db)
    if (!rows[0]?.ready) {
      io.err('the database has no (current) catalog tables: start the API once against it (it runs the migrations), then sync')
      return 1
    }
    for (;;) {
      const total = await syncOnce(db, sources, values, io)
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
  } finally {
    if (!io.db) await db.destroy()
  }
}
