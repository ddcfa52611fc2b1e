/** One delivery attempt: a signed POST to the endpoint, bounded by a timeout, and its recorded outcome. */
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { insertAttempt, settleAttempt } from './repository.ts'
import { SIGNATURE_HEADER, signPayload, signingSecrets } from './signing.ts'
import { privateTargetReason } from './targets.ts'

/** A delivery claimed for attempt `attempt`: where it goes, what signs it, and the body. */
export interface ClaimedDelivery {
  id: string
  tenantId: string
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

export interface AttemptDeps {
  db: Db
  clock: Clock
  logger: Logger
  fetch: typeof globalThis.fetch
  timeoutMs: number
  allowPrivateTargets: boolean
  /** The delay before the next attempt after a failed attempt `attempt`. */
  retryDelay(attempt: number): number
}

/** Retry n's delay: exponential, with "equal jitter" (half fixed, half random) so retries spread out. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exp / 2 + (exp / 2) * random())
}

export async function attemptDelivery(deps: AttemptDeps, c: ClaimedDelivery): Promise<void> {
  const { clock, logger } = deps
  const started = clock.now()
  const t0 = performance.now()
  const controller = new AbortController()
  const timeout = setTimeout(() => controller.abort(new Error(`timed out after ${deps.timeoutMs} ms`)), deps.timeoutMs)
  let statusCode: number | null = null
  let error: string | null = null
  try {
    const refused = deps.allowPrivateTargets ? null : await privateTargetReason(c.url)
    if (refused) throw new Error(`refused: ${refused} (WEBHOOK_ALLOW_PRIVATE_TARGETS)`)
    const response = await deps.fetch(c.url, {
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
  }
  const durationMs = Math.round(performance.now() - t0)
  const finishedAt = clock.now()
  const ok = error === null
  const dead = !ok && c.attempt >= c.attemptLimit
  await deps.db.transaction().execute(async (trx) => {
    await insertAttempt(trx, {
      tenant_id: c.tenantId,
      delivery_id: c.id,
      attempt: c.attempt,
      started_at: started,
      duration_ms: durationMs,
      status_code: statusCode,
      error,
      url: c.url,
    })
    // Only the holder of this attempt settles it (a stale lease holder finds attempts moved on).
    await settleAttempt(trx, c.id, c.attempt, {
      status: ok ? 'SUCCEEDED' : dead ? 'DEAD' : 'PENDING',
      statusCode,
      error,
      deliveredAt: ok ? finishedAt : null,
      nextAttemptAt: ok || dead ? finishedAt : new Date(finishedAt.getTime() + deps.retryDelay(c.attempt)),
    })
  })
  if (!ok) logger.warn('webhook delivery failed', { delivery: c.id, attempt: c.attempt, error, dead })
}
