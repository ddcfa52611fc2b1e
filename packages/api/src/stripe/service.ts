import { sql } from 'kysely'
import Stripe from 'stripe'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { badInput, type DomainError } from '../shared/errors.ts'
import type { Logger } from '../logger.ts'
import type { StripeClientFactory } from './client.ts'
import { createSecretBox, keyHint, parseStripeKey, type SecretBox } from './crypto.ts'
import { backfillOutbox, defaultBackfillFrom, type BackfillResult } from './backfill.ts'
import type { StripeAccountRow, StripeReportingMode } from './db-types.ts'
import { setupLockKey } from './outbox.ts'
import { stableHash, UNIT_AMOUNT_DECIMAL, unitsPerMajor } from './units.ts'

export interface StripeSetupResult {
  account: StripeAccountRow
  createdCustomers: number
  /** What this call's backfill queued from the ledger (nothing that was already queued). */
  backfill: BackfillResult & { from: Date }
}

export interface StripeService {
  /** Null when STRIPE_ENCRYPTION_KEY is not set: keys cannot be stored. */
  readonly box: SecretBox | null
  /** Attempt limit of the tenant webhook deliveries Stripe alerts enqueue (WEBHOOK_MAX_ATTEMPTS). */
  readonly alertAttempts: number
  account(tenantId: string): Promise<StripeAccountRow | undefined>
  setCredentials(
    tenant: Tenant,
    input: {
      secretKey: string
      webhookSecret?: string | null | undefined
      thinWebhookSecret?: string | null | undefined
    },
  ): Promise<StripeAccountRow>
  /**
   * Creates (idempotently) the meter, product and price, then queues the tenant's usage from
   * `backfillFrom` (default: the start of Stripe's 35-day window) that is not queued yet.
   */
  setup(
    tenant: Tenant,
    input: {
      mode?: StripeReportingMode | null | undefined
      createCustomers?: boolean | null | undefined
      backfillFrom?: Date | null | undefined
    },
  ): Promise<StripeSetupResult>
  /** A client for the tenant's own Stripe account, or null when it has no key. */
  clientFor(tenantId: string): Promise<{ client: Stripe; account: StripeAccountRow } | null>
  /** The signing secrets of the tenant's snapshot and thin destinations, those that are set. */
  webhookSecrets(tenantId: string): Promise<string[]>
}

const SECRET_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9_]{8,255}$/
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/=_-]{8,255}$/

/**
 * Stripe refusing the tenant's key or request is the tenant's to fix, so it answers as user input
 * (naming the stored secretKey when Stripe rejects the key); network failures and Stripe outages stay
 * unexpected errors.
 */
export function stripeRefusal(error: unknown): DomainError | null {
  if (!(error instanceof Stripe.errors.StripeError)) return null
  if (error.statusCode === 401 || error.type === 'StripeAuthenticationError') {
    return badInput(
      `Stripe refused the stored secret key (${error.message}); store a valid one with setStripeCredentials`,
      'secretKey',
    )
  }
  if (error.statusCode === 403 || error.type === 'StripePermissionError') {
    return badInput(
      `The stored Stripe key may not do this (${error.message}); give it Billing write access or store another key`,
      'secretKey',
    )
  }
  if (error.statusCode === 400 || error.statusCode === 404)
    return badInput(`Stripe refused the request: ${error.message}`)
  return null
}

export function createStripeService({
  db,
  clock,
  config,
  logger,
  stripeClient,
}: {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  stripeClient: StripeClientFactory
}): StripeService {
  const box = config.STRIPE_ENCRYPTION_KEY ? createSecretBox(parseStripeKey(config.STRIPE_ENCRYPTION_KEY)) : null
  const requireBox = () => {
    if (!box)
      throw badInput(
        'Stripe is not enabled on this server: set STRIPE_ENCRYPTION_KEY (32 bytes, hex or base64) to store Stripe keys',
      )
    return box
  }
  const find = (tenantId: string) =>
    db.selectFrom('stripe_accounts').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst()
  const save = (tenantId: string, changes: Partial<Omit<StripeAccountRow, 'tenant_id'>>) =>
    db
      .updateTable('stripe_accounts')
      .set({ ...changes, updated_at: clock.now() })
      .where('tenant_id', '=', tenantId)
      .returningAll()
      .executeTakeFirstOrThrow()

  const service: StripeService = {
    box,
    alertAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    account: find,

    async setCredentials(tenant, input) {
      const sealer = requireBox()
      const secretKey = input.secretKey.trim()
      if (!SECRET_KEY.test(secretKey))
        throw badInput(
          'secretKey must be a Stripe secret or restricted key (sk_live_…, sk_test_…, rk_…)',
          'input.secretKey',
        )
      for (const field of ['webhookSecret', 'thinWebhookSecret'] as const) {
        const value = input[field]
        if (value && !WEBHOOK_SECRET.test(value.trim()))
          throw badInput(`${field} must be a Stripe webhook signing secret (whsec_…)`, `input.${field}`)
      }
      const sealedKey = sealer.seal(secretKey, tenant.id)
      const sealedWebhook = input.webhookSecret ? sealer.seal(input.webhookSecret.trim(), tenant.id) : undefined
      const sealedThin = input.thinWebhookSecret ? sealer.seal(input.thinWebhookSecret.trim(), tenant.id) : undefined
      const currency = tenant.currency.toLowerCase()
      return db
        .insertInto('stripe_accounts')
        .values({
          tenant_id: tenant.id,
          secret_key_enc: sealedKey,
          key_hint: keyHint(secretKey),
          webhook_secret_enc: sealedWebhook ?? null,
          thin_webhook_secret_enc: sealedThin ?? null,
          currency,
          units_per_major: unitsPerMajor(currency),
        })
        .onConflict((oc) =>
          oc.column('tenant_id').doUpdateSet({
            secret_key_enc: sealedKey,
            key_hint: keyHint(secretKey),
            ...(input.webhookSecret === undefined ? {} : { webhook_secret_enc: sealedWebhook ?? null }),
            ...(input.thinWebhookSecret === undefined ? {} : { thin_webhook_secret_enc: sealedThin ?? null }),
            updated_at: clock.now(),
          }),
        )
        .returningAll()
        .executeTakeFirstOrThrow()
    },

    async clientFor(tenantId) {
      const account = await find(tenantId)
      if (!account || !box) return null
      return { client: stripeClient(box.open(account.secret_key_enc, tenantId)), account }
    },

    async webhookSecrets(tenantId) {
      const account = await find(tenantId)
      if (!account || !box) return []
      return [account.webhook_secret_enc, account.thin_webhook_secret_enc]
        .filter((s): s is string => s !== null)
        .map((s) => box.open(s, tenantId))
    },

    async setup(tenant, input) {
      requireBox()
      const backfillFrom = input.backfillFrom ?? defaultBackfillFrom(clock.now())
      if (backfillFrom > clock.now()) throw badInput('backfillFrom must not be in the future', 'input.backfillFrom')
      const found = await service.clientFor(tenant.id)
      if (!found) throw badInput('Store a Stripe secret key first (setStripeCredentials)')
      const { client } = found
      let account = found.account
      const mode = input.mode ?? account.mode
      if (account.meter_id && mode !== account.mode) {
        throw badInput(
          `This tenant already reports to Stripe in ${account.mode} mode; the mode cannot change once its meter exists`,
          'input.mode',
        )
      }
      // Deterministic names and idempotency keys: a retry after a crash (within Stripe's 24 h
      // idempotency window) gets the same objects back; the stored ids cover any later re-run.
      const scope = stableHash(tenant.id)
      const eventName = account.event_name ?? `burnrate_${mode.toLowerCase()}_${scope}`
      try {
        if (!account.meter_id) {
          const existing = (await client.billing.meters.list({ status: 'active', limit: 100 })).data.find(
            (m) => m.event_name === eventName,
          )
          const meter =
            existing ??
            (await client.billing.meters.create(
              {
                display_name:
                  mode === 'AMOUNT' ? 'Burnrate billed usage' : 'Burnrate billed usage by model and token type',
                event_name: eventName,
                default_aggregation: { formula: 'sum' },
                customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
                value_settings: { event_payload_key: 'value' },
                // Meter dimensions (Stripe's dimension_payload_keys) carry the mix in ITEMIZED mode.
                ...(mode === 'ITEMIZED'
                  ? ({ dimension_payload_keys: ['model', 'token_type'] } as Record<string, unknown>)
                  : {}),
              },
              { idempotencyKey: `burnrate-${scope}-meter-${eventName}` },
            ))
          // Mode and event name are stored with the meter they describe: a key Stripe refuses leaves the account as it was.
          account = await save(tenant.id, { mode, event_name: eventName, meter_id: meter.id })
        }
        if (!account.product_id) {
          const product = await client.products.create(
            { name: 'AI usage', metadata: { burnrate_tenant_id: tenant.id } },
            { idempotencyKey: `burnrate-${scope}-product-${eventName}` },
          )
          account = await save(tenant.id, { product_id: product.id })
        }
        if (!account.price_id) {
          const price = await client.prices.create(
            {
              currency: account.currency,
              product: account.product_id!,
              billing_scheme: 'per_unit',
              unit_amount_decimal: Stripe.Decimal.from(UNIT_AMOUNT_DECIMAL),
              recurring: { interval: 'month', usage_type: 'metered', meter: account.meter_id! },
              nickname: `Billed usage, 1 unit = 1/1000 of the minor unit of ${account.currency.toUpperCase()}`,
              metadata: { burnrate_tenant_id: tenant.id, burnrate_units_per_major: account.units_per_major },
            },
            { idempotencyKey: `burnrate-${scope}-price-${eventName}` },
          )
          // Exclusive against queueForStripe's shared lock: waits for every transaction that may have
          // read "no price yet", so the backfill below sees their events (see outbox.ts).
          account = await db.transaction().execute(async (trx) => {
            await sql`select pg_advisory_xact_lock(hashtext(${setupLockKey(tenant.id)}))`.execute(trx)
            return trx
              .updateTable('stripe_accounts')
              .set({ price_id: price.id, setup_at: clock.now(), updated_at: clock.now() })
              .where('tenant_id', '=', tenant.id)
              .returningAll()
              .executeTakeFirstOrThrow()
          })
        }
      } catch (error) {
        throw stripeRefusal(error) ?? error
      }
      // Usage recorded before billing was set up (or missed for any reason) goes out like new usage.
      const backfill = await backfillOutbox(db, tenant.id, backfillFrom)

      let createdCustomers = 0
      if (input.createCustomers) {
        const missing = await db
          .selectFrom('customers')
          .select(['id', 'name'])
          .where('tenant_id', '=', tenant.id)
          .where('stripe_customer_id', 'is', null)
          .orderBy('id')
          .execute()
        for (const customer of missing) {
          const created = await client.customers
            .create(
              {
                ...(customer.name ? { name: customer.name } : {}),
                metadata: { burnrate_customer_id: customer.id, burnrate_tenant_id: tenant.id },
              },
              { idempotencyKey: `burnrate-${scope}-customer-${stableHash(customer.id)}` },
            )
            .catch((error: unknown) => {
              throw stripeRefusal(error) ?? error
            })
          const updated = await db
            .updateTable('customers')
            .set({ stripe_customer_id: created.id })
            .where('tenant_id', '=', tenant.id)
            .where('id', '=', customer.id)
            .where('stripe_customer_id', 'is', null)
            .executeTakeFirst()
          if (Number(updated.numUpdatedRows) > 0) createdCustomers += 1
        }
      }
      logger.info('stripe billing set up', {
        tenantId: tenant.id,
        meterId: account.meter_id,
        priceId: account.price_id,
        createdCustomers,
        backfillFrom: backfillFrom.toISOString(),
        ...backfill,
      })
      return { account, createdCustomers, backfill: { ...backfill, from: backfillFrom } }
    },
  }
  return service
}
