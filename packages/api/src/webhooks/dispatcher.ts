import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import { withJobId, type Logger } from '../logger.ts'
import { attemptDelivery, backoffDelay, type AttemptDeps, type ClaimedDelivery } from './attempt.ts'
import { claimDueDeliveries, deliveryTargets } from './repository.ts'

export { backoffDelay } from './attempt.ts'

export interface DispatcherOptions {
  timeoutMs: number
  /** Delay before retry n (1-based) is base × 2^(n−1), with jitter, capped at maxBackoffMs. */
  backoffBaseMs: number
  maxBackoffMs?: number
  pollIntervalMs: number
  /** Deliveries claimed per round. */
  batchSize?: number
  /** Attempts in flight at once. */
  concurrency?: number
  /** [0, 1); injectable for tests. */
  random?: () => number
  /** Call loopback and private-network addresses too (development, tests); default false (SSRF). */
  allowPrivateTargets?: boolean
}

export interface WebhookDispatcher {
  /** Claims the deliveries due now and attempts each once; resolves with how many were attempted. */
  runOnce(): Promise<number>
  start(): void
  /** Stops polling and waits for attempts in flight (each bounded by timeoutMs). */
  stop(): Promise<void>
}

/**
 * Delivers pending webhooks. Every API process runs one. A round claims due deliveries with
 * FOR UPDATE SKIP LOCKED and, in the same short transaction, bumps their attempt count and pushes
 * next_attempt_at past the attempt's timeout (a lease): so exactly one process makes attempt n,
 * and a process that dies mid-attempt only delays the delivery until the lease ends. Receivers may
 * still see an event twice (a crash after they answered): they dedupe on the event id.
 */
export function createWebhookDispatcher({
  db,
  clock,
  logger,
  fetch: doFetch = globalThis.fetch,
  options,
}: {
  db: Db
  clock: Clock
  logger: Logger
  fetch?: typeof globalThis.fetch
  options: DispatcherOptions
}): WebhookDispatcher {
  const batchSize = options.batchSize ?? 50
  const concurrency = options.concurrency ?? 8
  const maxBackoffMs = options.maxBackoffMs ?? 6 * 3600_000
  const random = options.random ?? Math.random
  const leaseMs = options.timeoutMs + 30_000
  let timer: NodeJS.Timeout | null = null
  let running: Promise<number> | null = null
  let stopping = false
  const attemptDeps: AttemptDeps = {
    db,
    clock,
    logger,
    fetch: doFetch,
    timeoutMs: options.timeoutMs,
    allowPrivateTargets: options.allowPrivateTargets ?? false,
    retryDelay: (attempt) => backoffDelay(attempt, options.backoffBaseMs, maxBackoffMs, random),
  }

  async function claim(now: Date): Promise<ClaimedDelivery[]> {
    return db.transaction().execute(async (trx) => {
      const due = await claimDueDeliveries(trx, now, batchSize, new Date(now.getTime() + leaseMs))
      if (due.length === 0) return []
      const details = await deliveryTargets(
        trx,
        due.map((d) => d.id),
      )
      const byId = new Map(details.map((d) => [d.id, d]))
      return due.map((d) => {
        const x = byId.get(d.id)!
        // The same bytes on every attempt: the id is what receivers dedupe on.
        const body = JSON.stringify({
          id: x.event_id,
          type: x.type,
          created: new Date(x.created_at).toISOString(),
          data: x.payload,
        })
        return {
          id: d.id,
          tenantId: d.tenant_id,
          attempt: d.attempts + 1,
          attemptLimit: d.attempt_limit,
          url: x.url,
          secret: x.secret,
          previousSecret: x.previous_secret,
          previousSecretExpiresAt: x.previous_secret_expires_at ? new Date(x.previous_secret_expires_at) : null,
          eventId: x.event_id,
          eventType: x.type,
          body,
        }
      })
    })
  }

  async function round(): Promise<number> {
    const claimed = await claim(clock.now())
    let next = 0
    const workers = Array.from({ length: Math.min(concurrency, claimed.length) }, async () => {
      while (next < claimed.length) {
        const c = claimed[next++]!
        await attemptDelivery(attemptDeps, c).catch((error: unknown) =>
          logger.error('webhook attempt could not be recorded', {
            delivery: c.id,
            error: error instanceof Error ? error.message : String(error),
          }),
        )
      }
    })
    await Promise.all(workers)
    return claimed.length
  }

  const dispatcher: WebhookDispatcher = {
    runOnce() {
      // One round at a time per process; a concurrent call joins the running one.
      running ??= round().finally(() => (running = null))
      return running
    },
    start() {
      if (timer || stopping) return
      const tick = async () => {
        timer = null
        let attempted = 0
        try {
          attempted = await withJobId(logger, 'webhook-dispatch', () => dispatcher.runOnce())
        } catch (error) {
          logger.error('webhook round failed', { error: error instanceof Error ? error.message : String(error) })
        }
        // A full batch means more may be due: go again at once.
        if (!stopping) timer = setTimeout(() => void tick(), attempted >= batchSize ? 0 : options.pollIntervalMs)
      }
      timer = setTimeout(() => void tick(), 0)
    },
    async stop() {
      stopping = true
      if (timer) clearTimeout(timer)
      timer = null
      await running?.catch(() => undefined)
    },
  }
  return dispatcher
}
