/** SQL of the tenant's Stripe account (stripe_accounts), its setup lock and the customers' Stripe ids. */
import { sql } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { StripeAccountRow } from '../db-types.ts'

/** Serializes the first setupStripeBilling (which sets price_id) against transactions queueing for that tenant. */
function setupLockKey(tenantId: string): string {
  return `burnrate.stripe-setup:${tenantId}`
}

/** Held until the transaction ends; shared by whatever queues for the tenant (see outbox.ts). */
export async function lockSetupShared(trx: Executor, tenantId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(hashtext(${setupLockKey(tenantId)}))`.execute(trx)
}

/** Held until the transaction ends; exclusive: the setup that stores price_id, and each backfill batch. */
export async function lockSetupExclusive(trx: Executor, tenantId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${setupLockKey(tenantId)}))`.execute(trx)
}

export function findAccount(db: Executor, tenantId: string): Promise<StripeAccountRow | undefined> {
  return db.selectFrom('stripe_accounts').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst()
}

export function updateAccount(
  db: Executor,
  tenantId: string,
  changes: Partial<Omit<StripeAccountRow, 'tenant_id'>>,
  now: Date,
): Promise<StripeAccountRow> {
  return db
    .updateTable('stripe_accounts')
    .set({ ...changes, updated_at: now })
    .where('tenant_id', '=', tenantId)
    .returningAll()
    .executeTakeFirstOrThrow()
}

export interface SealedCredentials {
  secretKeyEnc: string
  keyHint: string
  /** undefined: unchanged on an existing account (null on a new one); null: removed. */
  webhookSecretEnc: string | null | undefined
  thinWebhookSecretEnc: string | null | undefined
  currency: string
  unitsPerMajor: string
}

/** Creates the account or replaces its key (and the webhook secrets given). */
export function upsertCredentials(
  db: Executor,
  tenantId: string,
  credentials: SealedCredentials,
  now: Date,
): Promise<StripeAccountRow> {
  const { secretKeyEnc, keyHint, webhookSecretEnc, thinWebhookSecretEnc } = credentials
  return db
    .insertInto('stripe_accounts')
    .values({
      tenant_id: tenantId,
      secret_key_enc: secretKeyEnc,
      key_hint: keyHint,
      webhook_secret_enc: webhookSecretEnc ?? null,
      thin_webhook_secret_enc: thinWebhookSecretEnc ?? null,
      currency: credentials.currency,
      units_per_major: credentials.unitsPerMajor,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc.column('tenant_id').doUpdateSet({
        secret_key_enc: secretKeyEnc,
        key_hint: keyHint,
        ...(webhookSecretEnc === undefined ? {} : { webhook_secret_enc: webhookSecretEnc }),
        ...(thinWebhookSecretEnc === undefined ? {} : { thin_webhook_secret_enc: thinWebhookSecretEnc }),
        updated_at: now,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Stores the metered price (in the transaction holding the exclusive setup lock). */
export function storePrice(trx: Executor, tenantId: string, priceId: string, now: Date): Promise<StripeAccountRow> {
  return trx
    .updateTable('stripe_accounts')
    .set({ price_id: priceId, setup_at: now, updated_at: now })
    .where('tenant_id', '=', tenantId)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** What queueing needs to know of the account. */
export function queueingAccount(trx: Executor, tenantId: string) {
  return trx
    .selectFrom('stripe_accounts')
    .select(['mode', 'price_id', 'setup_at'])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
}

/** What planning pushes needs to know of the account. */
export function planningAccount(trx: Executor, tenantId: string) {
  return trx
    .selectFrom('stripe_accounts')
    .select(['event_name', 'units_per_major', 'price_id'])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
}

export function customersWithoutStripeId(db: Executor, tenantId: string) {
  return db
    .selectFrom('customers')
    .select(['id', 'name'])
    .where('tenant_id', '=', tenantId)
    .where('stripe_customer_id', 'is', null)
    .orderBy('id')
    .execute()
}

/** Links a customer to its Stripe customer unless it has one already; true when this call linked it. */
export async function linkStripeCustomer(
  db: Executor,
  tenantId: string,
  customerId: string,
  stripeCustomerId: string,
): Promise<boolean> {
  const updated = await db
    .updateTable('customers')
    .set({ stripe_customer_id: stripeCustomerId })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', customerId)
    .where('stripe_customer_id', 'is', null)
    .executeTakeFirst()
  return Number(updated.numUpdatedRows) > 0
}

export async function stripeCustomerIdOf(
  db: Executor,
  tenantId: string,
  customerId: string,
): Promise<string | null | undefined> {
  const customer = await db
    .selectFrom('customers')
    .select('stripe_customer_id')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', customerId)
    .executeTakeFirst()
  return customer?.stripe_customer_id
}

export async function customerIdOfStripeCustomer(
  db: Executor,
  tenantId: string,
  stripeCustomerId: string,
): Promise<string | undefined> {
  const customer = await db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('stripe_customer_id', '=', stripeCustomerId)
    .executeTakeFirst()
  return customer?.id
}

export async function stripeIdsOf(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[],
): Promise<Map<string, string | null>> {
  const customers = customerIds.length
    ? await db
        .selectFrom('customers')
        .select(['id', 'stripe_customer_id'])
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', [...customerIds])
        .execute()
    : []
  return new Map(customers.map((c) => [c.id, c.stripe_customer_id]))
}
