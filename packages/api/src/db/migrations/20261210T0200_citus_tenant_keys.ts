import { sql, type Kysely } from 'kysely'

/**
 * Citus readiness (issue 15, docs/scaling.md): every primary key and unique constraint of tenant
 * data includes tenant_id, and every foreign key between tenant tables carries it.
 *
 * - budget_spend and webhook_attempts get a tenant_id, filled from their budget and delivery.
 * - Keys by id alone widen to (id, tenant_id). tenant_id goes last, so every existing query by id
 *   (the webhook dispatcher's claims and settles, budget and reservation updates) keeps its index.
 *   ON CONFLICT targets infer a unique index by its set of columns, so they name tenant_id too.
 * - The foreign keys between budgets, alerts, spend, webhook endpoints, events, deliveries and
 *   attempts become (x_id, tenant_id) → (id, tenant_id): a row can only point into its own tenant.
 *
 * Runs as plain DDL on PostgreSQL and PGlite alike; rows are kept (the new columns are filled
 * before they become NOT NULL, every foreign key is checked again when it is added back).
 */

/** Primary keys by id alone → the same columns and tenant_id. */
const WIDENED_PRIMARY_KEYS: readonly [table: string, constraint: string, columns: string][] = [
  ['pricing_plans', 'pricing_plans_pkey', 'id'],
  ['budgets', 'budgets_pkey', 'id'],
  ['budget_spend', 'budget_spend_pk', 'budget_id, period_start'],
  ['budget_alerts', 'budget_alerts_pkey', 'id'],
  ['budget_reservations', 'budget_reservations_pkey', 'id'],
  ['webhook_endpoints', 'webhook_endpoints_pkey', 'id'],
  ['webhook_events', 'webhook_events_pkey', 'id'],
  ['webhook_deliveries', 'webhook_deliveries_pkey', 'id'],
  ['webhook_attempts', 'webhook_attempts_pk', 'delivery_id, attempt'],
  ['usage_corrections', 'usage_corrections_pkey', 'id'],
  ['stripe_pushes', 'stripe_pushes_pkey', 'identifier'],
  ['provider_usage_revisions', 'provider_usage_revisions_pkey', 'id'],
  ['reconciliation_alerts', 'reconciliation_alerts_pkey', 'id'],
]

const WIDENED_UNIQUES: readonly [table: string, constraint: string, columns: string][] = [
  ['budget_alerts', 'budget_alerts_once', 'budget_id, period_start, kind, threshold'],
  ['webhook_deliveries', 'webhook_deliveries_once', 'endpoint_id, event_id'],
]

const FOREIGN_KEYS: readonly [table: string, constraint: string, column: string, to: string][] = [
  ['budget_spend', 'budget_spend_budget_id_fkey', 'budget_id', 'budgets'],
  ['budget_alerts', 'budget_alerts_budget_id_fkey', 'budget_id', 'budgets'],
  ['webhook_deliveries', 'webhook_deliveries_endpoint_id_fkey', 'endpoint_id', 'webhook_endpoints'],
  ['webhook_deliveries', 'webhook_deliveries_event_id_fkey', 'event_id', 'webhook_events'],
  ['webhook_attempts', 'webhook_attempts_delivery_id_fkey', 'delivery_id', 'webhook_deliveries'],
]

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table budget_spend add column tenant_id text`.execute(db)
  await sql`update budget_spend s set tenant_id = b.tenant_id from budgets b where b.id = s.budget_id`.execute(db)
  await sql`alter table budget_spend alter column tenant_id set not null`.execute(db)
  await sql`alter table webhook_attempts add column tenant_id text`.execute(db)
  await sql`update webhook_attempts a set tenant_id = d.tenant_id from webhook_deliveries d where d.id = a.delivery_id`.execute(
    db,
  )
  await sql`alter table webhook_attempts alter column tenant_id set not null`.execute(db)

  // The foreign keys depend on the keys about to widen: off first, back on by (id, tenant_id).
  for (const [table, constraint] of FOREIGN_KEYS)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}`.execute(db)
  for (const [table, constraint, columns] of WIDENED_PRIMARY_KEYS)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}, add constraint ${sql.ref(
      constraint,
    )} primary key (${sql.raw(columns)}, tenant_id)`.execute(db)
  for (const [table, constraint, columns] of WIDENED_UNIQUES)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}, add constraint ${sql.ref(
      constraint,
    )} unique (${sql.raw(columns)}, tenant_id)`.execute(db)
  for (const [table, constraint, column, to] of FOREIGN_KEYS)
    await sql`alter table ${sql.table(table)} add constraint ${sql.ref(constraint)} foreign key (${sql.ref(
      column,
    )}, tenant_id) references ${sql.table(to)} (id, tenant_id)`.execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const [table, constraint] of FOREIGN_KEYS)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}`.execute(db)
  for (const [table, constraint, columns] of WIDENED_UNIQUES)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}, add constraint ${sql.ref(
      constraint,
    )} unique (${sql.raw(columns)})`.execute(db)
  for (const [table, constraint, columns] of WIDENED_PRIMARY_KEYS)
    await sql`alter table ${sql.table(table)} drop constraint ${sql.ref(constraint)}, add constraint ${sql.ref(
      constraint,
    )} primary key (${sql.raw(columns)})`.execute(db)
  for (const [table, constraint, column, to] of FOREIGN_KEYS)
    await sql`alter table ${sql.table(table)} add constraint ${sql.ref(constraint)} foreign key (${sql.ref(
      column,
    )}) references ${sql.table(to)} (id)`.execute(db)
  await sql`alter table webhook_attempts drop column tenant_id`.execute(db)
  await sql`alter table budget_spend drop column tenant_id`.execute(db)
}
