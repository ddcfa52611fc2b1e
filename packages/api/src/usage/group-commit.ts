import type { Tenant } from '../db/types.ts'
import type { RecordResult, UsageService } from './service.ts'
import type { UsageEventInput } from './validation.ts'

/**
 * Group commit for single events (recordUsage, the gateway): concurrent calls of one tenant are
 * coalesced for at most `maxWaitMs` (or until `maxBatch` wait; with nothing in flight, only the
 * calls of the same event-loop turn, so a lone call pays no window) into one call of the batch
 * pipeline (`UsageService.record`), so a group shares one catalog-version read, one plans read
 * and one transaction. Each caller gets its own result, and only after the group's transaction
 * committed: the answer still means "durable".
 *
 * Guarantees kept (test/usage/group-commit.test.ts, on both engines):
 * - one result per caller, its own (the pipeline returns one result per input, in input order);
 * - two calls with the same event id never share a group: the later one waits for the next group,
 *   so it is judged against the stored first one exactly as if it had come after it (DUPLICATE,
 *   or IDEMPOTENCY_CONFLICT), never as "a repeat of a rejected event of this batch";
 * - a rejected event is a result, not an error, and never touches the others; if the pipeline
 *   throws for a group of several (a hook, the database), every caller of that group is retried
 *   alone, so one caller's failure never fails another's (a retry is idempotent by event id);
 * - at most `maxInFlight` groups run at once; while all slots are busy, callers keep joining the
 *   waiting groups (up to `maxBatch`), which is what makes groups grow under load.
 */
export interface GroupCommitOptions {
  /**
   * How long the first caller of a group waits for others while another group is in flight or
   * waiting (an idle pipeline sends at the end of the event-loop turn); 0 turns group commit off.
   */
  maxWaitMs: number
  /** A group is sent as soon as this many callers wait in it. */
  maxBatch: number
  /** Groups sent to the pipeline at the same time (across tenants). */
  maxInFlight: number
}

export interface SingleIngest {
  /** Records one event through group commit; resolves once it is durable (or rejected). */
  recordOne(tenant: Tenant, input: UsageEventInput): Promise<RecordResult>
  /** Sends every waiting group now and resolves when all groups in flight have finished. */
  drain(): Promise<void>
}

export type GroupCommittedUsage = UsageService & SingleIngest

interface Waiter {
  input: UsageEventInput
  resolve: (result: RecordResult) => void
  reject: (error: unknown) => void
}

interface Group {
  key: string
  tenant: Tenant
  waiters: Waiter[]
  /** Stops the group's wait (it is being sent sooner); null once the wait is over. */
  cancelWait: (() => void) | null
  /** The wait is over: send as soon as a slot is free. */
  due: boolean
}

const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxWaitMs: 1, maxBatch: 256, maxInFlight: 4 }

export function withGroupCommit(
  usage: UsageService,
  options: GroupCommitOptions = DEFAULT_GROUP_COMMIT,
): GroupCommittedUsage {
  const { maxWaitMs, maxBatch, maxInFlight } = options
  // Callers whose tenant row is the same (every field) share groups; a changed setting (signing
  // secret, currency, …) starts new groups, so each event is judged with the tenant it came with.
  const keys = new WeakMap<Tenant, string>()
  const keyOf = (tenant: Tenant) => {
    let key = keys.get(tenant)
    if (key === undefined) {
      key = JSON.stringify(tenant)
      keys.set(tenant, key)
    }
    return key
  }
  /** Waiting groups in arrival order of their first caller. */
  const waiting: Group[] = []
  const inFlight = new Set<Promise<void>>()

  const idOf = (input: UsageEventInput) => (typeof input?.id === 'string' ? input.id : null)

  function pump() {
    while (inFlight.size < maxInFlight) {
      const group = waiting.find((g) => g.due || g.waiters.length >= maxBatch)
      if (!group) return
      send(group)
    }
  }

  function send(group: Group) {
    waiting.splice(waiting.indexOf(group), 1)
    group.cancelWait?.()
    // Callers repeating an event id already in this group wait for the next one.
    const ids = new Set<string>()
    const batch: Waiter[] = []
    const later: Waiter[] = []
    for (const waiter of group.waiters) {
      const id = idOf(waiter.input)
      if (id !== null && ids.has(id)) {
        later.push(waiter)
        continue
      }
      if (id !== null) ids.add(id)
      batch.push(waiter)
    }
    const run = commit(group.tenant, batch).finally(() => {
      inFlight.delete(run)
      if (later.length > 0) {
        const next = groupFor(group.tenant)
        next.waiters.unshift(...later)
        next.due = true
      }
      pump()
    })
    inFlight.add(run)
  }

  async function commit(tenant: Tenant, batch: Waiter[]): Promise<void> {
    let results: RecordResult[]
    try {
      results = await usage.record(
        tenant,
        batch.map((w) => w.input),
      )
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error)
        return
      }
      // Isolate: each caller alone, so only the one whose event fails sees the error.
      await Promise.all(batch.map((w) => commit(tenant, [w])))
      return
    }
    for (const [i, waiter] of batch.entries()) {
      const result = results[i]
      if (result) waiter.resolve(result)
      else waiter.reject(new Error('ingest returned no result for an event'))
    }
  }

  function groupFor(tenant: Tenant): Group {
    const key = keyOf(tenant)
    let group = waiting.find((g) => g.key === key && g.waiters.length < maxBatch)
    if (!group) {
      // Nothing in flight and nothing waiting: no one is about to join, so a lone call does not pay
      // the window; it waits only for the callers of this event-loop turn (a burst arrives together).
      // Under load there is always a group in flight, and the window is what lets groups grow.
      const idle = inFlight.size === 0 && waiting.length === 0
      group = { key, tenant, waiters: [], cancelWait: null, due: false }
      const created = group
      const over = () => {
        created.cancelWait = null
        created.due = true
        pump()
      }
      if (idle) {
        const immediate = setImmediate(over)
        created.cancelWait = () => clearImmediate(immediate)
      } else {
        const timer = setTimeout(over, maxWaitMs)
        created.cancelWait = () => clearTimeout(timer)
      }
      waiting.push(created)
    }
    return group
  }

  return {
    ...usage,
    record: (tenant, inputs) => usage.record(tenant, inputs),
    async recordOne(tenant, input) {
      if (maxWaitMs <= 0 || maxBatch <= 1) {
        const [result] = await usage.record(tenant, [input])
        return result!
      }
      return new Promise<RecordResult>((resolve, reject) => {
        const group = groupFor(tenant)
        group.waiters.push({ input, resolve, reject })
        if (group.waiters.length >= maxBatch) pump()
      })
    },
    async drain() {
      while (waiting.length > 0 || inFlight.size > 0) {
        for (const group of waiting) group.due = true
        pump()
        if (inFlight.size > 0) await Promise.race(inFlight)
      }
    },
  }
}
