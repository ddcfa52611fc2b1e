/**
 * What follows a change to the usage ledger, declared in one place.
 *
 * Two pipelines, each a fixed list of named steps (the order below is the order they run in):
 *
 * - the INGEST pipeline follows `recordUsage` / `recordUsageBatch` for the events a batch newly
 *   stored (never replays);
 * - the BILLED-CHANGE pipeline follows a change to the bill of stored events: an UNPRICED event
 *   priced late, or a `repriceUsage` correction.
 *
 * A pipeline runs in phases: `check` steps judge events before anything is stored; `inTransaction`
 * steps run in the transaction that writes the ledger, in the lock order of docs/architecture.md
 * (Stripe outbox, then budgets, then credit grants, then Stripe credit states, then webhooks), and throwing rolls it all back; `afterCommit` steps
 * notify once the change is durable, and a failing one is logged and never fails the request.
 *
 * Every step gets the batch context and may read what earlier steps wrote into it (the budgets
 * step appends the alerts it raised to `alertsRaised`; the webhooks step enqueues exactly those,
 * and they are published after commit). The steps themselves live in their domains; services.ts
 * supplies one function per name, and the types make it supply every one of them.
 */
import type { Tx } from '../db/database.ts'
import type { BudgetAlertRow, CreditAlertRow, Tenant, UsageEventRow } from '../db/types.ts'
import type { StripeAccountRow } from '../stripe/db-types.ts'
import type { Logger } from '../logger.ts'
import type { EventError, ValidEvent } from './validation.ts'

/** The ingest pipeline's steps, in the order they run. */
const INGEST_STEPS = {
  /** Before storing: an error rejects that event alone. */
  check: ['ledger.partitions', 'budgets.reservations'],
  /** In the ingest transaction, after the events and their rollups are written. */
  inTransaction: [
    'stripe.outbox',
    'budgets.spend',
    'credits.consume',
    'stripe.credits',
    'webhooks.budgetAlerts',
    'webhooks.creditAlerts',
  ],
  /** After commit. */
  afterCommit: ['budgets.publishAlerts', 'credits.publishAlerts', 'repricing.catchUp', 'subscriptions.usageUpdates'],
} as const

/** The billed-change pipeline's steps, in the order they run. */
const BILLED_CHANGE_STEPS = {
  inTransaction: [
    'stripe.outbox',
    'budgets.spend',
    'credits.consume',
    'stripe.credits',
    'webhooks.budgetAlerts',
    'webhooks.creditAlerts',
  ],
  afterCommit: ['budgets.publishAlerts', 'credits.publishAlerts', 'subscriptions.usageUpdates'],
} as const

/** The context of one ingest batch that steps read and extend. */
export interface IngestBatch {
  tenant: Tenant
  /** The events this batch newly stored, with their seq; never a replay, never empty. */
  inserted: readonly UsageEventRow[]
  /** The catalog version (CatalogService.version) the batch was priced with, or an older one. */
  catalogVersion: number
  /** Written by `budgets.spend`: the budget alerts this transaction inserted (each happens once). */
  alertsRaised: BudgetAlertRow[]
  /** Written by `credits.consume`: the low- and zero-balance credit alerts this transaction inserted. */
  creditAlertsRaised: CreditAlertRow[]
  /** Written by `stripe.outbox`: the Stripe account it read under the setup lock, reused by `stripe.credits`. */
  stripeAccount?: StripeAccountRead
}

/**
 * The tenant's Stripe account as `stripe.outbox` read it in this transaction, under the setup lock
 * (`account` undefined: the tenant has none). Absent when that step read nothing (no billed amount).
 */
export interface StripeAccountRead {
  account: Pick<StripeAccountRow, 'mode' | 'price_id' | 'setup_at'> | undefined
}

/**
 * A change to what a customer is billed for usage that is already stored: an UNPRICED event
 * priced once its price arrives, or a correction written by repriceUsage. Ingest's followers see
 * new events; these see changes to old ones, so budget spend and the Stripe outbox follow the
 * ledger whichever way an amount came about.
 */
export interface BilledChange {
  /**
   * Unique per tenant and change: the event id when an UNPRICED event is priced (ingest never
   * billed it), `<event id>#correction-<correction id>` for a correction.
   */
  key: string
  eventId: string
  customerId: string
  /** When the usage happened: spend and Stripe windows follow the event's own time. */
  ts: Date
  /** Signed change of the billed amount (a correction that lowers a bill is negative). */
  amount: string
  /** Signed change per usage type; adds up to `amount` exactly. */
  lines: { usageType: string; amount: string }[]
  /** The canonical model the event is billed under. */
  model: string
}

/** The context of one batch of billed changes that steps read and extend. */
export interface BilledChangeBatch {
  tenantId: string
  /** Never empty. */
  changes: readonly BilledChange[]
  /** Written by `budgets.spend`: the budget alerts this transaction inserted. */
  alertsRaised: BudgetAlertRow[]
  /** Written by `credits.consume`: the credit alerts this transaction inserted. */
  creditAlertsRaised: CreditAlertRow[]
  /** Written by `stripe.outbox`: the Stripe account it read under the setup lock, reused by `stripe.credits`. */
  stripeAccount?: StripeAccountRead
}

type Names<T extends readonly string[]> = T[number]
type TxStep<C> = (trx: Tx, batch: C) => Promise<void>
type AfterCommitStep<C> = (batch: C) => Promise<void> | void
type CheckStep = (tenant: Tenant, events: readonly ValidEvent[]) => Promise<(EventError | null)[]>

/** One function per declared step name. */
export interface IngestSteps {
  check: Record<Names<typeof INGEST_STEPS.check>, CheckStep>
  inTransaction: Record<Names<typeof INGEST_STEPS.inTransaction>, TxStep<IngestBatch>>
  afterCommit: Record<Names<typeof INGEST_STEPS.afterCommit>, AfterCommitStep<IngestBatch>>
}

export interface BilledChangeSteps {
  inTransaction: Record<Names<typeof BILLED_CHANGE_STEPS.inTransaction>, TxStep<BilledChangeBatch>>
  afterCommit: Record<Names<typeof BILLED_CHANGE_STEPS.afterCommit>, AfterCommitStep<BilledChangeBatch>>
}

export interface IngestPipeline {
  /**
   * Runs the check steps in order over the events still accepted: one entry per event, null when
   * every step accepts it, else the first step's error.
   */
  check(tenant: Tenant, events: readonly ValidEvent[]): Promise<(EventError | null)[]>
  inTransaction(trx: Tx, batch: IngestBatch): Promise<void>
  afterCommit(batch: IngestBatch): Promise<void>
}

export interface BilledChangePipeline {
  inTransaction(trx: Tx, batch: BilledChangeBatch): Promise<void>
  afterCommit(batch: BilledChangeBatch): Promise<void>
}

async function runAfterCommit<C>(
  order: readonly string[],
  steps: Record<string, AfterCommitStep<C>>,
  batch: C,
  logger: Logger,
  fields: Record<string, unknown>,
): Promise<void> {
  for (const name of order) {
    try {
      await steps[name]!(batch)
    } catch (error) {
      logger.error('after-commit step failed', {
        ...fields,
        step: name,
        error: error instanceof Error ? error.message : String(error),
      })
    }
  }
}

export function ingestPipeline(steps: IngestSteps, logger: Logger): IngestPipeline {
  return {
    async check(tenant, events) {
      const errors: (EventError | null)[] = events.map(() => null)
      for (const name of INGEST_STEPS.check) {
        const open = events.flatMap((event, i) => (errors[i] ? [] : [{ event, i }]))
        if (open.length === 0) break
        const found = await steps.check[name](
          tenant,
          open.map((o) => o.event),
        )
        for (const [j, error] of found.entries()) if (error) errors[open[j]!.i] = error
      }
      return errors
    },
    async inTransaction(trx, batch) {
      for (const name of INGEST_STEPS.inTransaction) await steps.inTransaction[name](trx, batch)
    },
    afterCommit(batch) {
      return runAfterCommit(INGEST_STEPS.afterCommit, steps.afterCommit, batch, logger, { tenantId: batch.tenant.id })
    },
  }
}

export function billedChangePipeline(steps: BilledChangeSteps, logger: Logger): BilledChangePipeline {
  return {
    async inTransaction(trx, batch) {
      for (const name of BILLED_CHANGE_STEPS.inTransaction) await steps.inTransaction[name](trx, batch)
    },
    afterCommit(batch) {
      return runAfterCommit(BILLED_CHANGE_STEPS.afterCommit, steps.afterCommit, batch, logger, {
        tenantId: batch.tenantId,
      })
    },
  }
}

/** No followers: ingest or a billed change alone (tests, tools). */
export const NO_INGEST_FOLLOWERS: IngestPipeline = {
  check: async (_tenant, events) => events.map(() => null),
  inTransaction: async () => {},
  afterCommit: async () => {},
}
export const NO_CHANGE_FOLLOWERS: BilledChangePipeline = {
  inTransaction: async () => {},
  afterCommit: async () => {},
}
