import { createWriteStream } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { once } from 'node:events'
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api'
import { Decimal } from '../money/decimal.ts'
import {
  EXPORT_COLUMN_TYPES,
  EXPORT_COLUMNS,
  LINE_ITEM_COLUMN_TYPES,
  LINE_ITEM_COLUMNS,
  lineItemsOf,
  type ExportRow,
} from './repository.ts'

/** One day's file pair and what DuckDB reads back from the Parquet file. */
export interface ManifestFile {
  day: string
  parquet: string
  csv: string
  rows: number
  amount: string
  cost: string
}

interface Totals {
  rows: number
  amount: string
  cost: string
}

export interface Manifest {
  kind: 'usage_events'
  tenantId: string | null
  from: string
  to: string
  createdAt: string
  /** Usage events, one file pair per UTC day. */
  files: ManifestFile[]
  totals: Totals
  /** The billed lines of those events (one row per line), one file pair per UTC day with events that have lines. */
  lineItems: { files: ManifestFile[]; totals: Totals }
}

/** How far a running export got: rows of usage events written so far. */
export type ExportProgress = (progress: { rows: number; days: number }) => void | Promise<void>

const NULL = '\\N'

/** A path inside a DuckDB string literal. */
const lit = (path: string) => `'${path.replaceAll("'", "''")}'`

function csvField(value: string | null): string {
  if (value === null) return NULL
  return `"${value.replaceAll('"', '""')}"`
}

/** The two datasets of an export: where each day's files go and which columns they have. */
const DATASETS = {
  usage_events: { folder: 'usage_events', file: 'events', columns: EXPORT_COLUMNS, types: EXPORT_COLUMN_TYPES },
  line_items: {
    folder: 'line_items',
    file: 'line_items',
    columns: LINE_ITEM_COLUMNS,
    types: LINE_ITEM_COLUMN_TYPES,
  },
} as const
type Dataset = (typeof DATASETS)[keyof typeof DATASETS]

const pathsOf = (dataset: Dataset, day: string) => {
  const folder = `${dataset.folder}/date=${day}`
  return { folder, csv: `${folder}/${dataset.file}.csv`, parquet: `${folder}/${dataset.file}.parquet` }
}

/** A CSV file being written, one line at a time, with back-pressure. */
async function openCsv(directory: string, dataset: Dataset, day: string) {
  const dir = join(directory, pathsOf(dataset, day).folder)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const out = createWriteStream(join(directory, pathsOf(dataset, day).csv))
  out.write(dataset.columns.join(',') + '\n')
  return {
    async write(row: Record<string, string | null>) {
      const line = dataset.columns.map((c) => csvField(row[c] ?? null)).join(',') + '\n'
      if (!out.write(line)) await once(out, 'drain')
    },
    async close() {
      out.end()
      await once(out, 'close')
    },
  }
}

/** Converts a day's CSV to Parquet with DuckDB and reads the Parquet back: what the file holds. */
async function toParquet(conn: DuckDBConnection, directory: string, dataset: Dataset, day: string) {
  const paths = pathsOf(dataset, day)
  const columns = `{${dataset.columns.map((c) => `'${c}': '${(dataset.types as Record<string, string>)[c]}'`).join(', ')}}`
  await conn.run(
    `copy (select * from read_csv(${lit(join(directory, paths.csv))}, header = true, quote = '"', escape = '"', nullstr = '\\N', columns = ${columns}))
     to ${lit(join(directory, paths.parquet))} (format parquet)`,
  )
  const back = await conn.runAndReadAll(
    `select count(*)::varchar as n, coalesce(sum(amount), 0)::varchar as amount, coalesce(sum(cost), 0)::varchar as cost
     from read_parquet(${lit(join(directory, paths.parquet))})`,
  )
  const r = back.getRowObjects()[0] as { n: string; amount: string; cost: string }
  return {
    day,
    parquet: paths.parquet,
    csv: paths.csv,
    rows: Number(r.n),
    amount: new Decimal(r.amount).toFixed(),
    cost: new Decimal(r.cost).toFixed(),
  }
}

const totalsOf = (files: ManifestFile[]): Totals => ({
  rows: files.reduce((n, f) => n + f.rows, 0),
  amount: files.reduce((s, f) => s.plus(f.amount), new Decimal(0)).toFixed(),
  cost: files.reduce((s, f) => s.plus(f.cost), new Decimal(0)).toFixed(),
})

/**
 * Writes rows (in ts order) to `<dir>/usage_events/date=YYYY-MM-DD/events.csv` and `events.parquet`
 * per UTC day, and their billed lines to `<dir>/line_items/date=YYYY-MM-DD/line_items.csv` and
 * `.parquet`, then reads every Parquet file back with DuckDB for the manifest's counts and sums
 * (what the files hold, not what was meant to be written), and writes `<dir>/manifest.json`.
 */
export async function writeDailyFiles(
  rows: AsyncIterable<ExportRow[]>,
  directory: string,
  meta: { tenantId: string | null; from: Date; to: Date; now: Date },
  onProgress?: ExportProgress,
): Promise<Manifest> {
  await mkdir(directory, { recursive: true })
  const eventDays: string[] = []
  const lineDays: string[] = []
  let current = null as {
    day: string
    events: Awaited<ReturnType<typeof openCsv>>
    lines: Awaited<ReturnType<typeof openCsv>> | null
  } | null
  const close = async () => {
    if (!current) return
    await current.events.close()
    await current.lines?.close()
    current = null
  }
  let written = 0
  for await (const page of rows) {
    for (const row of page) {
      const day = row.ts!.slice(0, 10)
      if (current?.day !== day) {
        await close()
        current = { day, events: await openCsv(directory, DATASETS.usage_events, day), lines: null }
        eventDays.push(day)
      }
      await current.events.write(row)
      const items = lineItemsOf(row)
      if (items.length > 0 && !current.lines) {
        current.lines = await openCsv(directory, DATASETS.line_items, day)
        lineDays.push(day)
      }
      for (const item of items) await current.lines!.write(item)
    }
    written += page.length
    await onProgress?.({ rows: written, days: eventDays.length })
  }
  await close()

  const duck = await DuckDBInstance.create(':memory:')
  const conn = await duck.connect()
  const files: ManifestFile[] = []
  const lineFiles: ManifestFile[] = []
  try {
    for (const day of eventDays) files.push(await toParquet(conn, directory, DATASETS.usage_events, day))
    for (const day of lineDays) lineFiles.push(await toParquet(conn, directory, DATASETS.line_items, day))
  } finally {
    conn.closeSync()
    duck.closeSync()
  }
  const manifest: Manifest = {
    kind: 'usage_events',
    tenantId: meta.tenantId,
    from: meta.from.toISOString(),
    to: meta.to.toISOString(),
    createdAt: meta.now.toISOString(),
    files,
    totals: totalsOf(files),
    lineItems: { files: lineFiles, totals: totalsOf(lineFiles) },
  }
  await writeFile(join(directory, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

/** Every file an export wrote, relative to its directory, manifest.json last (its presence means complete). */
export const filesOf = (manifest: Manifest): string[] => [
  ...manifest.files.flatMap((f) => [f.parquet, f.csv]),
  ...manifest.lineItems.files.flatMap((f) => [f.parquet, f.csv]),
  'manifest.json',
]
