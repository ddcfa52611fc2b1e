import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import { withJobId, type Logger } from '../logger.ts'
import { DomainError } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import type { Manifest } from './files.ts'
import * as repo from './repository.ts'
import type { ExportService, ServerExport, ServerTarget } from './service.ts'

type ExportJobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED'

/** An export started by startUsageExport, as its tenant sees it. */
export interface ExportJob {
  id: string
  status: ExportJobStatus
  target: ServerTarget
  from: Date
  to: Date
  /** Usage events in the range, counted when the running attempt began. */
  rowsTotal: number | null
  /** Usage events written so far by the running attempt (all of them once SUCCEEDED). */
  rowsDone: number
  attempts: number
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  /** The manifest and where the files are, once SUCCEEDED. */
  result: ServerExport | null
  /** Why it FAILED. */
  error: string | null
}

export interface ExportJobService {
  /** Validates like exportUsage (BAD_USER_INPUT before anything is stored), queues the job and wakes the worker. */
  start(tenantId: string, input: { from: Date; to: Date; target?: ServerTarget }): Promise<ExportJob>
  /** The tenant's job, or null (another tenant's id is null too). */
  get(tenantId: string, id: string): Promise<ExportJob | null>
  /** The tenant's jobs, newest first. */
  page(tenantId: string, request: { first: number | null; after: string | null }): Promise<Page<ExportJob>>
  /**
   * Fails the jobs whose process stopped after their last attempt, then claims and runs jobs until none
   * is due; resolves with how many ran. One pass at a time per process.
   */
  runOnce(): Promise<number>
  /** Polls every pollIntervalMs (and at once when a job is started) until stop(). */
  startWorker(): void
  /** Stops polling and waits for the job in flight. */
  stop(): Promise<void>
}

export const EXPORT_JOB_PAGE = { defaultFirst: 20, maxFirst: 100 } as const
const cursor = keysetCursor('exportJobs')

function toJob(row: repo.ExportJobRow): ExportJob {
  return {
    id: row.id,
    status: row.status,
    target: row.target,
    from: row.range_from,
    to: row.range_to,
    rowsTotal: row.rows_total,
    rowsDone: row.rows_done,
    attempts: row.attempts,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result:
      row.status === 'SUCCEEDED' && row.manifest && row.location
        ? { ...(row.manifest as unknown as Manifest), directory: row.location }
        : null,
    error: row.error,
  }
}

/**
 * Export jobs, durable in export_jobs and run in the background by every API process: a job is claimed
 * with FOR UPDATE SKIP LOCKED under a lease the running process keeps extending (progress, heartbeat).
 * When a process dies mid-job the lease runs out and another process (or this one, restarted) runs it
 * again from the start into a new folder, up to maxAttempts; after the last it is FAILED with the reason.
 * An export that fails by itself (S3 refused, files that do not match the ledger) is FAILED at once.
 */
export function createExportJobService({
  db,
  clock,
  logger,
  exports,
  options,
}: {
  db: Db
  clock: Clock
  logger: Logger
  exports: ExportService
  options: { pollIntervalMs: number; leaseMs: number; maxAttempts: number }
}): ExportJobService {
  let timer: NodeJS.Timeout | null = null
  let started = false
  let stopping = false
  let running: Promise<number> | null = null
  const leaseUntil = () => new Date(clock.now().getTime() + options.leaseMs)

  async function runJob(row: repo.ExportJobRow) {
    const ref = { tenantId: row.tenant_id, id: row.id, attempt: row.attempts }
    const fields = { tenantId: row.tenant_id, exportJob: row.id, attempt: row.attempts, target: row.target }
    logger.info('export job started', fields)
    // The lease outlives slow steps (DuckDB, the upload) while this process is alive.
    const heartbeat = setInterval(
      () =>
        void repo
          .touchJob(db, ref, { leaseUntil: leaseUntil() })
          .catch((error: unknown) => logger.warn('export job heartbeat failed', { ...fields, error: String(error) })),
      Math.max(50, Math.floor(options.leaseMs / 3)),
    )
    heartbeat.unref()
    try {
      const filter = { table: 'usage_events', tenantId: row.tenant_id, from: row.range_from, to: row.range_to }
      const total = await repo.totalsOf(db, filter)
      await repo.touchJob(db, ref, { rowsTotal: total.rows, rowsDone: 0, leaseUntil: leaseUntil() })
      const result = await exports.exportToServer(row.tenant_id, {
        from: row.range_from,
        to: row.range_to,
        target: row.target,
        onProgress: async ({ rows }) => {
          await repo.touchJob(db, ref, { rowsDone: rows, leaseUntil: leaseUntil() })
        },
      })
      const { directory, ...manifest } = result
      await repo.finishJob(db, ref, {
        status: 'SUCCEEDED',
        at: clock.now(),
        location: directory,
        manifest: manifest as unknown as Record<string, unknown>,
        rows: manifest.totals.rows,
      })
      logger.info('export job succeeded', { ...fields, rows: manifest.totals.rows, location: directory })
    } catch (error) {
      const message =
        error instanceof DomainError ? error.message : error instanceof Error ? error.message : String(error)
      await repo.finishJob(db, ref, { status: 'FAILED', at: clock.now(), error: message })
      logger.warn('export job failed', { ...fields, error: message })
    } finally {
      clearInterval(heartbeat)
    }
  }

  async function pass(): Promise<number> {
    for (const job of await repo.failAbandonedJobs(db, { now: clock.now(), maxAttempts: options.maxAttempts }))
      logger.warn('export job failed: its process stopped', {
        tenantId: job.tenant_id,
        exportJob: job.id,
        error: job.error,
      })
    let ran = 0
    while (!stopping) {
      const job = await repo.claimJob(db, {
        now: clock.now(),
        leaseUntil: leaseUntil(),
        maxAttempts: options.maxAttempts,
      })
      if (!job) break
      await withJobId(logger, 'export', () => runJob(job), `export:${job.id}`)
      ran += 1
    }
    return ran
  }

  const schedule = (ms: number) => {
    if (!started || stopping) return
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = null
      service
        .runOnce()
        .catch((error: unknown) =>
          logger.error('export job round failed', { error: error instanceof Error ? error.message : String(error) }),
        )
        // EXPORT_JOB_POLL_INTERVAL=0: no polling, only at start and when a job is started here.
        .finally(() => options.pollIntervalMs > 0 && schedule(options.pollIntervalMs))
    }, ms)
    timer.unref()
  }

  const service: ExportJobService = {
    async start(tenantId, { from, to, target = 'SERVER' }) {
      exports.check({ from, to, target })
      const row = await repo.insertJob(db, {
        tenantId,
        id: `exp_${randomUUID().replaceAll('-', '')}`,
        target,
        from,
        to,
        now: clock.now(),
      })
      logger.info('export job queued', { tenantId, exportJob: row.id, target })
      // Only when no round is running: a running round claims it after its current job anyway.
      if (!running) schedule(0)
      return toJob(row)
    },
    async get(tenantId, id) {
      const row = await repo.findJob(db, tenantId, id)
      return row ? toJob(row) : null
    },
    async page(tenantId, { first, after }) {
      const limit = pageSize(first, EXPORT_JOB_PAGE)
      const position = after === null ? null : cursor.decode(after)
      const rows = await repo.listJobs(db, tenantId, { limit: limit + 1, after: position })
      return pageOf(rows.map(toJob), { first: limit, after }, (j) => cursor.encode({ at: j.createdAt, id: j.id }))
    },
    runOnce() {
      running ??= pass().finally(() => (running = null))
      return running
    },
    startWorker() {
      if (started) return
      started = true
      stopping = false
      schedule(0)
    },
    async stop() {
      stopping = true
      started = false
      if (timer) clearTimeout(timer)
      timer = null
      await running?.catch(() => undefined)
    },
  }
  return service
}
