import { createAuditService, type AuditService } from './audit/service.ts'
import { createConsoleSessionService, type ConsoleSessionService } from './auth/sessions.ts'
import { createTenantService, type TenantService } from './auth/service.ts'
import { createBudgetService } from './budgets/service.ts'
import type { BudgetService } from './budgets/types.ts'
import { createCustomerService, type CustomerService } from './customers/service.ts'
import { createCreditService } from './credits/service.ts'
import type { CreditService, PrepaidPolicy } from './credits/types.ts'
import { createCatalogService, type CatalogServices } from './catalog/service.ts'
import { catchUpUnpriced, sweepScopeOf } from './repricing/late-pricing.ts'
import { createOverviewService, type OverviewService } from './overview/service.ts'
import { createPricingService, type PricingService } from './pricing/service.ts'
import { createRerating, type ReratingService } from './repricing/rerating.ts'
import { changeFollowers, createRepricingService } from './repricing/service.ts'
import type { RepricingService } from './repricing/types.ts'
import type { Clock } from './clock.ts'
import { exportDirOf, retentionArchiveOf, type Config } from './config.ts'
import type { Db } from './db/database.ts'
import { gatewayHoldTtlSeconds } from './gateway/budget-hold.ts'
import { BUDGET_LEASE_MAX_AGE_MS, createBudgetLeases, type BudgetLeases } from './gateway/budget-leases.ts'
import { createGatewayService, type GatewayService } from './gateway/service.ts'
import { createRatingService, type RatingService } from './rating/service.ts'
import { createPartitionService, type PartitionService } from './ledger/partitions.ts'
import {
  createExportService,
  createRetentionService,
  type ExportService,
  type RetentionService,
} from './export/service.ts'
import { createExportJobService, type ExportJobService } from './export/jobs.ts'
import { createRetentionScheduler, type RetentionScheduler } from './export/retention-schedule.ts'
import type { Logger } from './logger.ts'
import { tracedFetch, tracingEnabled } from './observability/tracing.ts'
import { createBurnratePubSub, type BurnratePubSub } from './pubsub.ts'
import { createStripeClientFactory, type StripeClientFactory } from './stripe/client.ts'
import { markCreditsChanged, markCreditsIngested } from './stripe/credit-push.ts'
import { queueChanges, queueIngested } from './stripe/outbox.ts'
import { createStripePusher, type StripePusher } from './stripe/pusher.ts'
import { createStripeService, type StripeService } from './stripe/service.ts'
import { createUsageUpdates } from './subscriptions/usage-updates.ts'
import { withGroupCommit, type GroupCommittedUsage } from './usage/group-commit.ts'
import { billedChangePipeline, ingestPipeline } from './usage/pipeline.ts'
import { createUsageService } from './usage/service.ts'
import { createUsageReadService, type UsageReadService } from './usage/summary/service.ts'
import { createWidgetSessionService, type WidgetSessionService } from './widget-sessions/service.ts'
import { createWebhookDispatcher, type WebhookDispatcher } from './webhooks/dispatcher.ts'
import { createWebhookService, type WebhookService } from './webhooks/service.ts'
import { createReconciliationService, type ReconciliationService } from './reconciliation/service.ts'

/** Everything a request may use, built once per app from injected dependencies. */
export interface Services {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  pubsub: BurnratePubSub
  /** Who changed money or configuration: services record in the transaction of the change. */
  audit: AuditService
  tenants: TenantService
  /** Console sign-ins (the br_console cookie). */
  consoleSessions: ConsoleSessionService
  customers: CustomerService
  /** The console overview and UNPRICED groups, from rollups. */
  overview: OverviewService
  catalog: CatalogServices
  /** The tenant's pricing plans (markup or margin over cost). */
  pricing: PricingService
  /** Prices UNPRICED events when a price arrives; re-prices the past with correction entries. */
  repricing: RepricingService
  rerating: ReratingService
  /** Plans (versioned rules), metered rating inside ingest, invoice preview: src/rating/. */
  rating: RatingService
  /** Batches as sent (record) and single events through group commit (recordOne). */
  usage: GroupCommittedUsage
  /** usage_events' monthly partitions, created ahead (main.ts) and on demand (an ingest hook). */
  partitions: PartitionService
  /** A tenant's usage events to Parquet and CSV by day, with a manifest. */
  exports: ExportService
  /** startUsageExport's background jobs; main.ts starts and stops the worker. */
  exportJobs: ExportJobService
  /** Raw events older than a number of months: exported, verified, then dropped partition by partition. */
  retention: RetentionService
  /** RETENTION_RAW_EVENTS_MONTHS on a schedule; main.ts starts and stops it. */
  retentionSchedule: RetentionScheduler
  /** usageSummary, usageEvents and the ledger's billed amount of a range. */
  usageReads: UsageReadService
  stripe: StripeService
  /** Background push of usage to Stripe; main.ts starts and stops it. */
  stripePusher: StripePusher
  widgetSessions: WidgetSessionService
  /** Provider keys for the metering gateway (gateway/routes.ts). */
  gateway: GatewayService
  /** This process's leases of hard-budget room for gateway calls; null when GATEWAY_BUDGET_LEASE_CALLS is 0. */
  budgetLeases: BudgetLeases | null
  budgets: BudgetService
  /** Prepaid credit grants, their ledger and balances; consumed by ingest (step credits.consume). */
  credits: CreditService
  webhooks: WebhookService
  /** Background webhook delivery; main.ts starts and stops it. */
  webhookDispatcher: WebhookDispatcher
  /** Provider usage import and reconciliation; main.ts starts and stops its schedule. */
  reconciliation: ReconciliationService
}

export interface Dependencies {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  /** Defaults to an in-process pubsub. */
  pubsub?: BurnratePubSub
  /** Builds a Stripe client per tenant key; defaults to the SDK aimed at STRIPE_API_URL or api.stripe.com. */
  stripeClient?: StripeClientFactory
  /** What webhook deliveries are POSTed with; defaults to the global fetch. */
  webhookFetch?: typeof globalThis.fetch
  /** What provider usage reports are fetched with; defaults to the global fetch. */
  providerFetch?: typeof globalThis.fetch
  /** Waits between retries of provider report requests; defaults to a timer. */
  providerSleep?: (ms: number) => Promise<void>
  /** Which customers are prepaid-only (their plan's flag); defaults to none until plans say so. */
  prepaidPolicy?: PrepaidPolicy
}

export function createServices(deps: Dependencies): Services {
  const pubsub = deps.pubsub ?? createBurnratePubSub()
  const audit = createAuditService(deps)
  const tenants = createTenantService({ ...deps, audit })
  const catalog = createCatalogService({ ...deps, pubsub })
  const webhooks = createWebhookService(deps)
  // Alerts a new or lowered budget raises at once reach webhooks like those raised by ingest.
  const usageReads = createUsageReadService(deps)
  // The invoice preview takes off what credits paid; credits read the plan's prepaid-only flag.
  const rating = createRatingService({
    ...deps,
    audit,
    billedAmount: usageReads.billedAmount,
    credits: { forPeriod: (tenant, customerId, period) => credits.forPeriod(tenant, customerId, period) },
  })
  const credits: CreditService = createCreditService({
    ...deps,
    audit,
    pubsub,
    // The plan in force says whether a customer is prepaid-only (RatingPlan.prepaidOnly).
    prepaid: deps.prepaidPolicy ?? {
      prepaidOnly: async (tenantId, customerId, at, executor) =>
        (await rating.planInForce(tenantId, customerId, at, executor))?.prepaidOnly ?? false,
    },
    reservedAmount: (executor, tenantId, customerId, now) =>
      budgets.reservedAmount(executor, tenantId, customerId, now),
    onAlertsRaised: webhooks.enqueueCreditAlerts,
  })
  const budgets = createBudgetService({
    ...deps,
    pubsub,
    onAlertsRaised: webhooks.enqueueBudgetAlerts,
    // A budget set mid-period is seeded from what the ledger already billed.
    billedAmount: usageReads.billedAmount,
    // Prepaid-only customers stop when their credits (less reservations) run out.
    prepaidGate: credits.prepaidGate,
    audit,
  })
  // Subscribers (the widget) hear of every committed change to a customer's usage, coalesced.
  const usageUpdates = createUsageUpdates({
    pubsub,
    windowMs: deps.config.USAGE_UPDATE_WINDOW_MS,
    now: () => deps.clock.now(),
  })
  // Late pricing, corrections and re-ratings move the Stripe outbox and budget spend like ingest does.
  const changePipeline = billedChangePipeline(
    {
      inTransaction: {
        'stripe.outbox': queueChanges,
        'budgets.spend': budgets.followChanges,
        'credits.consume': credits.followChanges,
        'stripe.credits': markCreditsChanged,
        'webhooks.budgetAlerts': (trx, batch) => webhooks.enqueueBudgetAlerts(trx, batch.alertsRaised),
        'webhooks.creditAlerts': (trx, batch) => webhooks.enqueueCreditAlerts(trx, batch.creditAlertsRaised),
      },
      afterCommit: {
        'budgets.publishAlerts': budgets.publishAlerts,
        'credits.publishAlerts': credits.publishAlerts,
        'subscriptions.usageUpdates': usageUpdates.afterChanges,
      },
    },
    deps.logger,
  )
  const repricing = createRepricingService({ ...deps, catalog, rating, pipeline: changePipeline })
  const rerating = createRerating({ ...deps, rating, audit, followers: changeFollowers(changePipeline) })
  // After every committed catalog change: events waiting for exactly that price get priced (its
  // models, from its start; everything when another process changed the catalog).
  catalog.onApplied(async (changes) => {
    const scope = sweepScopeOf(changes)
    if (scope) await repricing.priceUnpriced(scope)
  })
  // Applied catalog changes become price.change webhook events, in the process that applied them.
  catalog.onApplied((changes) => webhooks.enqueuePriceChanges(changes))
  const stripeClient =
    deps.stripeClient ??
    createStripeClientFactory({
      apiUrl: deps.config.STRIPE_API_URL,
      timeoutMs: deps.config.STRIPE_TIMEOUT_MS,
      // Tracing on: Stripe calls are CLIENT spans with the traceparent sent on.
      ...(tracingEnabled() ? { fetch: tracedFetch() } : {}),
    })
  const stripe = createStripeService({
    ...deps,
    stripeClient,
    // Pushes that fail or expire alert the tenant's webhook endpoints, in the transaction that records them.
    webhookEvents: webhooks.enqueueEvent,
    // The same alerts reach the stripeAlerts subscription once that transaction has committed.
    pubsub,
    // A paid Checkout Session naming a customer tops up its prepaid credits, once per session.
    onCheckoutPaid: async (tenantId, checkout) => {
      await credits.grantFromCheckout(tenantId, checkout)
    },
  })
  const stripePusher = createStripePusher({
    ...deps,
    stripe,
    // Closed periods' minimum-commitment true-ups reach Stripe as invoice items (stripe/true-ups.ts).
    trueUps: rating,
    options: {
      intervalMs: deps.config.STRIPE_PUSH_INTERVAL_MS,
      leaseMs: Math.max(60_000, deps.config.STRIPE_TIMEOUT_MS * 3),
      concurrency: deps.config.STRIPE_PUSH_CONCURRENCY,
      backoffBaseMs: 1_000,
      backoffMaxMs: 300_000,
      maxAttempts: deps.config.STRIPE_PUSH_MAX_ATTEMPTS,
    },
  })
  const partitions = createPartitionService(deps)
  const exports = createExportService({ ...deps, exportDir: exportDirOf(deps.config), s3: deps.config })
  const retention = createRetentionService({ ...deps, partitions, s3: deps.config })
  return {
    ...deps,
    pubsub,
    audit,
    tenants,
    consoleSessions: createConsoleSessionService({
      ...deps,
      tenants,
      ttlSeconds: deps.config.CONSOLE_SESSION_TTL_SECONDS,
    }),
    partitions,
    exports,
    exportJobs: createExportJobService({
      ...deps,
      exports,
      options: {
        pollIntervalMs: deps.config.EXPORT_JOB_POLL_INTERVAL,
        leaseMs: 60_000,
        maxAttempts: deps.config.EXPORT_JOB_MAX_ATTEMPTS,
      },
    }),
    retention,
    retentionSchedule: createRetentionScheduler({
      ...deps,
      retention,
      options: {
        keepMonths: deps.config.RETENTION_RAW_EVENTS_MONTHS,
        archive: retentionArchiveOf(deps.config),
        intervalMs: deps.config.RETENTION_INTERVAL,
      },
    }),
    customers: createCustomerService({ ...deps, budgetUse: budgets.budgetUse }),
    overview: createOverviewService(deps),
    catalog,
    pricing: createPricingService({ ...deps, audit }),
    repricing,
    rerating,
    rating,
    usageReads,
    usage: withGroupCommit(
      createUsageService({
        ...deps,
        catalog,
        rating,
        // The steps that follow ingest, run in the order usage/pipeline.ts declares.
        pipeline: ingestPipeline(
          {
            check: {
              // First, before the transaction: the partition of each event's month exists.
              'ledger.partitions': partitions.check,
              'budgets.reservations': budgets.checkReservations,
            },
            inTransaction: {
              'stripe.outbox': queueIngested,
              'budgets.spend': budgets.followIngest,
              // Prepaid credits pay for the new events, in event order.
              'credits.consume': credits.followIngest,
              // Stripe's credit grants follow what the credits paid (stripe/credit-push.ts).
              'stripe.credits': markCreditsIngested,
              'webhooks.budgetAlerts': (trx, batch) => webhooks.enqueueBudgetAlerts(trx, batch.alertsRaised),
              'webhooks.creditAlerts': (trx, batch) => webhooks.enqueueCreditAlerts(trx, batch.creditAlertsRaised),
            },
            afterCommit: {
              'budgets.publishAlerts': budgets.publishAlerts,
              'credits.publishAlerts': credits.publishAlerts,
              // UNPRICED events stored while the catalog changed get priced.
              'repricing.catchUp': catchUpUnpriced(catalog, repricing),
              'subscriptions.usageUpdates': usageUpdates.afterIngest,
            },
          },
          deps.logger,
        ),
      }),
      {
        maxWaitMs: deps.config.INGEST_GROUP_COMMIT_MS,
        maxBatch: deps.config.INGEST_GROUP_COMMIT_MAX,
        maxInFlight: deps.config.INGEST_GROUP_COMMIT_CONCURRENCY,
      },
    ),
    stripe,
    stripePusher,
    widgetSessions: createWidgetSessionService(deps),
    gateway: createGatewayService(deps),
    budgetLeases:
      deps.config.GATEWAY_BUDGET_LEASE_CALLS > 0
        ? createBudgetLeases(
            { budgets, logger: deps.logger },
            {
              callsPerLease: deps.config.GATEWAY_BUDGET_LEASE_CALLS,
              minCallsPerLease: Math.min(4, deps.config.GATEWAY_BUDGET_LEASE_CALLS),
              maxAgeMs: BUDGET_LEASE_MAX_AGE_MS,
              ttlSeconds: gatewayHoldTtlSeconds(deps.config),
            },
          )
        : null,
    budgets,
    credits,
    webhooks,
    reconciliation: createReconciliationService({
      ...deps,
      pubsub,
      fetch: deps.providerFetch,
      sleep: deps.providerSleep,
      resolveModel: (model, provider, tenantId) => catalog.resolve(model, provider, tenantId),
      refreshCatalog: () => catalog.ensureFresh(),
      enqueueWebhook: (trx, event) => webhooks.enqueueEvent(trx, event, deps.clock.now()),
    }),
    webhookDispatcher: createWebhookDispatcher({
      ...deps,
      fetch: deps.webhookFetch,
      options: {
        timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS,
        backoffBaseMs: deps.config.WEBHOOK_BACKOFF_BASE_MS,
        pollIntervalMs: deps.config.WEBHOOK_POLL_INTERVAL_MS,
        allowPrivateTargets: deps.config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      },
    }),
  }
}
