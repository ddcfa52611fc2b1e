import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { DataDirLockedError } from '@burnrate/catalog-sync'
import { findTenantById } from '../auth/repository.ts'
import { createTenantService } from '../auth/service.ts'
import { ConfigError, loadConfig } from '../config.ts'
import { parseDestination } from '../export/destination.ts'
import { createExportService } from '../export/service.ts'
import { openDatabase, systemClock } from '../runtime.ts'
import { DomainError } from '../shared/errors.ts'

const usage =
  'usage: export --tenant <tenant id or API key> --from <ISO date-time> --to <ISO date-time> --out <directory | s3://bucket/prefix>\n' +
  "  Writes the tenant's usage events in [from, to) and their line items as Parquet and CSV per UTC day plus\n" +
  '  manifest.json into <directory>, or uploads them under s3://bucket/prefix/ (EXPORT_S3_ENDPOINT, EXPORT_S3_REGION,\n' +
  '  EXPORT_S3_ACCESS_KEY_ID, EXPORT_S3_SECRET_ACCESS_KEY, EXPORT_S3_FORCE_PATH_STYLE as for the API).'

function fail(message: string, code = 1): never {
  console.error(message)
  process.exit(code)
}

function parseOptions() {
  try {
    // `pnpm run export -- --tenant …` may pass the `--` through: it is not an end of options here.
    const args = process.argv.slice(2)
    return parseArgs({
      args: args[0] === '--' ? args.slice(1) : args,
      options: {
        tenant: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values
  } catch (error) {
    fail(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
  }
}

/** An ISO 8601 date (2026-05-01, UTC midnight) or date-time with a zone (2026-05-01T00:00:00Z). */
function parseInstant(name: string, value: string): Date {
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)
  const date = new Date(value)
  if (!ok || Number.isNaN(date.getTime()))
    fail(
      `--${name} must be an ISO 8601 date or date-time with a zone, such as 2026-05-01 or 2026-05-01T00:00:00Z (got ${JSON.stringify(value)})`,
    )
  return date
}

async function main() {
  const values = parseOptions()
  if (values.help) {
    console.log(usage)
    return
  }
  const missing = (['tenant', 'from', 'to', 'out'] as const).filter((k) => !values[k])
  if (missing.length) fail(`missing ${missing.map((k) => `--${k}`).join(', ')}\n${usage}`)
  const from = parseInstant('from', values.from!)
  const to = parseInstant('to', values.to!)
  if (to <= from) fail('--to must be after --from')
  const config = loadConfig()
  const db = await openDatabase(config, undefined, 'export')
  try {
    const tenant =
      (await findTenantById(db, values.tenant!)) ??
      (await createTenantService({ db, clock: systemClock }).authenticateKey(values.tenant!))?.tenant
    if (!tenant) fail(`no tenant with id or API key ${JSON.stringify(values.tenant!.slice(0, 12))}`)
    const out = parseDestination(values.out!)
    const destination = out.kind === 'local' ? { kind: 'local' as const, directory: resolve(out.directory) } : out
    const manifest = await createExportService({ db, clock: systemClock, s3: config }).exportUsage(tenant.id, {
      from,
      to,
      destination,
    })
    const directory = manifest.directory
    for (const f of manifest.files) console.log(`${f.day}  ${f.rows} events  amount ${f.amount}  ${f.parquet}`)
    console.log(
      `exported ${manifest.totals.rows} events (amount ${manifest.totals.amount}, cost ${manifest.totals.cost}) and ${manifest.lineItems.totals.rows} line items (amount ${manifest.lineItems.totals.amount}) in ${manifest.files.length} day(s) to ${directory}`,
    )
  } finally {
    await db.destroy()
  }
}

main().catch((error: unknown) => {
  if (error instanceof DataDirLockedError)
    fail(
      `refused: ${error.message}. PGlite allows one process at a time: stop the API and run this again, use PostgreSQL (DATABASE_URL), or ask the running API with the GraphQL mutation exportUsage(input: { from, to }).`,
    )
  if (error instanceof DomainError) fail(`${error.field ? `--${error.field}: ` : ''}${error.message}`)
  fail(error instanceof ConfigError ? error.message : String(error instanceof Error ? (error.stack ?? error) : error))
})
