import { sql, type Kysely } from 'kysely'

const DAY_OF_BUCKET = `date_trunc('day', bucket at time zone 'UTC') at time zone 'UTC'`
const FIGURES = ['events', 'unpriced_events', 'input_tokens', 'output_tokens', 'cost', 'amount']

/** The trigger function of 20261212T0100, its deltas with or without the token counts. */
function deltaFunction(figures: readonly string[]): string {
  const insert = (parts: string[]) => `
    insert into usage_day_deltas (tenant_id, day, customer_id, provider, model, ${figures.join(', ')})
    select tenant_id, day, customer_id, provider, model, ${figures.map((f) => `sum(${f})`).join(', ')}
    from (${parts.join(' union all ')}) d
    group by tenant_id, day, customer_id, provider, model
    having ${figures.map((f) => `sum(${f}) <> 0`).join(' or ')};`
  const keys = `tenant_id, ${DAY_OF_BUCKET} as day, customer_id, provider, model`
  const added = `select ${keys}, ${figures.join(', ')} from new_rows`
  const removed = `select ${keys}, ${figures.map((f) => `-${f} as ${f}`).join(', ')} from old_rows`
  return `create or replace function usage_rollups_day_deltas() returns trigger language plpgsql as $$
  begin
    if tg_op = 'INSERT' then${insert([added])}
    elsif tg_op = 'UPDATE' then${insert([added, removed])}
    else${insert([removed])}
    end if;
    return null;
  end $$`
}

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // The per-day rollups carry input and output tokens too, so a customer's (or the tenant's)
  // ungrouped or day-grouped usageSummary reads whole days from them (one row per day) instead of
  // every hourly rollup row. Rebuilt from usage_rollups while its writers wait (SHARE mode blocks
  // inserts and updates until this migration commits), so nothing moves between the rebuild and
  // the new trigger function.
  await sql`lock table usage_rollups in share mode`.execute(db)
  for (const table of ['usage_day_deltas', 'usage_day_models', 'usage_day_customers'])
    await db.schema
      .alterTable(table)
      .addColumn('input_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('output_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
  // A customer's days are one index range: (tenant, customer, day). Top customers over a range
  // read by (tenant, day) on their own index (written by the compactor only, never by ingest).
  await sql`alter table usage_day_customers drop constraint usage_day_customers_pk`.execute(db)
  await sql`alter table usage_day_customers add constraint usage_day_customers_pk primary key (tenant_id, customer_id, day)`.execute(
    db,
  )
  await db.schema
    .createIndex('usage_day_customers_tenant_day')
    .on('usage_day_customers')
    .columns(['tenant_id', 'day'])
    .execute()
  await db.schema
    .createIndex('usage_day_deltas_tenant_customer_day')
    .on('usage_day_deltas')
    .columns(['tenant_id', 'customer_id', 'day'])
    .execute()
  await sql`delete from usage_day_deltas`.execute(db)
  await sql`delete from usage_day_models`.execute(db)
  await sql`delete from usage_day_customers`.execute(db)
  const sums = sql.raw(FIGURES.map((f) => `sum(${f})`).join(', '))
  await sql`
    insert into usage_day_models (tenant_id, day, provider, model, ${sql.raw(FIGURES.join(', '))})
    select tenant_id, ${sql.raw(DAY_OF_BUCKET)}, provider, model, ${sums}
    from usage_rollups group by 1, 2, 3, 4`.execute(db)
  await sql`
    insert into usage_day_customers (tenant_id, day, customer_id, ${sql.raw(FIGURES.join(', '))})
    select tenant_id, ${sql.raw(DAY_OF_BUCKET)}, customer_id, ${sums}
    from usage_rollups group by 1, 2, 3`.execute(db)
  await sql.raw(deltaFunction(FIGURES)).execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(deltaFunction(FIGURES.filter((f) => !f.endsWith('_tokens')))).execute(db)
  await db.schema.dropIndex('usage_day_deltas_tenant_customer_day').execute()
  await db.schema.dropIndex('usage_day_customers_tenant_day').execute()
  await sql`alter table usage_day_customers drop constraint usage_day_customers_pk`.execute(db)
  await sql`alter table usage_day_customers add constraint usage_day_customers_pk primary key (tenant_id, day, customer_id)`.execute(
    db,
  )
  for (const table of ['usage_day_deltas', 'usage_day_models', 'usage_day_customers'])
    await db.schema.alterTable(table).dropColumn('input_tokens').dropColumn('output_tokens').execute()
}
