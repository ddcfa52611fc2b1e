import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { S3Client } from '@aws-sdk/client-s3'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { PartitionService } from '../ledger/partitions.ts'
import type { MonthPartition } from '../ledger/months.ts'
import { addMonths, monthStart } from '../ledger/months.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import {
  createS3Client,
  describeDestination,
  parseDestination,
  s3PrefixUsed,
  uploadFiles,
  type Destination,
  type S3Settings,
} from './destination.ts'
import { filesOf, writeDailyFiles, type ExportProgress, type Manifest } from './files.ts'
import * as repo from './repository.ts'

const MAX_EXPORT_DAYS = 366

/** Where a server-side export goes: EXPORT_DIR on the server, or the configured S3 bucket (EXPORT_S3_*). */
export type ServerTarget = 'SERVER' | 'S3'

export interface ExportService {
  /**
   * A tenant's usage events in [from, to) and their line items, by UTC day, as Parquet and CSV with a
   * manifest, in `directory` (a local folder) or `destination` (a local folder or an S3 prefix).
   */
  exportUsage(
    tenantId: string,
    input: { from: Date; to: Date; directory?: string; destination?: Destination; onProgress?: ExportProgress },
  ): Promise<ServerExport>
  /**
   * The same export into the server's export directory (EXPORT_DIR) or the configured bucket, one new
   * folder per tenant and run: `<EXPORT_DIR or s3://bucket/prefix>/<tenantId>/<createdAt>/`.
   */
  exportToServer(
    tenantId: string,
    input: { from: Date; to: Date; target?: ServerTarget; onProgress?: ExportProgress },
  ): Promise<ServerExport>
  /** Refuses (BAD_USER_INPUT) a range or target the export would refuse, before anything is written. */
  check(input: { from: Date; to: Date; target?: ServerTarget }): void
}

export interface ServerExport extends Manifest {
  /** The folder on the server, or s3://bucket/prefix/, holding the files and manifest.json. */
  directory: string
}

export interface RetentionReport {
  /** Partitions exported, verified and dropped. */
  dropped: { partition: string; rows: number; amount: string; directory: string }[]
  /** Partitions kept because the files did not match (put back in place). */
  kept: { partition: string; reason: string }[]
}

export interface RetentionService {
  /**
   * Exports, verifies and drops every month partition of usage_events that ended more than
   * `keepMonths` months before this month: its rows go to `<directory>/<partition>/`, DuckDB reads
   * the Parquet files back, and only if row count, amount and cost sums equal the partition's is it
   * dropped. Rollups, invoices and the audit trail are other tables and stay; idempotency keys stay.
   */
  run(input: { keepMonths: number; directory: string }): Promise<RetentionReport>
}

const sameTotals = (
  a: { rows: number; amount: string; cost: string },
  b: { rows: number; amount: string; cost: string },
) => a.rows === b.rows && new Decimal(a.amount).eq(b.amount) && new Decimal(a.cost).eq(b.cost)

function checkRange(from: Date, to: Date) {
  if (!(from instanceof Date) || Number.isNaN(from.getTime())) throw badInput('from is not a valid date-time', 'from')
  if (!(to instanceof Date) || Number.isNaN(to.getTime())) throw badInput('to is not a valid date-time', 'to')
  if (to <= from) throw badInput('to must be after from', 'to')
  if (to.getTime() - from.getTime() > MAX_EXPORT_DAYS * 86_400_000)
    throw badInput(`an export covers at most ${MAX_EXPORT_DAYS} days`, 'to')
}

export function createExportService({
  db,
  clock,
  exportDir,
  s3,
  s3Client,
}: {
  db: Db
  clock: Clock
  /** Where exportToServer writes; absent, exportToServer refuses. */
  exportDir?: string
  /** The S3 settings (EXPORT_S3_*): the bucket of target S3 and the client of every s3:// destination. */
  s3?: S3Settings
  /** Defaults to a client built from `s3`. */
  s3Client?: S3Client
}): ExportService {
  let client = s3Client
  const s3ClientOf = () =>
    (client ??= createS3Client(
      s3 ?? { EXPORT_S3_REGION: 'us-east-1', EXPORT_S3_PREFIX: '', EXPORT_S3_FORCE_PATH_STYLE: false },
    ))

  async function verify(tenantId: string, from: Date, to: Date, manifest: Manifest) {
    const filter = { table: 'usage_events', tenantId, from, to }
    const expected = await repo.totalsOf(db, filter)
    if (!sameTotals(manifest.totals, expected))
      throw new Error(
        `export of ${tenantId} does not match the ledger: ${JSON.stringify({ manifest: manifest.totals, expected })}`,
      )
    const lines = await repo.lineItemTotalsOf(db, filter)
    if (!sameTotals(manifest.lineItems.totals, lines))
      throw new Error(
        `line items of ${tenantId} do not match the ledger: ${JSON.stringify({ manifest: manifest.lineItems.totals, expected: lines })}`,
      )
  }

  const service: ExportService = {
    check({ from, to, target }) {
      checkRange(from, to)
      if (target === 'S3' && !s3?.EXPORT_S3_BUCKET)
        throw badInput('no S3 bucket is configured on this server (EXPORT_S3_BUCKET)', 'target')
      if ((target ?? 'SERVER') === 'SERVER' && !exportDir)
        throw badInput('no export directory is configured on this server (EXPORT_DIR)', 'target')
    },
    async exportToServer(tenantId, { from, to, target = 'SERVER', onProgress }) {
      service.check({ from, to, target })
      const stamp = clock.now().toISOString().replaceAll(':', '-')
      // A run in the same millisecond gets its own folder too: never overwrite an earlier export.
      if (target === 'S3') {
        const bucket = s3!.EXPORT_S3_BUCKET!
        const base = [s3!.EXPORT_S3_PREFIX, tenantId].filter(Boolean).join('/')
        let prefix = `${base}/${stamp}`
        for (let n = 2; await s3PrefixUsed(s3ClientOf(), bucket, prefix); n++) prefix = `${base}/${stamp}-${n}`
        return service.exportUsage(tenantId, { from, to, destination: { kind: 's3', bucket, prefix }, onProgress })
      }
      let directory = join(exportDir!, tenantId, stamp)
      for (let n = 2; await exists(directory); n++) directory = join(exportDir!, tenantId, `${stamp}-${n}`)
      return service.exportUsage(tenantId, { from, to, directory, onProgress })
    },
    async exportUsage(tenantId, { from, to, directory, destination, onProgress }) {
      checkRange(from, to)
      const target = destination ?? (directory ? ({ kind: 'local', directory } as const) : undefined)
      if (!target || (target.kind === 'local' && !target.directory))
        throw badInput('directory is required', 'directory')
      const filter = { table: 'usage_events', tenantId, from, to }
      const meta = { tenantId, from, to, now: clock.now() }
      if (target.kind === 'local') {
        const manifest = await writeDailyFiles(repo.readRows(db, filter), target.directory, meta, onProgress)
        await verify(tenantId, from, to, manifest)
        return { ...manifest, directory: target.directory }
      }
      // S3: written and checked in a local scratch folder, then uploaded (manifest last) and checked by size.
      const scratch = await mkdtemp(join(tmpdir(), 'burnrate-export-'))
      try {
        const manifest = await writeDailyFiles(repo.readRows(db, filter), scratch, meta, onProgress)
        await verify(tenantId, from, to, manifest)
        await uploadFiles(s3ClientOf(), target, scratch, filesOf(manifest))
        return { ...manifest, directory: describeDestination(target) }
      } finally {
        await rm(scratch, { recursive: true, force: true })
      }
    },
  }
  return service
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  )

export function createRetentionService({
  db,
  clock,
  logger,
  partitions,
  s3,
  s3Client,
}: {
  db: Db
  clock: Clock
  logger: Logger
  partitions: PartitionService
  /** The client settings of an s3:// archive (EXPORT_S3_*). */
  s3?: S3Settings
  s3Client?: S3Client
}): RetentionService {
  let client = s3Client
  const s3ClientOf = () =>
    (client ??= createS3Client(
      s3 ?? { EXPORT_S3_REGION: 'us-east-1', EXPORT_S3_PREFIX: '', EXPORT_S3_FORCE_PATH_STYLE: false },
    ))

  async function exportAndDrop(partition: MonthPartition, archive: Destination, report: RetentionReport) {
    const filter = { table: partition.name, from: partition.month, to: partition.end }
    const expected = await repo.totalsOf(db, filter)
    const expectedLines = await repo.lineItemTotalsOf(db, filter)
    // One folder per run: a month exported again (a late event recreated its partition) never overwrites an archive.
    const run = `${partition.name}/${clock.now().toISOString().replaceAll(':', '-')}`
    const local =
      archive.kind === 'local' ? join(archive.directory, run) : await mkdtemp(join(tmpdir(), 'burnrate-retention-'))
    const location =
      archive.kind === 'local'
        ? local
        : describeDestination({ ...archive, prefix: [archive.prefix, run].filter(Boolean).join('/') })
    try {
      let manifest: Manifest
      try {
        manifest = await writeDailyFiles(repo.readRows(db, filter), local, {
          tenantId: null,
          from: partition.month,
          to: partition.end,
          now: clock.now(),
        })
        if (
          sameTotals(manifest.totals, expected) &&
          sameTotals(manifest.lineItems.totals, expectedLines) &&
          archive.kind === 's3'
        )
          await uploadFiles(
            s3ClientOf(),
            { bucket: archive.bucket, prefix: [archive.prefix, run].filter(Boolean).join('/') },
            local,
            filesOf(manifest),
          )
      } catch (error) {
        await partitions.reattach(partition)
        report.kept.push({ partition: partition.name, reason: `export failed: ${String(error)}` })
        logger.warn('retention kept a usage_events partition: its export failed', {
          partition: partition.name,
          error: String(error),
        })
        return
      }
      if (!sameTotals(manifest.totals, expected) || !sameTotals(manifest.lineItems.totals, expectedLines)) {
        await partitions.reattach(partition)
        const reason = `files hold ${JSON.stringify({ events: manifest.totals, lineItems: manifest.lineItems.totals })}, the partition ${JSON.stringify({ events: expected, lineItems: expectedLines })}`
        report.kept.push({ partition: partition.name, reason })
        logger.warn('retention kept a usage_events partition: its files do not match', {
          partition: partition.name,
          reason,
        })
        return
      }
      await partitions.dropDetached(partition.name)
      report.dropped.push({
        partition: partition.name,
        rows: expected.rows,
        amount: expected.amount,
        directory: location,
      })
      logger.info('retention dropped a usage_events partition', {
        partition: partition.name,
        rows: expected.rows,
        amount: expected.amount,
        archive: location,
      })
    } finally {
      if (archive.kind === 's3') await rm(local, { recursive: true, force: true })
    }
  }

  return {
    async run({ keepMonths, directory }) {
      if (!Number.isInteger(keepMonths) || keepMonths < 1)
        throw badInput('keepMonths must be an integer >= 1', 'keepMonths')
      if (!directory) throw badInput('directory is required', 'directory')
      const archive = parseDestination(directory)
      // Rows that met only the DEFAULT partition move into their month first, so they are retained alike.
      await partitions.maintain()
      const cutoff = addMonths(monthStart(clock.now()), -keepMonths)
      const report: RetentionReport = { dropped: [], kept: [] }
      const all = await partitions.list()
      // A run that stopped half-way left these detached: finish them first.
      for (const name of await partitions.listDetached()) {
        const match = /^usage_events_p(\d{4})_(\d{2})$/.exec(name)!
        const month = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1))
        await exportAndDrop({ name, month, end: addMonths(month, 1) }, archive, report)
      }
      for (const partition of all.filter((p) => p.end <= cutoff)) {
        await partitions.detach(partition.name)
        await exportAndDrop(partition, archive, report)
      }
      partitions.forget()
      return report
    },
  }
}
