import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { SIGNATURE_HEADER, signPayload, signingSecrets } from './signing.ts'
import { privateTargetReason } from './targets.ts'

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

/** Retry n's delay: exponential, with "equal jitter" (half fixed, half random) so retries spread out. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exp / 2 + (exp / 2) * random())
}

interface Claimed {
  id: string
  attempt: number
  attemptLimit: number
  url: string
  secret: string
  /** A rotated-out secret still in its grace period signs too (until previousSecretExpiresAt). */
  previousSecret: string | null
  previousSecretExpiresAt: Date | null
  eventId: string
  eventType: string
  body: string
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
  const inFlight = new Set<AbortController>()

  async function claim(now: Date): Promise<Claimed[]> {
    return db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('webhook_deliveries')
        .select(['id', 'attempts', 'attempt_limit', 'endpoint_id', 'event_id'])
        .where('status', '=', 'PENDING')
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(batchSize)
        .forUpdate()
        .skipLocked()
        .execute()
      if (due.length === 0) return []
      const ids = due.map((d) => d.id)
      await trx
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          next_attempt_at: new Date(now.getTime() + leaseMs),
          last_attempt_at: now,
        }))
        .where('id', 'in', ids)
        .execute()
      const details = await trx
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhook_endpoints as p', 'p.id', 'd.endpoint_id')
        .innerJoin('webhook_events as e', 'e.id', 'd.event_id')
        .select([
          'd.id',
          'p.url',
          'p.secret',
          'p.previous_secret',
          'p.previous_secret_expires_at',
          'e.id as event_id',
          'e.type',
          'e.payload',
          'e.created_at',
        ])
        .where('d.id', 'in', ids)
        .execute()
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

  async function attempt(c: Claimed): Promise<void> {
    const started = clock.now()
    const t0 = performance.now()
    const controller = new AbortController()
    inFlight.add(controller)
    const timeout = setTimeout(
      () => controller.abort(new Error(`timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    )
    let statusCode: number | null = null
    let error: string | null = null
    try {
      const refused = options.allowPrivateTargets ? null : await privateTargetReason(c.url)
      if (refused) throw new Error(`refused: ${refused} (WEBHOOK_ALLOW_PRIVATE_TARGETS)`)
      const response = await doFetch(c.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Burnrate-Webhooks/1',
          [SIGNATURE_HEADER]: signPayload(signingSecrets(c, started), c.body, Math.floor(started.getTime() / 1000)),
          'Burnrate-Event-Id': c.eventId,
          'Burnrate-Event-Type': c.eventType,
          'Burnrate-Delivery-Id': c.id,
          'Burnrate-Attempt': String(c.attempt),
        },
        body: c.body,
        redirect: 'manual',
        signal: controller.signal,
      })
      statusCode = response.status
      // Drain (bounded by the same timeout) so the connection can be reused; the body is not kept.
      await response.arrayBuffer().catch(() => undefined)
      if (statusCode < 200 || statusCode >= 300) error = `HTTP ${statusCode}`
    } catch (cause) {
      const reason = controller.signal.aborted ? controller.signal.reason : cause
      const inner = reason instanceof Error && reason.cause instanceof Error ? `: ${reason.cause.message}` : ''
      error = (reason instanceof Error ? reason.message : String(reason)) + inner
    } finally {
      clearTimeout(timeout)
      inFlight.delete(controller)
    }
    const durationMs = Math.round(performance.now() - t0)
    const finishedAt = clock.now()
    const ok = error === null
    const dead = !ok && c.attempt >= c.attemptLimit
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('webhook_attempts')
        .values({
          delivery_id: c.id,
          attempt: c.attempt,
          started_at: started,
          duration_ms: durationMs,
          status_code: statusCode,
          error,
          url: c.url,
        })
        .onConflict((oc) => oc.columns(['delivery_id', 'attempt']).doNothing())
        .execute()
      await trx
        .updateTable('webhook_deliveries')
        .set({
          status: ok ? 'SUCCEEDED' : dead ? 'DEAD' : 'PENDING',
          last_status_code: statusCode,
          last_error: error,
          ...(ok ? { delivered_at: finishedAt } : {}),
          next_attempt_at:
            ok || dead
              ? finishedAt
              : new Date(finishedAt.getTime() + backoffDelay(c.attempt, options.backoffBaseMs, maxBackoffMs, random)),
        })
        // Only the holder of this attempt settles it (a stale lease holder finds attempts moved on).
        .where('id', '=', c.id)
        .where('attempts', '=', c.attempt)
        .where('status', '=', 'PENDING')
        .execute()
    })
    if (!ok) logger.warn('webhook delivery failed', { delivery: c.id, attempt: c.attempt, error, dead })
  }

  async function round(): Promise<number> {
    const claimed = await claim(clock.now())
    let next = 0
    const workers = Array.from({ length: Math.min(concurrency, claimed.length) }, async () => {
      while (next < claimed.length) {
        const c = claimed[next++]!
        await attempt(c).catch((error: unknown) =>
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
          attempted = await dispatcher.runOnce()
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
