import { sql } from 'kysely'
import type { Db, Executor } from '../db/database.ts'
import { monthEnd, partitionName, type MonthPartition } from './months.ts'

/** Serializes every process that creates, fills or drops usage_events partitions. */
const PARTITION_LOCK = sql`pg_advisory_xact_lock(hashtext('burnrate:usage_events partitions'))`

/** The monthly partitions of usage_events (the DEFAULT partition aside), oldest first. */
export async function listMonthPartitions(db: Executor): Promise<MonthPartition[]> {
  const rows = await sql<{ name: string }>`
    select c.relname as name
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = to_regclass('usage_events')
    order by c.relname`.execute(db)
  const partitions: MonthPartition[] = []
  for (const { name } of rows.rows) {
    const match = /^usage_events_p(\d{4})_(\d{2})$/.exec(name)
    if (!match) continue
    const month = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1))
    partitions.push({ name, month, end: monthEnd(month) })
  }
  return partitions
}

/**
 * Creates the partition of each month that has none, in one transaction under the partition lock.
 * Rows that landed in the DEFAULT partition for such a month (a back-dated event that met no
 * partition) move into it: the new table is filled, then attached, which takes only a SHARE UPDATE
 * EXCLUSIVE lock on usage_events (ingest goes on) and an exclusive one on the DEFAULT partition.
 * Returns the names created.
 */
export async function createMonthPartitions(db: Db, months: readonly Date[]): Promise<string[]> {
  if (months.length === 0) return []
  return db.transaction().execute(async (trx) => {
    await sql`select ${PARTITION_LOCK}`.execute(trx)
    const existing = new Set((await listMonthPartitions(trx)).map((p) => p.name))
    const created: string[] = []
    for (const month of [...months].sort((a, b) => a.getTime() - b.getTime())) {
      const name = partitionName(month)
      if (existing.has(name)) continue
      const from = sql.lit(month.toISOString())
      const to = sql.lit(monthEnd(month).toISOString())
      await sql`create table ${sql.ref(name)} (like usage_events including defaults including constraints)`.execute(trx)
      await sql`
        with moved as (delete from usage_events_default where ts >= ${from} and ts < ${to} returning *)
        insert into ${sql.ref(name)} select * from moved`.execute(trx)
      await sql`alter table usage_events attach partition ${sql.ref(name)} for values from (${from}) to (${to})`.execute(
        trx,
      )
      existing.add(name)
      created.push(name)
    }
    return created
  })
}

/** The UTC months that have rows in the DEFAULT partition. */
export async function monthsInDefault(db: Executor): Promise<Date[]> {
  const rows = await sql<{ month: Date }>`
    select distinct date_trunc('month', ts at time zone 'UTC') at time zone 'UTC' as month
    from usage_events_default`.execute(db)
  return rows.rows.map((r) => new Date(r.month))
}

/**
 * Detaches a month partition: from then on it is a plain table no insert can reach (an event
 * back-dated into that month lands in the DEFAULT partition), so what is exported from it stays
 * what is dropped. usage_events is locked first, then the partition, the order ingest takes them
 * (the parent before the partition it routes a row to), so it waits for in-flight ingest and never
 * deadlocks with it.
 */
export async function detachPartition(db: Db, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`select ${PARTITION_LOCK}`.execute(trx)
    await sql`lock table usage_events in access exclusive mode`.execute(trx)
    await sql`alter table usage_events detach partition ${sql.ref(name)}`.execute(trx)
  })
}

/** Puts a detached month partition back (an export that failed leaves nothing missing). */
export async function reattachPartition(db: Db, partition: MonthPartition): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`select ${PARTITION_LOCK}`.execute(trx)
    await sql`alter table usage_events attach partition ${sql.ref(partition.name)}
      for values from (${sql.lit(partition.month.toISOString())}) to (${sql.lit(partition.end.toISOString())})`.execute(
      trx,
    )
  })
}

/** Month partitions left detached by a retention run that stopped half-way (still named usage_events_pYYYY_MM). */
export async function listDetachedPartitions(db: Executor): Promise<string[]> {
  const rows = await sql<{ name: string }>`
    select c.relname as name from pg_class c
    where c.relname ~ '^usage_events_p[0-9]{4}_[0-9]{2}$' and c.relkind = 'r' and not c.relispartition
    order by c.relname`.execute(db)
  return rows.rows.map((r) => r.name)
}

export async function dropTable(db: Db, name: string): Promise<void> {
  await sql`drop table ${sql.ref(name)}`.execute(db)
}
