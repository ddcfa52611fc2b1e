/**
 * setupStripeBilling: creates (idempotently) the tenant's meter, product and metered price in its
 * own Stripe account, then queues the usage recorded before (backfill) and, when asked, creates
 * the missing Stripe customers.
 */
import Stripe from 'stripe'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import { badInput, type DomainError } from '../shared/errors.ts'
import { backfillOutbox, defaultBackfillFrom, type BackfillResult } from './backfill.ts'
import type { StripeClient } from './client.ts'
import type { StripeAccountRow, StripeReportingMode } from './db-types.ts'
import {
  customersWithoutStripeId,
  linkStripeCustomer,
  lockSetupExclusive,
  storePrice,
  updateAccount,
} from './repository/accounts.ts'
import { stableHash, UNIT_AMOUNT_DECIMAL } from './units.ts'

export interface StripeSetupInput {
  mode?: StripeReportingMode | null | undefined
  createCustomers?: boolean | null | undefined
  backfillFrom?: Date | null | undefined
}

export interface StripeSetupResult {
  account: StripeAccountRow
  createdCustomers: number
  /** What this call's backfill queued from the ledger (nothing that was already queued). */
  backfill: BackfillResult & { from: Date }
}

/**
 * Stripe refusing the tenant's key or request is the tenant's to fix, so it answers as user input
 * (naming the stored secretKey when Stripe rejects the key). Network failures and Stripe outages are
 * not refusals: they reach the schema's error mapping, which answers UNAVAILABLE (retryable).
 */
function stripeRefusal(error: unknown): DomainError | null {
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

export async function setupBilling(
  {
    db,
    clock,
    logger,
    clientFor,
  }: {
    db: Db
    clock: Clock
    logger: Logger
    clientFor(tenantId: string): Promise<StripeClient | null>
  },
  tenant: Tenant,
  input: StripeSetupInput,
): Promise<StripeSetupResult> {
  const backfillFrom = input.backfillFrom ?? defaultBackfillFrom(clock.now())
  if (backfillFrom > clock.now()) throw badInput('backfillFrom must not be in the future', 'input.backfillFrom')
  const found = await clientFor(tenant.id)
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
            display_name: mode === 'AMOUNT' ? 'Burnrate billed usage' : 'Burnrate billed usage by model and token type',
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
      account = await updateAccount(db, tenant.id, { mode, event_name: eventName, meter_id: meter.id }, clock.now())
    }
    if (!account.product_id) {
      const product = await client.products.create(
        { name: 'AI usage', metadata: { burnrate_tenant_id: tenant.id } },
        { idempotencyKey: `burnrate-${scope}-product-${eventName}` },
      )
      account = await updateAccount(db, tenant.id, { product_id: product.id }, clock.now())
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
        await lockSetupExclusive(trx, tenant.id)
        return storePrice(trx, tenant.id, price.id, clock.now())
      })
    }
  } catch (error) {
    throw stripeRefusal(error) ?? error
  }
  // Usage recorded before billing was set up (or missed for any reason) goes out like new usage.
  const backfill = await backfillOutbox(db, tenant.id, backfillFrom)

  let createdCustomers = 0
  if (input.createCustomers) {
    const missing = await customersWithoutStripeId(db, tenant.id)
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
      if (await linkStripeCustomer(db, tenant.id, customer.id, created.id)) createdCustomers += 1
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
}
