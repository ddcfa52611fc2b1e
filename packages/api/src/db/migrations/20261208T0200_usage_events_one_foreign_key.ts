import { sql, type Kysely } from 'kysely'

/**
 * Ingest throughput (issue 14): usage_events keeps one foreign key instead of two.
 *
 * Every inserted event fired two referential-integrity triggers, each a lookup with a row lock:
 * `usage_events_tenant_fk` (tenant_id → tenants) and `usage_events_customer_fk` ((tenant_id,
 * customer_id) → customers). The first is implied by the second, since customers.tenant_id itself
 * references tenants: an event's tenant exists whenever its customer does, and neither can be
 * deleted while it has events (the customer through this key, the tenant through customers'). So
 * the tenant key is dropped; the guarantee is unchanged and each event costs one trigger less.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_events drop constraint if exists usage_events_tenant_fk`.execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_events add constraint usage_events_tenant_fk foreign key (tenant_id) references tenants (id)`.execute(
    db,
  )
}
