import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { PartitionService } from '../ledger/partitions.ts'
import type { MonthPartition } from '../ledger/months.ts'
import { addMonths, monthStart } from '../ledger/months.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import { writeDailyFiles, type Manifest } from './files.ts'
import * as repo from './repository.ts'

const MAX_EXPORT_DAYS = 366

export interface ExportService {
  /** A tenant's usage events in [from, to), by UTC day, as Parquet and CSV with a manifest, in `directory`. */
  exportUsage(tenantId: string, input: { from: Date; to: Date; directory: string }): Promise<Manifest>
  /**
   * The same export into the server's export directory (EXPORT_DIR), one new folder per tenant and
   * run: `<EXPORT_DIR>/<tenantId>/<createdAt>/`. What the exportUsage mutation calls.
   */
  exportToServer(tenantId: string, input: { from: Date; to: Date }): Promise<ServerExport>
}

export interface ServerExport extends Manifest {
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

export function createExportService({
  db,
  clock,
  exportDir,
}: {
  db: Db
  clock: Clock
  /** Where exportToServer writes; absent, exportToServer refuses. */
  exportDir?: string
}): ExportService {
  const service: ExportService = {
    async exportToServer(tenantId, { from, to }) {
      if (!exportDir) throw new Error('no export directory configured (EXPORT_DIR)')
      const stamp = clock.now().toISOString().replaceAll(':', '-')
      // A run in the same millisecond gets its own folder too: never overwrite an earlier export.
      let directory = join(exportDir, tenantId, stamp)
      for (let n = 2; await exists(directory); n++) directory = join(exportDir, tenantId, `${stamp}-${n}`)
      const manifest = await service.exportUsage(tenantId, { from, to, directory })
      return { ...manifest, directory }
    },
    async exportUsage(tenantId, { from, to, directory }) {
      if (!(from instanceof Date) || Number.isNaN(from.getTime()))
        throw badInput('from is not a valid date-time', 'from')
      if (!(to instanceof Date) || Number.isNaN(to.getTime())) throw badInput('to is not a valid date-time', 'to')
      if (to <= from) throw badInput('to must be after from', 'to')
      if (to.getTime() - from.getTime() > MAX_EXPORT_DAYS * 86_400_000)
        throw badInput(`an export covers at most ${MAX_EXPORT_DAYS} days`, 'to')
      if (!directory) throw badInput('directory is required', 'directory')
      const filter = { table: 'usage_events', tenantId, from, to }
      const manifest = await writeDailyFiles(repo.readRows(db, filter), directory, {
        tenantId,
        from,
        to,
        now: clock.now(),
      })
      const expected = await repo.totalsOf(db, filter)
      if (!sameTotals(manifest.totals, expected))
        throw new Error(
          `export of ${tenantId} does not match the ledger: ${JSON.stringify({ manifest: manifest.totals, expected })}`,
        )
      return manifest
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
}: {
  db: Db
  clock: Clock
  logger: Logger
  partitions: PartitionService
}): RetentionService {
  async function exportAndDrop(partition: MonthPartition, directory: string, report: RetentionReport) {
    const filter = { table: partition.name, from: partition.month, to: partition.end }
    const expected = await repo.totalsOf(db, filter)
    // One folder per run: a month exported again (a late event recreated its partition) never overwrites an archive.
    const target = join(directory, partition.name, clock.now().toISOString().replaceAll(':', '-'))
    let manifest: Manifest
    try {
      manifest = await writeDailyFiles(repo.readRows(db, filter), target, {
        tenantId: null,
        from: partition.month,
        to: partition.end,
        now: clock.now(),
      })
    } catch (error) {
      await partitions.reattach(partition)
      report.kept.push({ partition: partition.name, reason: `export failed: ${String(error)}` })
      return
    }
    if (!sameTotals(manifest.totals, expected)) {
      await partitions.reattach(partition)
      report.kept.push({
        partition: partition.name,
        reason: `files hold ${JSON.stringify(manifest.totals)}, the partition ${JSON.stringify(expected)}`,
      })
      return
    }
    await partitions.dropDetached(partition.name)
    report.dropped.push({ partition: partition.name, rows: expected.rows, amount: expected.amount, directory: target })
    logger.info('retention dropped a usage_events partition', { partition: partition.name, rows: expected.rows })
  }

  return {
    async run({ keepMonths, directory }) {
      if (!Number.isInteger(keepMonths) || keepMonths < 1)
        throw badInput('keepMonths must be an integer >= 1', 'keepMonths')
      if (!directory) throw badInput('directory is required', 'directory')
      // Rows that met only the DEFAULT partition move into their month first, so they are retained alike.
      await partitions.maintain()
      const cutoff = addMonths(monthStart(clock.now()), -keepMonths)
      const report: RetentionReport = { dropped: [], kept: [] }
      const all = await partitions.list()
      // A run that stopped half-way left these detached: finish them first.
      for (const name of await partitions.listDetached()) {
        const match = /^usage_events_p(\d{4})_(\d{2})$/.exec(name)!
        const month = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1))
        await exportAndDrop({ name, month, end: addMonths(month, 1) }, directory, report)
      }
      for (const partition of all.filter((p) => p.end <= cutoff)) {
        await partitions.detach(partition.name)
        await exportAndDrop(partition, directory, report)
      }
      partitions.forget()
      return report
    },
  }
}
