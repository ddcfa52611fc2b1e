import { sql, type Kysely } from 'kysely'

const DAY_OF_BUCKET = `date_trunc('day', bucket at time zone 'UTC') at time zone 'UTC'`
const FIGURES = 'events, unpriced_events, input_tokens, output_tokens, cost, amount'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // A customer's usage per UTC day and (provider, model): what a customer's usageSummary grouped by
  // model, provider and/or day reads for whole days (a month is ~30 × models rows instead of every
  // hourly rollup row: 11,488 for the 10 M-event bench's target customer). Fed by the same
  // usage_day_deltas as the other per-day rollups, by the same compactor. All three are rebuilt
  // from usage_rollups while its writers wait (SHARE mode blocks inserts and updates until this
  // migration commits); pending deltas are dropped, since usage_rollups already holds them.
  await sql`lock table usage_rollups in share mode`.execute(db)
  await db.schema
    .createTable('usage_day_customer_models')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('day', 'timestamptz', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('unpriced_events', 'bigint', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_day_customer_models_pk', ['tenant_id', 'customer_id', 'day', 'provider', 'model'])
    .execute()
  await sql`delete from usage_day_deltas`.execute(db)
  await sql`delete from usage_day_models`.execute(db)
  await sql`delete from usage_day_customers`.execute(db)
  const sums = sql.raw(
    FIGURES.split(', ')
      .map((f) => `sum(${f})`)
      .join(', '),
  )
  const figures = sql.raw(FIGURES)
  const day = sql.raw(DAY_OF_BUCKET)
  await sql`
    insert into usage_day_customer_models (tenant_id, customer_id, day, provider, model, ${figures})
    select tenant_id, customer_id, ${day}, provider, model, ${sums}
    from usage_rollups group by 1, 2, 3, 4, 5`.execute(db)
  await sql`
    insert into usage_day_models (tenant_id, day, provider, model, ${figures})
    select tenant_id, day, provider, model, ${sums} from usage_day_customer_models group by 1, 2, 3, 4`.execute(db)
  await sql`
    insert into usage_day_customers (tenant_id, day, customer_id, ${figures})
    select tenant_id, day, customer_id, ${sums} from usage_day_customer_models group by 1, 2, 3`.execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('usage_day_customer_models').execute()
}
