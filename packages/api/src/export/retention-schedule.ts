import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import { withJobId, type Logger } from '../logger.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import * as repo from './repository.ts'
import type { RetentionReport, RetentionService } from './service.ts'

/**
 * A retention run as every tenant may see it (retentionRuns): when it ran, how it ended and which
 * months of raw events it archived and dropped. Row counts, amounts and the archive location are
 * the whole ledger's (every tenant's events in a month partition): they stay in retention_runs and
 * the logs for the operator.
 */
export interface RetentionRun {
  id: string
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED'
  keepMonths: number
  startedAt: Date
  finishedAt: Date | null
  /** Months (YYYY-MM) whose raw events were exported, verified and dropped. */
  droppedMonths: string[]
  /** Months kept because their files did not match, with why. */
  keptMonths: { month: string; reason: string }[]
  error: string | null
}

export const RETENTION_RUN_PAGE = { defaultFirst: 20, maxFirst: 100 } as const
const cursor = keysetCursor('retentionRuns')

/** usage_events_p2026_03 → 2026-03 (a name of another shape is shown as it is). */
const monthOf = (partition: string) => {
  const m = /_p(\d{4})_(\d{2})$/.exec(partition)
  return m ? `${m[1]}-${m[2]}` : partition
}

function toRetentionRun(row: repo.RetentionRunRow): RetentionRun {
  const report = (row.report ?? {}) as Partial<RetentionReport>
  return {
    id: row.id,
    status: row.status,
    keepMonths: row.keep_months,
    startedAt: new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    droppedMonths: (report.dropped ?? []).map((d) => monthOf(d.partition)).sort(),
    keptMonths: (report.kept ?? []).map((k) => ({ month: monthOf(k.partition), reason: k.reason })),
    error: row.error,
  }
}

export interface RetentionScheduler {
  /**
   * One scheduled run now: exports, verifies and drops the month partitions older than keepMonths into
   * the archive, recorded in retention_runs. Null when retention is off (no keepMonths) or another
   * process is running one.
   */
  runOnce(): Promise<{ id: string; report: RetentionReport } | null>
  /** Runs at once, then every intervalMs, until stop(). Nothing when retention is off. */
  start(): void
  stop(): Promise<void>
  /** The latest runs, newest first: status, what each dropped and kept. */
  recent(limit?: number): Promise<repo.RetentionRunRow[]>
  /** The runs newest first, as retentionRuns pages them (BAD_USER_INPUT on a bad first or after). */
  page(request: { first: number | null; after: string | null }): Promise<Page<RetentionRun>>
}

/** A run's lease: past it, a RUNNING run is taken for dead (its process stopped) and FAILED. */
const RUN_LEASE_MS = 6 * 3_600_000

/**
 * RETENTION_RAW_EVENTS_MONTHS in the API process: every RETENTION_INTERVAL, one process at a time (the
 * one-RUNNING index of retention_runs) runs retention.run, which drops a partition only once its files
 * were read back and match it. Every run is a row of retention_runs and two log lines with its jobId.
 */
export function createRetentionScheduler({
  db,
  clock,
  logger,
  retention,
  options,
}: {
  db: Db
  clock: Clock
  logger: Logger
  retention: RetentionService
  options: { keepMonths: number | undefined; archive: string; intervalMs: number }
}): RetentionScheduler {
  let timer: NodeJS.Timeout | null = null
  let stopping = false
  let running: Promise<{ id: string; report: RetentionReport } | null> | null = null

  async function run(): Promise<{ id: string; report: RetentionReport } | null> {
    const keepMonths = options.keepMonths
    if (!keepMonths) return null
    const now = clock.now()
    await repo.failAbandonedRetentionRuns(db, now)
    const id = `ret_${randomUUID().replaceAll('-', '')}`
    const begun = await repo.beginRetentionRun(db, {
      id,
      keepMonths,
      archive: options.archive,
      now,
      leaseUntil: new Date(now.getTime() + RUN_LEASE_MS),
    })
    if (!begun) {
      logger.info('retention run skipped: another process is running one')
      return null
    }
    return withJobId(
      logger,
      'retention',
      async () => {
        logger.info('retention run started', { keepMonths, archive: options.archive })
        try {
          const report = await retention.run({ keepMonths, directory: options.archive })
          await repo.endRetentionRun(db, id, {
            status: 'SUCCEEDED',
            at: clock.now(),
            report: report as unknown as Record<string, unknown>,
          })
          logger.info('retention run finished', {
            dropped: report.dropped.map((d) => d.partition),
            kept: report.kept.map((k) => k.partition),
            rows: report.dropped.reduce((n, d) => n + d.rows, 0),
          })
          return { id, report }
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error)
          await repo.endRetentionRun(db, id, { status: 'FAILED', at: clock.now(), error: message })
          logger.error('retention run failed', { error: message })
          throw error
        }
      },
      `retention:${id}`,
    )
  }

  const scheduler: RetentionScheduler = {
    runOnce() {
      running ??= run().finally(() => (running = null))
      return running
    },
    start() {
      if (!options.keepMonths || timer || stopping) return
      const tick = () => {
        timer = null
        scheduler
          .runOnce()
          .catch(() => undefined)
          .finally(() => {
            if (!stopping && options.intervalMs > 0) {
              timer = setTimeout(tick, options.intervalMs)
              timer.unref()
            }
          })
      }
      timer = setTimeout(tick, 0)
      timer.unref()
    },
    async stop() {
      stopping = true
      if (timer) clearTimeout(timer)
      timer = null
      await running?.catch(() => undefined)
    },
    recent: (limit = 10) => repo.latestRetentionRuns(db, limit),
    async page({ first, after }) {
      const limit = pageSize(first, RETENTION_RUN_PAGE)
      const position = after === null ? null : cursor.decode(after)
      const rows = await repo.latestRetentionRuns(db, limit + 1, position)
      return pageOf(rows.map(toRetentionRun), { first: limit, after }, (r) =>
        cursor.encode({ at: r.startedAt, id: r.id }),
      )
    },
  }
  return scheduler
}
