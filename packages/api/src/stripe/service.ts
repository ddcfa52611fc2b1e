/**
 * The Stripe domain's service: the tenant's Stripe account and key, billing setup, the meter
 * events (pushes) and reconciliation, and what Stripe's webhooks report. Each use case lives in
 * its own module; this composes them over the injected db, clock, config, logger, Stripe client
 * factory and webhook sink.
 */
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { BurnratePubSub } from '../pubsub.ts'
import { badInput } from '../shared/errors.ts'
import type { Page } from '../shared/pagination.ts'
import { createStripeAlerts, type StripeAlerts, type WebhookEventSink } from './alerts.ts'
import type { StripeClient, StripeClientFactory } from './client.ts'
import { createSecretBox, keyHint, parseStripeKey, type SecretBox } from './crypto.ts'
import type { StripeAccountRow, StripeInvoiceRow, StripePushRow } from './db-types.ts'
import { receiveEvent, type InboxDeps, type StripeEvent } from './inbox.ts'
import { creditPushes, creditPushPage, retryCreditPushes, type CreditPushFilter } from './credit-pushes.ts'
import { expiredUsage, pushes, pushPage, retryPushes, type PushFilter } from './pushes.ts'
import type { CreditPushRow } from './repository/credit-pushes.ts'
import { reconcile, type ReconciliationRow } from './reconciliation.ts'
import { findAccount, upsertCredentials } from './repository/accounts.ts'
import { listInvoices } from './repository/inbox.ts'
import { setupBilling, type StripeSetupInput, type StripeSetupResult } from './setup.ts'
import { unitsPerMajor } from './units.ts'

export { type StripeSetupResult } from './setup.ts'

export interface StripeService {
  /** Null when STRIPE_ENCRYPTION_KEY is not set: keys cannot be stored. */
  readonly box: SecretBox | null
  /**
   * The alerts a push that failed or expired raises: a webhook event in the transaction that records
   * it, published to the stripeAlerts subscription once that transaction committed.
   */
  readonly alerts: StripeAlerts
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
  setup(tenant: Tenant, input: StripeSetupInput): Promise<StripeSetupResult>
  /** A client for the tenant's own Stripe account, or null when it has no key. */
  clientFor(tenantId: string): Promise<StripeClient | null>
  /** The signing secrets of the tenant's snapshot and thin destinations, those that are set. */
  webhookSecrets(tenantId: string): Promise<string[]>
  /** Meter events by status, newest first (`first` 1-500, default 100). */
  pushes(tenantId: string, filter: PushFilter): Promise<StripePushRow[]>
  /** Meter events in Relay pages, newest first (stripePushesPage). */
  pushPage(tenantId: string, filter: Parameters<typeof pushPage>[2]): Promise<Page<StripePushRow>>
  /** Usage older than Stripe's window that could not be sent. */
  expiredUsage(tenantId: string, first?: number | null): Promise<StripePushRow[]>
  /** Re-sends FAILED pushes (see pushes.ts). */
  retryPushes(tenantId: string, identifiers: readonly string[]): Promise<StripePushRow[]>
  /** Credit grant, grant void and minimum true-up calls by status, newest first (`first` 1-500, default 100). */
  creditPushes(tenantId: string, filter: CreditPushFilter): Promise<CreditPushRow[]>
  /** Credit pushes in Relay pages, newest first (stripeCreditPushesPage). */
  creditPushPage(tenantId: string, filter: Parameters<typeof creditPushPage>[2]): Promise<Page<CreditPushRow>>
  /** Retries FAILED credit pushes (see credit-pushes.ts). */
  retryCreditPushes(tenantId: string, identifiers: readonly string[]): Promise<CreditPushRow[]>
  /** Billed vs reported vs Stripe's meter summaries per customer, for whole UTC hours [from, to). */
  reconcile(tenantId: string, from: Date, to: Date, options: { includeStripe: boolean }): Promise<ReconciliationRow[]>
  /** Invoice states from Stripe's invoice.* events, latest period first. */
  invoices(tenantId: string, customerId?: string | null): Promise<StripeInvoiceRow[]>
  /** A verified event from the tenant's Stripe webhook destinations; throws when handling fails (Stripe redelivers). */
  receiveEvent(tenantId: string, event: StripeEvent): Promise<'handled' | 'duplicate'>
}

const SECRET_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9_]{8,255}$/
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/=_-]{8,255}$/

export function createStripeService({
  db,
  clock,
  config,
  logger,
  stripeClient,
  webhookEvents,
  pubsub,
  onCheckoutPaid,
}: {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  stripeClient: StripeClientFactory
  /** Where Stripe alerts go: the webhooks domain's enqueue, in the caller's transaction. */
  webhookEvents: WebhookEventSink
  /** Where Stripe alerts are published once their transaction committed (the stripeAlerts subscription). */
  pubsub: BurnratePubSub
  /** A paid Checkout Session naming a customer: the credits domain grants what it bought. */
  onCheckoutPaid?: InboxDeps['onCheckoutPaid']
}): StripeService {
  const box = config.STRIPE_ENCRYPTION_KEY ? createSecretBox(parseStripeKey(config.STRIPE_ENCRYPTION_KEY)) : null
  const alerts = createStripeAlerts({ enqueue: webhookEvents, pubsub })
  const requireBox = () => {
    if (!box)
      throw badInput(
        'Stripe is not enabled on this server: set STRIPE_ENCRYPTION_KEY (32 bytes, hex or base64) to store Stripe keys',
      )
    return box
  }
  const account = (tenantId: string) => findAccount(db, tenantId)
  const clientFor = async (tenantId: string): Promise<StripeClient | null> => {
    const found = await account(tenantId)
    if (!found || !box) return null
    return { client: stripeClient(box.open(found.secret_key_enc, tenantId)), account: found }
  }

  return {
    box,
    alerts,
    account,
    clientFor,

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
      // undefined: unchanged; null or "": removed.
      const seal = (value: string | null | undefined) =>
        value === undefined ? undefined : value ? sealer.seal(value.trim(), tenant.id) : null
      const currency = tenant.currency.toLowerCase()
      return upsertCredentials(
        db,
        tenant.id,
        {
          secretKeyEnc: sealer.seal(secretKey, tenant.id),
          keyHint: keyHint(secretKey),
          webhookSecretEnc: seal(input.webhookSecret),
          thinWebhookSecretEnc: seal(input.thinWebhookSecret),
          currency,
          unitsPerMajor: unitsPerMajor(currency),
        },
        clock.now(),
      )
    },

    async webhookSecrets(tenantId) {
      const found = await account(tenantId)
      if (!found || !box) return []
      return [found.webhook_secret_enc, found.thin_webhook_secret_enc]
        .filter((s): s is string => s !== null)
        .map((s) => box.open(s, tenantId))
    },

    async setup(tenant, input) {
      requireBox()
      return setupBilling({ db, clock, logger, clientFor }, tenant, input)
    },

    pushes: (tenantId, filter) => pushes(db, tenantId, filter),
    pushPage: (tenantId, filter) => pushPage(db, tenantId, filter),
    expiredUsage: (tenantId, first) => expiredUsage(db, tenantId, first),
    retryPushes: (tenantId, identifiers) => retryPushes(db, tenantId, identifiers, clock.now()),
    creditPushes: (tenantId, filter) => creditPushes(db, tenantId, filter),
    creditPushPage: (tenantId, filter) => creditPushPage(db, tenantId, filter),
    retryCreditPushes: (tenantId, identifiers) => retryCreditPushes(db, tenantId, identifiers, clock.now()),
    reconcile: (tenantId, from, to, options) => reconcile(db, { account, clientFor }, tenantId, from, to, options),
    invoices: (tenantId, customerId) => listInvoices(db, tenantId, customerId ?? null),
    receiveEvent: (tenantId, event) =>
      receiveEvent({ db, clock, logger, alerts, clientFor, onCheckoutPaid }, tenantId, event),
  }
}
