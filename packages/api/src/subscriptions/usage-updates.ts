import type { BurnratePubSub } from '../pubsub.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'

/**
 * Tells subscribers (the spend widget) that a customer's billed usage changed, after the change
 * commits: new events from ingest, and old ones priced late or corrected. Changes are coalesced
 * per customer over `windowMs`, so a customer making hundreds of calls a second costs one event
 * per window, not one per call; the first change of a quiet customer is published after at most
 * `windowMs`.
 */
export interface UsageUpdates {
  /** Ingest step `subscriptions.usageUpdates` (usage/pipeline.ts), after commit. */
  afterIngest(batch: Pick<IngestBatch, 'tenant' | 'inserted'>): void
  /** Billed-change step `subscriptions.usageUpdates`, after commit. */
  afterChanges(batch: Pick<BilledChangeBatch, 'tenantId' | 'changes'>): void
  /** Publishes what is pending now (tests, shutdown). */
  flush(): void
}

export function createUsageUpdates({
  pubsub,
  windowMs,
  now = () => new Date(),
}: {
  pubsub: BurnratePubSub
  windowMs: number
  now?: () => Date
}): UsageUpdates {
  // tenant id → customer id → events changed in the window
  let pending = new Map<string, Map<string, number>>()
  let timer: ReturnType<typeof setTimeout> | null = null

  function flush(): void {
    if (timer) clearTimeout(timer)
    timer = null
    const batch = pending
    pending = new Map()
    const at = now().toISOString()
    for (const [tenantId, customers] of batch) {
      for (const [customerId, events] of customers)
        pubsub.publish('usageUpdate', tenantId, { tenantId, customerId, events, at })
    }
  }

  function touch(tenantId: string, customerIds: Iterable<string>): void {
    let customers = pending.get(tenantId)
    if (!customers) pending.set(tenantId, (customers = new Map()))
    for (const id of customerIds) customers.set(id, (customers.get(id) ?? 0) + 1)
    if (windowMs <= 0) return flush()
    if (!timer) {
      timer = setTimeout(flush, windowMs)
      // A pending notification never keeps the process alive.
      timer.unref?.()
    }
  }

  return {
    afterIngest({ tenant, inserted }) {
      touch(
        tenant.id,
        inserted.map((e) => e.customer_id),
      )
    },
    afterChanges({ tenantId, changes }) {
      touch(
        tenantId,
        changes.map((c) => c.customerId),
      )
    },
    flush,
  }
}
