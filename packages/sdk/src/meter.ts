import { BurnrateClient, BurnrateError, type ClientOptions } from './client.ts'
import { signEvent } from './signing.ts'
import { Spool, type SpooledEvent, type SpoolOptions } from './spool.ts'
import type { RecordBatchResult, RecordResult, UsageError, UsageEvent } from './types.ts'

export interface MeterOptions {
  /** An existing client, or `url` + `apiKey` to build one. */
  client?: BurnrateClient
  url?: string
  apiKey?: string
  fetch?: ClientOptions['fetch']
  /** Per API request; default 10 s. */
  requestTimeoutMs?: number
  /** Events per recordUsageBatch call: 1-1000, default 100. A full batch is sent at once. */
  batchSize?: number
  /** A partial batch waits at most this long; default 1,000 ms. */
  flushIntervalMs?: number
  /**
   * Events held while the API is slow or down; default 10,000. When full, `record` refuses the
   * new event (returns false, counts it in `stats.dropped`, calls `onDrop`): the caller learns it
   * at the call site and can keep the event elsewhere; nothing already accepted is ever evicted.
   */
  maxQueueSize?: number
  /** Backoff after a failed send: min(maxRetryDelayMs, retryDelayMs × 2^attempt), with full jitter. Defaults 250 ms / 30 s. */
  retryDelayMs?: number
  maxRetryDelayMs?: number
  /** The tenant's signing secret: every event is signed (HMAC-SHA256 over its canonical form) before it is sent. */
  signingSecret?: string
  /** The API refused an event (REJECTED, or the whole batch was invalid). It will not be retried. */
  onRejected?: (event: UsageEvent, error: UsageError) => void
  /** `record` refused an event because the queue was full or the meter closed. */
  onDrop?: (event: UsageEvent, reason: 'queue_full' | 'closed' | 'invalid') => void
  /** A send failed and will be retried (or, for a non-retryable error, its events were rejected). */
  onError?: (error: BurnrateError) => void
  /** Injected clock for timestamps; default Date.now. */
  now?: () => number
  /**
   * Node only. Journal accepted events to `spool.dir` so that a meter started after a crash (or a
   * `close()` that timed out) delivers what was left queued. Without it (the default) nothing touches
   * the file system, and node:fs is not even loaded. See spool.ts and the SDK README for the format,
   * the durability window and compaction.
   */
  spool?: SpoolOptions
}

export interface MeterStats {
  /** Waiting to be sent, including a batch in flight. */
  queued: number
  /** Recorded by the API (RECORDED). */
  sent: number
  /** Already recorded before (DUPLICATE): a retry after a lost answer, or a replayed id. Delivered, not counted twice. */
  duplicates: number
  /** Refused by the API or by the meter's own checks; never retried. */
  rejected: number
  /** Refused by `record` because the queue was full or the meter was closed. */
  dropped: number
  /** Failed sends that were retried. */
  retries: number
  /** Batches sent (successful calls of recordUsageBatch). */
  batches: number
  lastError: string | null
  /** With a spool: events in the journal not yet delivered or rejected (what a crash now would leave for the next run). */
  spooled: number
  /** With a spool: events left by an earlier run and put back in the queue. */
  replayed: number
  /** With a spool: events left by an earlier run still on disk only, waiting for room in the queue (never dropped). */
  spoolBacklog: number
}

export interface FlushResult {
  /** True when every event accepted before the call was delivered or definitively rejected. */
  done: boolean
  /** Events still queued (the API is down or slow). */
  remaining: number
}

const MAX_INT = 2 ** 31 - 1

/** Timers and backoff run on real elapsed time, not on the injectable `now` (which only stamps events). */
const monotonic = () => performance.now()
const TOKEN_FIELDS = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'reasoningTokens'] as const

/**
 * Checks what GraphQL itself would refuse for the whole batch (a fractional or over-2³¹ token
 * count, an unparseable timestamp): one such event must never sink the 99 good ones sent with it.
 * Everything else is the API's to judge, per event.
 */
function wireProblem(event: UsageEvent): UsageError | null {
  for (const field of ['id', 'customerId', 'model'] as const) {
    if (typeof event[field] !== 'string' || event[field].length === 0)
      return { code: 'INVALID_INPUT', message: `${field} must be a non-empty string`, field }
  }
  for (const field of TOKEN_FIELDS) {
    const value = event[field]
    if (value === undefined || value === null) continue
    if (!Number.isInteger(value) || value < 0 || value > MAX_INT) {
      return {
        code: 'INVALID_INPUT',
        message: `${field} must be an integer between 0 and ${MAX_INT}, got ${String(value)}`,
        field,
      }
    }
  }
  if (event.timestamp !== undefined && Number.isNaN(new Date(event.timestamp).getTime())) {
    return {
      code: 'INVALID_INPUT',
      message: `timestamp is not a valid date: ${String(event.timestamp)}`,
      field: 'timestamp',
    }
  }
  return null
}

interface Waiter {
  /** Resolved once `settledCount` reaches this (and, if set, the spool backlog is read). */
  target: number
  backlog: boolean
  resolve: () => void
}

/**
 * Sends usage events to Burnrate in the background: batched (size and time window), retried with
 * exponential backoff on network errors, timeouts, 5xx and 429 (never on an invalid event), held
 * in a bounded queue while the API is down, flushed on `flush()` and `close()`.
 *
 * Retrying is safe because every event's id is its idempotency key: a batch whose answer was lost
 * comes back as DUPLICATE, never counted twice.
 */
export class Meter {
  private readonly client: BurnrateClient
  private readonly batchSize: number
  private readonly flushIntervalMs: number
  private readonly maxQueueSize: number
  private readonly retryDelayMs: number
  private readonly maxRetryDelayMs: number
  private readonly options: MeterOptions
  private readonly now: () => number

  /** Waiting events are queue[head…]; a moving head keeps taking a batch O(batch), not O(queue). */
  private queue: UsageEvent[] = []
  private head = 0
  /** The batch being sent, kept here (not put back in the queue) until it is delivered or rejected. */
  private pending: UsageEvent[] = []
  private timer: ReturnType<typeof setTimeout> | null = null
  /** When the armed timer fires, on `monotonic()`'s scale. */
  private timerDue = 0
  private sending = false
  private attempt = 0
  /**
   * No request before this time (`monotonic()`): set by a failed send from its backoff or the API's
   * Retry-After, cleared by a successful one. Every path to a send goes through `schedule`, which
   * never fires sooner, so a burst of `record` calls cannot turn a backoff into a request storm.
   */
  private backoffUntil = 0
  private closed = false
  /** close() has returned: a send still in flight must not re-arm the timer (the spool is closed too). */
  private stopped = false
  /** Events accepted by `record` so far, and events delivered or rejected so far: flush waits on the difference. */
  private acceptedCount = 0
  private settledCount = 0
  private waiters: Waiter[] = []
  private readonly counters: Omit<MeterStats, 'queued' | 'spooled' | 'spoolBacklog'> = {
    sent: 0,
    duplicates: 0,
    rejected: 0,
    dropped: 0,
    retries: 0,
    batches: 0,
    lastError: null,
    replayed: 0,
  }
  private readonly spool: Spool | null = null
  /** Batches go to POST /v1/usage/batch until the API answers it has no such route. */
  private httpIngest = true
  private spoolTimer: ReturnType<typeof setTimeout> | null = null

  constructor(options: MeterOptions) {
    this.options = options
    this.client =
      options.client ??
      new BurnrateClient({
        url: options.url ?? '',
        apiKey: options.apiKey ?? '',
        fetch: options.fetch,
        timeoutMs: options.requestTimeoutMs,
      })
    this.batchSize = options.batchSize ?? 100
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1 || this.batchSize > 1000)
      throw new RangeError('batchSize must be an integer from 1 to 1000')
    this.flushIntervalMs = options.flushIntervalMs ?? 1_000
    this.maxQueueSize = options.maxQueueSize ?? 10_000
    if (!Number.isInteger(this.maxQueueSize) || this.maxQueueSize < 1)
      throw new RangeError('maxQueueSize must be a positive integer')
    this.retryDelayMs = options.retryDelayMs ?? 250
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000
    this.now = options.now ?? Date.now
    if (options.spool) {
      this.spool = new Spool(options.spool)
      let recovery: ReturnType<Spool['recover']>
      try {
        recovery = this.spool.recover()
      } catch (error) {
        this.spool.close()
        throw error
      }
      if (recovery.badLines > 0) {
        // A torn last line is the one event whose write a crash interrupted; it is skipped, not fatal.
        this.counters.lastError = `spool: skipped ${recovery.badLines} unreadable journal line(s) (a write torn by a crash)`
      }
      this.refillFromSpool()
    }
  }

  /**
   * Queues one event; returns at once (no I/O). False when it was refused: queue full, meter
   * closed, or an event GraphQL would refuse — see `stats` and the `onDrop` / `onRejected` callbacks.
   */
  record(event: UsageEvent): boolean {
    if (this.closed) return this.drop(event, 'closed')
    const problem = wireProblem(event)
    if (problem) {
      this.counters.rejected += 1
      this.options.onRejected?.(event, problem)
      this.options.onDrop?.(event, 'invalid')
      return false
    }
    if (this.queuedCount() >= this.maxQueueSize) return this.drop(event, 'queue_full')
    // A copy, so a caller reusing its object cannot change an accepted event; the timestamp is fixed
    // now, so a retry an hour later still says when the call happened.
    const accepted =
      event.timestamp === undefined ? { ...event, timestamp: new Date(this.now()).toISOString() } : { ...event }
    this.queue.push(accepted)
    this.acceptedCount += 1
    if (this.spool) this.spoolAppend(accepted)
    if (this.queue.length - this.head >= this.batchSize) this.schedule(0)
    else if (this.timer === null) this.schedule(this.flushIntervalMs)
    return true
  }

  get stats(): MeterStats {
    return {
      queued: this.queuedCount(),
      ...this.counters,
      spooled: this.spool?.unacked ?? 0,
      spoolBacklog: this.spool?.backlog ?? 0,
    }
  }

  /**
   * Sends everything queued now, without waiting for the batch window, and resolves when all
   * events accepted before the call are delivered or rejected — or when `timeoutMs` passes
   * (the API is down: the events stay queued and keep being retried).
   */
  async flush(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    // Backlog events (left on disk by an earlier run) are taken into the queue as room frees up; a flush waits for them too.
    const backlog = this.spool?.backlog ?? 0
    const target = this.acceptedCount + backlog
    if (this.settledCount >= target) {
      this.spoolWrite()
      return { done: true, remaining: this.remaining() }
    }
    const reached = new Promise<void>((resolve) => this.waiters.push({ target, backlog: backlog > 0, resolve }))
    // Skip the batch window; a backoff in progress is kept (the API asked us to wait, or is down).
    this.schedule(0)
    if (options.timeoutMs === undefined) {
      await reached
      this.spoolWrite()
      return { done: true, remaining: this.remaining() }
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), options.timeoutMs)),
    )
    const outcome = await Promise.race([reached.then(() => 'done' as const), timedOut])
    clearTimeout(timer)
    this.spoolWrite()
    return { done: outcome === 'done', remaining: this.remaining() }
  }

  /**
   * Stops accepting events, flushes (default: up to 10 s) and stops the timers. Call it on
   * shutdown (SIGTERM). Events still queued after the timeout are reported in `remaining`
   * (and in `stats.queued`), not silently discarded; with a spool they stay in the journal and
   * the next meter on the same dir delivers them.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    this.closed = true
    const result = await this.flush({ timeoutMs: options.timeoutMs ?? 10_000 })
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.stopped = true
    if (this.spool) {
      if (this.spoolTimer) clearTimeout(this.spoolTimer)
      this.spoolTimer = null
      try {
        this.spool.close()
      } catch (error) {
        this.spoolFailed(error)
      }
    }
    return result
  }

  private queuedCount(): number {
    return this.queue.length - this.head + this.pending.length
  }

  /** In memory, plus what an earlier run left on disk and is not yet in memory. */
  private remaining(): number {
    return this.queuedCount() + (this.spool?.backlog ?? 0)
  }

  private spoolAppend(event: SpooledEvent) {
    try {
      this.spool!.append(event)
    } catch (error) {
      // A failing disk (full, gone) must not break the host's call: the event stays queued in memory.
      this.spoolFailed(error)
    }
    if (this.spoolTimer === null && this.spool!.hasPendingWrites) this.armSpoolTimer()
  }

  private armSpoolTimer() {
    this.spoolTimer = setTimeout(() => {
      this.spoolTimer = null
      this.spoolWrite()
    }, this.spool!.writeIntervalMs)
    this.spoolTimer.unref?.()
  }

  /** Writes the buffered journal lines (events, then acks) and compacts. */
  private spoolWrite() {
    if (!this.spool || this.spool.closed) return
    try {
      this.spool.writePending()
    } catch (error) {
      this.spoolFailed(error)
    }
  }

  private spoolFailed(error: unknown) {
    const failure = new BurnrateError(
      `spool: ${error instanceof Error ? error.message : String(error)}`,
      'SPOOL_ERROR',
      false,
    )
    this.counters.lastError = failure.message
    this.options.onError?.(failure)
  }

  /** Takes events an earlier run left on disk into the queue, up to its bound; the rest wait on disk. */
  private refillFromSpool() {
    if (!this.spool || this.spool.backlog === 0) return
    const room = this.maxQueueSize - this.queuedCount()
    if (room <= 0) return
    let events: SpooledEvent[]
    try {
      events = this.spool.takeBacklog(room)
    } catch (error) {
      this.spoolFailed(error)
      return
    }
    if (events.length === 0) return
    for (const event of events) this.queue.push(event)
    this.acceptedCount += events.length
    this.counters.replayed += events.length
    this.schedule(this.queue.length - this.head >= this.batchSize ? 0 : this.flushIntervalMs)
  }

  private drop(event: UsageEvent, reason: 'queue_full' | 'closed'): false {
    this.counters.dropped += 1
    this.options.onDrop?.(event, reason)
    return false
  }

  /**
   * Arms the send timer to fire in `delayMs`, or when the backoff ends if that is later, unless it
   * already fires sooner.
   */
  private schedule(delayMs: number) {
    if (this.stopped) return
    const now = monotonic()
    const wait = Math.max(delayMs, this.backoffUntil - now)
    const due = now + wait
    if (this.timer !== null && this.timerDue <= due) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timerDue = due
    this.timer = setTimeout(() => {
      this.timer = null
      void this.sendNext()
    }, wait)
    // Never keep the host process alive just for metering; close() is the way to flush on exit.
    this.timer.unref?.()
  }

  private async sendNext(): Promise<void> {
    if (this.sending) return
    if (this.backoffUntil > monotonic()) return this.schedule(0)
    if (this.pending.length === 0) {
      this.pending = this.queue.slice(this.head, this.head + this.batchSize)
      this.head += this.pending.length
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
    }
    if (this.pending.length === 0) return
    this.sending = true
    const batch = this.pending
    // The batch's events reach the journal before the API can see them.
    if (this.spool) this.spoolWrite()
    const secret = this.options.signingSecret
    const wire = secret
      ? batch.map((e) => ({ ...e, signature: signEvent(e as UsageEvent & { timestamp: string | Date }, secret) }))
      : batch
    let failure: BurnrateError | null = null
    try {
      const answer = await this.sendBatch(wire)
      this.counters.batches += 1
      this.settle(batch, answer.results)
      this.pending = []
      this.attempt = 0
      this.backoffUntil = 0
    } catch (error) {
      failure =
        error instanceof BurnrateError
          ? error
          : new BurnrateError(error instanceof Error ? error.message : String(error), 'CLIENT_ERROR', true)
      this.counters.lastError = failure.message
      if (failure.retryable) {
        // The batch stays pending and goes again, first: order is kept and the queue bound counted it all along.
        this.counters.retries += 1
      } else {
        this.pending = []
        const error: UsageError = { code: failure.code, message: failure.message, field: null }
        for (const event of batch) this.options.onRejected?.(event, error)
        this.counters.rejected += batch.length
        this.settledCount += batch.length
        this.spool?.ack(batch)
      }
    } finally {
      this.sending = false
    }
    if (failure) this.options.onError?.(failure)
    if (this.spool) {
      this.refillFromSpool()
      if (this.spool.hasPendingWrites && this.spoolTimer === null) this.armSpoolTimer()
    }
    this.wakeWaiters()

    if (failure?.retryable) {
      const ceiling = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(this.attempt, 20))
      this.attempt += 1
      const delay = Math.max(Math.random() * ceiling, (failure.retryAfterSeconds ?? 0) * 1000)
      this.backoffUntil = monotonic() + delay
      // A timer armed while the request was in flight (a full batch recorded meanwhile) would fire
      // before the backoff ends: re-arm it.
      if (this.timer !== null) clearTimeout(this.timer)
      this.timer = null
      this.schedule(delay)
    } else if (this.queue.length - this.head >= this.batchSize || (this.waiters.length > 0 && this.queuedCount() > 0)) {
      this.schedule(0)
    } else if (this.queuedCount() > 0) {
      this.schedule(this.flushIntervalMs)
    }
  }

  /**
   * One batch to the API: `POST /v1/usage/batch` (no GraphQL on either side), or recordUsageBatch
   * once the API has answered that it has no such route (an older API, a proxy that forwards only
   * /graphql) — then for the rest of this meter's life. The batch that met the 404 goes again at once.
   */
  private async sendBatch(wire: UsageEvent[]): Promise<RecordBatchResult> {
    if (this.httpIngest) {
      try {
        return await this.client.ingestBatch(wire)
      } catch (error) {
        if (!(error instanceof BurnrateError && error.code === 'ENDPOINT_NOT_FOUND')) throw error
        this.httpIngest = false
      }
    }
    return this.client.recordUsageBatch(wire, { lean: true })
  }

  private settle(batch: UsageEvent[], results: RecordResult[]) {
    for (const [index, event] of batch.entries()) {
      const result = results[index]
      if (result?.status === 'RECORDED') this.counters.sent += 1
      else if (result?.status === 'DUPLICATE') this.counters.duplicates += 1
      else {
        this.counters.rejected += 1
        this.options.onRejected?.(
          event,
          result?.error ?? { code: 'NO_RESULT', message: 'the API returned no result for this event', field: null },
        )
      }
    }
    this.settledCount += batch.length
    this.spool?.ack(batch)
  }

  private wakeWaiters() {
    if (this.waiters.length === 0) return
    const still: Waiter[] = []
    for (const waiter of this.waiters) {
      if (this.settledCount >= waiter.target && !(waiter.backlog && (this.spool?.backlog ?? 0) > 0)) waiter.resolve()
      else still.push(waiter)
    }
    this.waiters = still
  }
}

export function createMeter(options: MeterOptions): Meter {
  return new Meter(options)
}
