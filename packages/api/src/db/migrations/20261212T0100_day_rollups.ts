import { sql, type Kysely } from 'kysely'

/** The UTC day of an hourly bucket, as a timestamptz at its midnight. */
const DAY_OF_BUCKET = `date_trunc('day', bucket at time zone 'UTC') at time zone 'UTC'`

/** One delta row per (tenant, day, customer, provider, model) a statement on usage_rollups moved. */
const deltaInsert = (parts: string[]) => `
    insert into usage_day_deltas (tenant_id, day, customer_id, provider, model, events, unpriced_events, cost, amount)
    select tenant_id, day, customer_id, provider, model, sum(events), sum(unpriced_events), sum(cost), sum(amount)
    from (${parts.join(' union all ')}) d
    group by tenant_id, day, customer_id, provider, model
    having sum(events) <> 0 or sum(unpriced_events) <> 0 or sum(cost) <> 0 or sum(amount) <> 0;`
const added = `select tenant_id, ${DAY_OF_BUCKET} as day, customer_id, provider, model, events, unpriced_events, cost, amount from new_rows`
const removed = `select tenant_id, ${DAY_OF_BUCKET} as day, customer_id, provider, model, -events as events, -unpriced_events as unpriced_events, -cost as cost, -amount as amount from old_rows`

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Per-day read models of usage_rollups for the console's overview and top customers: a month of a
  // tenant with 1,000 active customers is ~600k hourly rollup rows but ~1,000 (day, model) rows
  // and ~30k (day, customer) rows. Kept exact by statement triggers on usage_rollups, so every
  // writer (ingest, late pricing, re-pricing, re-rating, bulk loads) moves them alike:
  //  - each statement appends its net change per (tenant, day, customer, provider, model) to
  //    usage_day_deltas — new rows only, so concurrent writers never wait on a shared row;
  //  - a compactor (overview/compactor.ts) moves deltas into usage_day_models and
  //    usage_day_customers in its own transactions (delete … returning, then add);
  //  - readers sum the compacted rows and the deltas not yet moved in one statement (one snapshot),
  //    so a read is exact whether or not compaction has run.
  await db.schema
    .createTable('usage_day_deltas')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('day', 'timestamptz', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('unpriced_events', 'bigint', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_day_deltas_pk', ['tenant_id', 'id'])
    .execute()
  await db.schema
    .createIndex('usage_day_deltas_tenant_day')
    .on('usage_day_deltas')
    .columns(['tenant_id', 'day'])
    .execute()
  await db.schema
    .createTable('usage_day_models')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('day', 'timestamptz', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('unpriced_events', 'bigint', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_day_models_pk', ['tenant_id', 'day', 'provider', 'model'])
    .execute()
  await db.schema
    .createTable('usage_day_customers')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('day', 'timestamptz', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('unpriced_events', 'bigint', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_day_customers_pk', ['tenant_id', 'day', 'customer_id'])
    .execute()

  // What the ledger already holds, compacted; the triggers follow every later change.
  await sql`
    insert into usage_day_models (tenant_id, day, provider, model, events, unpriced_events, cost, amount)
    select tenant_id, ${sql.raw(DAY_OF_BUCKET)}, provider, model, sum(events), sum(unpriced_events), sum(cost), sum(amount)
    from usage_rollups group by 1, 2, 3, 4`.execute(db)
  await sql`
    insert into usage_day_customers (tenant_id, day, customer_id, events, unpriced_events, cost, amount)
    select tenant_id, ${sql.raw(DAY_OF_BUCKET)}, customer_id, sum(events), sum(unpriced_events), sum(cost), sum(amount)
    from usage_rollups group by 1, 2, 3`.execute(db)

  await sql
    .raw(
      `create function usage_rollups_day_deltas() returns trigger language plpgsql as $$
  begin
    if tg_op = 'INSERT' then${deltaInsert([added])}
    elsif tg_op = 'UPDATE' then${deltaInsert([added, removed])}
    else${deltaInsert([removed])}
    end if;
    return null;
  end $$`,
    )
    .execute(db)
  // An upsert (insert … on conflict do update) fires both statement triggers: inserted rows reach
  // the first, updated rows (old and new) the second.
  await sql`create trigger usage_rollups_day_insert after insert on usage_rollups
    referencing new table as new_rows for each statement execute function usage_rollups_day_deltas()`.execute(db)
  await sql`create trigger usage_rollups_day_update after update on usage_rollups
    referencing old table as old_rows new table as new_rows for each statement execute function usage_rollups_day_deltas()`.execute(
    db,
  )
  await sql`create trigger usage_rollups_day_delete after delete on usage_rollups
    referencing old table as old_rows for each statement execute function usage_rollups_day_deltas()`.execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const op of ['insert', 'update', 'delete'])
    await sql.raw(`drop trigger usage_rollups_day_${op} on usage_rollups`).execute(db)
  await sql`drop function usage_rollups_day_deltas()`.execute(db)
  for (const table of ['usage_day_customers', 'usage_day_models', 'usage_day_deltas'])
    await db.schema.dropTable(table).execute()
}
