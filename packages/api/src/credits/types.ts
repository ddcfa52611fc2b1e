/**
 * What the credits domain offers (CreditService) and what it is built from (CreditDeps): the
 * shapes its use-case modules share. The service is composed in service.ts.
 */
import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor, Tx } from '../db/database.ts'
import type {
  CreditAlertRow,
  CreditCategory,
  CreditGrantRow,
  CreditLedgerRow,
  CreditSettingsRow,
  CreditSource,
  Tenant,
} from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { BurnratePubSub } from '../pubsub.ts'
import type { Page } from '../shared/pagination.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'

/**
 * Whether a customer's plan is prepaid-only at a time: the plans of the rating domain answer it
 * (services.ts wires `planInForce`); without plans nobody is prepaid-only.
 */
export interface PrepaidPolicy {
  /** `executor`: the caller's transaction when it holds one (PGlite has a single connection). */
  prepaidOnly(tenantId: string, customerId: string, at: Date, executor?: Executor): Promise<boolean>
}

export interface GrantCreditsInput {
  customerId: string
  amount: string
  currency?: string | null
  category?: CreditCategory | null
  priority?: number | null
  effectiveAt?: Date | null
  expiresAt?: Date | null
  scope?: { models?: readonly string[] | null; features?: readonly string[] | null } | null
  lowBalanceThreshold?: string | null
  description?: string | null
  /** The client's key: the same key returns the grant it made, once. */
  idempotencyKey: string
}

export interface GrantView {
  row: CreditGrantRow
  /** ACTIVE, PENDING (not yet effective), EXPIRED or DEPLETED, as of now. */
  status: 'ACTIVE' | 'PENDING' | 'EXPIRED' | 'DEPLETED'
}

export interface CreditBalanceView {
  customerId: string
  currency: string
  /** What effective, unexpired grants hold now. */
  balance: string
  /** Held by the customer's active budget reservations (counted against the balance by the hard stop). */
  reserved: string
  /** balance − reserved, never negative. */
  available: string
  /** Grants not effective yet. */
  upcoming: string
  lowBalanceThreshold: string | null
  prepaidOnly: boolean
  grants: GrantView[]
  topUpUrl: string | null
}

export interface GrantResult {
  grant: GrantView
  /** false: the idempotency key had made this grant before; nothing changed. */
  created: boolean
}

export interface CreditService {
  grantCredits(tenant: Tenant, input: GrantCreditsInput, source?: CreditSource): Promise<GrantResult>
  /**
   * A paid Stripe Checkout Session (stripe/inbox.ts): a PAID grant of what it bought, once per
   * session (its id is the idempotency key). A session in another currency than the tenant's, or
   * otherwise refused, grants nothing and is logged (Stripe redelivering it would not help).
   */
  grantFromCheckout(
    tenantId: string,
    checkout: { sessionId: string; customerId: string; amount: string; currency: string },
  ): Promise<GrantResult | null>
  balance(tenant: Tenant, customerId: string): Promise<CreditBalanceView>
  /**
   * For the invoice preview: what credits paid for the customer's usage in the period (by the
   * usage's time), and the balance left now.
   */
  forPeriod(
    tenant: Tenant,
    customerId: string,
    period: { start: Date; end: Date },
  ): Promise<{ applied: string; remaining: string }>
  ledger(
    tenant: Tenant,
    customerId: string,
    args: { grantId?: string | null; first?: number | null; after?: string | null },
  ): Promise<Page<CreditLedgerRow>>
  alerts(tenant: Tenant, customerId: string, first: number | null | undefined): Promise<CreditAlertRow[]>
  setCreditSettings(
    tenant: Tenant,
    input: { customerId: string; lowBalanceThreshold?: string | null },
  ): Promise<CreditSettingsRow>
  setTopUpUrl(tenant: Tenant, url: string | null): Promise<string | null>
  /** Writes the EXPIRY entries of every grant past its expiry (periodic; idempotent). */
  sweepExpired(): Promise<number>
  /**
   * For budgets' hard stop (checkBudget, reserveBudget) and so the gateway: whether the customer
   * is prepaid-only now and what its credits hold. With `lock`, the customer's grants are locked
   * in the caller's transaction, so reservations against credits are serialized.
   */
  prepaidGate(
    executor: Executor,
    tenantId: string,
    customerId: string,
    now: Date,
    options?: { lock?: Tx },
  ): Promise<{ prepaidOnly: boolean; balance: string }>
  /** Ingest step `credits.consume`. */
  followIngest(trx: Tx, batch: IngestBatch): Promise<void>
  /** Billed-change step `credits.consume`: a raised bill draws more, a lowered one gives back. */
  followChanges(trx: Tx, batch: BilledChangeBatch): Promise<void>
  /** After commit: subscribers hear of the credit alerts raised. */
  publishAlerts(batch: { creditAlertsRaised: readonly CreditAlertRow[] }): Promise<void>
}

/** What the credits service is built from (services.ts passes it); each use case takes the part it needs. */
export interface CreditDeps {
  /** Grants, settings and the top-up URL are recorded in the audit log in the transaction of the change. */
  audit?: Pick<AuditService, 'record'> | null
  db: Db
  clock: Clock
  logger: Logger
  pubsub: BurnratePubSub
  prepaid: PrepaidPolicy
  /** Held by the customer's active budget reservations (the budgets repository's). */
  reservedAmount: (executor: Executor, tenantId: string, customerId: string, now: Date) => Promise<string>
  /** credit.alert webhooks, in the transaction that raised the alerts. */
  onAlertsRaised: (trx: Tx, alerts: readonly CreditAlertRow[]) => Promise<void>
}
