import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import type { EventError, ValidEvent } from '../usage/validation.ts'
import { addMonths, monthStart, type MonthPartition } from './months.ts'
import * as repo from './repository.ts'

export interface PartitionService {
  /** Creates the partitions of these events' months that do not exist yet (cached per process). */
  ensureFor(timestamps: readonly Date[]): Promise<string[]>
  /**
   * Creates the partitions of last month to `ahead` months from now, and of every month that has
   * rows in the DEFAULT partition (moving them out). Run at start and hourly by main.ts.
   */
  maintain(ahead?: number): Promise<string[]>
  /** The ingest pipeline's `ledger.partitions` check (before the transaction): creates the partition of a new month on demand, rejects nothing. */
  check(tenant: Tenant, events: readonly ValidEvent[]): Promise<(EventError | null)[]>
  /** Forgets the months known to exist (after retention dropped some). */
  forget(): void
  /** The month partitions, oldest first, and those a stopped retention run left detached. */
  list(): Promise<MonthPartition[]>
  listDetached(): Promise<string[]>
  /** Detach (no insert reaches it after), put back, or drop a detached month partition. */
  detach(name: string): Promise<void>
  reattach(partition: MonthPartition): Promise<void>
  dropDetached(name: string): Promise<void>
}

/**
 * usage_events partitions by month, created ahead and on demand: an event of any month (a
 * back-dated one too) meets its partition before the ingest transaction starts, so the DDL never
 * runs inside it. Should a partition be missing all the same (dropped by retention in another
 * process), the row lands in the DEFAULT partition: no insert ever fails, and `maintain` moves it.
 */
export function createPartitionService({ db, clock }: { db: Db; clock: Clock }): PartitionService {
  const known = new Set<number>()
  let loaded = false

  async function ensureFor(timestamps: readonly Date[]): Promise<string[]> {
    const months = new Map<number, Date>()
    for (const ts of timestamps) {
      const month = monthStart(ts)
      if (!known.has(month.getTime())) months.set(month.getTime(), month)
    }
    if (months.size === 0) return []
    if (!loaded) {
      for (const p of await repo.listMonthPartitions(db)) known.add(p.month.getTime())
      loaded = true
      for (const key of [...months.keys()]) if (known.has(key)) months.delete(key)
      if (months.size === 0) return []
    }
    const created = await repo.createMonthPartitions(db, [...months.values()])
    for (const key of months.keys()) known.add(key)
    return created
  }

  return {
    ensureFor,
    async maintain(ahead = 3) {
      const now = monthStart(clock.now())
      const months: Date[] = []
      for (let n = -1; n <= ahead; n++) months.push(addMonths(now, n))
      const created = await ensureFor(months)
      const stray = await repo.monthsInDefault(db)
      if (stray.length > 0) created.push(...(await repo.createMonthPartitions(db, stray)))
      for (const month of stray) known.add(month.getTime())
      return created
    },
    async check(_tenant, events) {
      await ensureFor(events.map((e) => e.timestamp))
      return events.map(() => null)
    },
    forget() {
      known.clear()
      loaded = false
    },
    list: () => repo.listMonthPartitions(db),
    listDetached: () => repo.listDetachedPartitions(db),
    detach: (name) => repo.detachPartition(db, name),
    reattach: (partition) => repo.reattachPartition(db, partition),
    async dropDetached(name) {
      if (!(await repo.listDetachedPartitions(db)).includes(name))
        throw new Error(`${name} is not a detached partition`)
      await repo.dropTable(db, name)
    },
  }
}
