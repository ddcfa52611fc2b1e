import { sql, type Kysely } from 'kysely'

/**
 * usage_events becomes a table partitioned by UTC month of `ts` (declarative partitioning, the
 * same on PostgreSQL and PGlite), converted in place: the rows are copied into monthly partitions
 * (plus a DEFAULT partition that catches a month nobody created yet, so no insert ever fails).
 *
 * A unique key of a partitioned table must include the partition key, so (tenant_id, id) can no
 * longer be unique there. Idempotency moves to usage_event_keys, a plain table keyed (tenant_id,
 * id) that keeps each event's ts and content hash for good — also after retention drops the raw
 * event's partition — so a replay months or years later is still a DUPLICATE.
 *
 * Columns and non-unique indexes are taken from the table as it stands (LIKE, pg_indexes), so a
 * column or index another migration added first is kept.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table usage_event_keys (
    tenant_id text not null,
    id text not null,
    ts timestamptz not null,
    content_hash text not null,
    constraint usage_event_keys_pk primary key (tenant_id, id)
  )`.execute(db)
  await sql`insert into usage_event_keys (tenant_id, id, ts, content_hash)
    select tenant_id, id, ts, content_hash from usage_events`.execute(db)

  const indexes = await secondaryIndexes(db, 'usage_events')
  await sql`alter table usage_events rename to usage_events_legacy`.execute(db)
  await sql`alter table usage_events_legacy drop constraint usage_events_pk`.execute(db)
  for (const index of indexes) await sql`drop index ${sql.ref(index.name)}`.execute(db)

  await sql`create table usage_events (like usage_events_legacy including all excluding indexes)
    partition by range (ts)`.execute(db)
  await sql`alter table usage_events add constraint usage_events_pk primary key (tenant_id, id, ts)`.execute(db)
  await sql`create table usage_events_default partition of usage_events default`.execute(db)
  const months = await sql<{ month: Date }>`
    select distinct date_trunc('month', ts at time zone 'UTC') at time zone 'UTC' as month from usage_events_legacy
    union
    select date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' + make_interval(months => m)
    from generate_series(-1, 3) as m`.execute(db)
  for (const { month } of months.rows) {
    const from = new Date(month)
    const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1))
    await sql`create table ${sql.ref(partitionName(from))} partition of usage_events
      for values from (${sql.lit(from.toISOString())}) to (${sql.lit(to.toISOString())})`.execute(db)
  }
  await sql`insert into usage_events overriding system value select * from usage_events_legacy`.execute(db)
  await sql`select setval(pg_get_serial_sequence('usage_events', 'seq'), coalesce(max(seq), 0) + 1, false)
    from usage_events`.execute(db)
  await sql`drop table usage_events_legacy`.execute(db)

  for (const index of indexes) await sql.raw(onTable(index.definition, 'usage_events')).execute(db)
  await sql`alter table usage_events add constraint usage_events_tenant_fk foreign key (tenant_id) references tenants (id)`.execute(
    db,
  )
  await sql`alter table usage_events add constraint usage_events_customer_fk
    foreign key (tenant_id, customer_id) references customers (tenant_id, id)`.execute(db)
}

/** Back to one plain table keyed (tenant_id, id). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  const indexes = await secondaryIndexes(db, 'usage_events')
  await sql`create table usage_events_flat (like usage_events including all excluding indexes)`.execute(db)
  await sql`insert into usage_events_flat overriding system value select * from usage_events`.execute(db)
  await sql`select setval(pg_get_serial_sequence('usage_events_flat', 'seq'), coalesce(max(seq), 0) + 1, false)
    from usage_events_flat`.execute(db)
  await sql`drop table usage_events cascade`.execute(db)
  await sql`alter table usage_events_flat rename to usage_events`.execute(db)
  await sql`alter table usage_events add constraint usage_events_pk primary key (tenant_id, id)`.execute(db)
  for (const index of indexes) await sql.raw(onTable(index.definition, 'usage_events')).execute(db)
  await sql`alter table usage_events add constraint usage_events_tenant_fk foreign key (tenant_id) references tenants (id)`.execute(
    db,
  )
  await sql`alter table usage_events add constraint usage_events_customer_fk
    foreign key (tenant_id, customer_id) references customers (tenant_id, id)`.execute(db)
  await sql`drop table usage_event_keys`.execute(db)
}

function partitionName(month: Date): string {
  return `usage_events_p${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`
}

/** The table's indexes other than its primary key, by name and `create index` statement. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function secondaryIndexes(db: Kysely<any>, table: string): Promise<{ name: string; definition: string }[]> {
  const rows = await sql<{ name: string; definition: string }>`
    select i.relname as name, pg_get_indexdef(i.oid) as definition
    from pg_index x
    join pg_class i on i.oid = x.indexrelid
    join pg_class t on t.oid = x.indrelid
    where t.oid = to_regclass(${table}) and not x.indisprimary
    order by i.relname`.execute(db)
  return rows.rows
}

/** An index's definition re-aimed at another table (`… ON [ONLY] [schema.]old USING …`). */
function onTable(definition: string, table: string): string {
  return definition.replace(/ ON (ONLY )?("?[\w]+"?\.)?"?\w+"? USING /, ` ON ${table} USING `)
}
