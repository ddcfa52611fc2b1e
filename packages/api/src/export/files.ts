import { createWriteStream } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { once } from 'node:events'
import { DuckDBInstance } from '@duckdb/node-api'
import { Decimal } from '../money/decimal.ts'
import { EXPORT_COLUMN_TYPES, EXPORT_COLUMNS, type ExportRow } from './repository.ts'

/** One day's file pair and what DuckDB reads back from the Parquet file. */
export interface ManifestFile {
  day: string
  parquet: string
  csv: string
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
  files: ManifestFile[]
  totals: { rows: number; amount: string; cost: string }
}

const NULL = '\\N'

/** A path inside a DuckDB string literal. */
const lit = (path: string) => `'${path.replaceAll("'", "''")}'`

function csvField(value: string | null): string {
  if (value === null) return NULL
  return `"${value.replaceAll('"', '""')}"`
}

/**
 * Writes rows (in ts order) to `<dir>/usage_events/date=YYYY-MM-DD/events.csv` and `events.parquet`
 * per UTC day, then reads every Parquet file back with DuckDB for the manifest's counts and sums
 * (what the files hold, not what was meant to be written), and writes `<dir>/manifest.json`.
 */
export async function writeDailyFiles(
  rows: AsyncIterable<ExportRow[]>,
  directory: string,
  meta: { tenantId: string | null; from: Date; to: Date; now: Date },
): Promise<Manifest> {
  await mkdir(directory, { recursive: true })
  const days: string[] = []
  let current = null as { day: string; out: ReturnType<typeof createWriteStream> } | null
  const close = async () => {
    if (!current) return
    current.out.end()
    await once(current.out, 'close')
    current = null
  }
  for await (const page of rows) {
    for (const row of page) {
      const day = row.ts!.slice(0, 10)
      if (current?.day !== day) {
        await close()
        const dir = join(directory, 'usage_events', `date=${day}`)
        await rm(dir, { recursive: true, force: true })
        await mkdir(dir, { recursive: true })
        const out = createWriteStream(join(dir, 'events.csv'))
        out.write(EXPORT_COLUMNS.join(',') + '\n')
        current = { day, out }
        days.push(day)
      }
      const line = EXPORT_COLUMNS.map((c) => csvField(row[c])).join(',') + '\n'
      if (!current.out.write(line)) await once(current.out, 'drain')
    }
  }
  await close()

  const duck = await DuckDBInstance.create(':memory:')
  const conn = await duck.connect()
  const files: ManifestFile[] = []
  try {
    const columns = `{${EXPORT_COLUMNS.map((c) => `'${c}': '${EXPORT_COLUMN_TYPES[c]}'`).join(', ')}}`
    for (const day of days) {
      const dir = join(directory, 'usage_events', `date=${day}`)
      const csv = join(dir, 'events.csv')
      const parquet = join(dir, 'events.parquet')
      await conn.run(
        `copy (select * from read_csv(${lit(csv)}, header = true, quote = '"', escape = '"', nullstr = '\\N', columns = ${columns}))
         to ${lit(parquet)} (format parquet)`,
      )
      const back = await conn.runAndReadAll(
        `select count(*)::varchar as n, coalesce(sum(amount), 0)::varchar as amount, coalesce(sum(cost), 0)::varchar as cost
         from read_parquet(${lit(parquet)})`,
      )
      const r = back.getRowObjects()[0] as { n: string; amount: string; cost: string }
      files.push({
        day,
        parquet: `usage_events/date=${day}/events.parquet`,
        csv: `usage_events/date=${day}/events.csv`,
        rows: Number(r.n),
        amount: new Decimal(r.amount).toFixed(),
        cost: new Decimal(r.cost).toFixed(),
      })
    }
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
    totals: {
      rows: files.reduce((n, f) => n + f.rows, 0),
      amount: files.reduce((s, f) => s.plus(f.amount), new Decimal(0)).toFixed(),
      cost: files.reduce((s, f) => s.plus(f.cost), new Decimal(0)).toFixed(),
    },
  }
  await writeFile(join(directory, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}
