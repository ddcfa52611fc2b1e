import type { Executor } from '../db/database.ts'
import type { PricedLineJson, Tenant } from '../db/types.ts'
import type { Decimal } from '../money/decimal.ts'
import type { CostLine } from '../pricing/engine.ts'
import type { PlanBook } from './plans.ts'
import type { RatingPlan, RuleInput } from './rules.ts'

interface SetPlanInput {
  customerId?: string | null
  /** Defaults to now; never in the past (what was billed stays billed: re-rate explicitly). */
  effectiveFrom?: Date | null
  /** Lets effectiveFrom be in the past (at most 400 days): a plan fixed retroactively, applied to what was billed by rerateUsage. */
  retroactive?: boolean | null
  prepaidOnly?: boolean | null
  rules: readonly RuleInput[]
}

/** An event waiting for its rated amount inside the ingest transaction. */
export interface MeteredItem {
  eventId: string
  customerId: string
  ts: Date
  plan: RatingPlan
  lines: readonly CostLine[]
  model: string
  units: readonly { unit: string; quantity: string }[]
}

export interface MeteredResult {
  lines: PricedLineJson[]
  amount: string
}

export type InvoiceLineKind =
  | 'USAGE'
  | 'COST_BASED'
  | 'AT_COST'
  | 'FIXED_PRICE'
  | 'TOKEN_TIERS'
  | 'TOKEN_ALLOWANCE'
  | 'UNIT_FEE'
  | 'AMOUNT_ALLOWANCE'
  | 'AMOUNT_TIERS'
  | 'ADJUSTMENT'
  | 'MINIMUM_TRUE_UP'

export interface InvoiceLineView {
  kind: InvoiceLineKind
  description: string
  planId: string | null
  planVersion: number | null
  ruleId: string | null
  tier: number | null
  usageType: string | null
  quantity: string | null
  unitPrice: string | null
  amount: string
}

/**
 * What prepaid credits would take off a period's bill: the seam the credits domain (src/credits/)
 * fills. Without it the preview applies no credit and says so (creditsRemaining null).
 */
export interface CreditsForInvoice {
  forPeriod(
    tenant: Tenant,
    customerId: string,
    period: { start: Date; end: Date },
  ): Promise<{ applied: string; remaining: string }>
}

export interface InvoicePreviewView {
  customerId: string
  currency: string
  periodStart: Date
  periodEnd: Date
  plan: RatingPlan | null
  lines: InvoiceLineView[]
  /** Usage lines plus the minimum true-up. */
  subtotal: string
  creditsApplied: string
  /** Null when no credits service is wired in (see CreditsForInvoice). */
  creditsRemaining: string | null
  total: string
  /** The period's usage amount projected to its end at the current burn rate (budgets' forecast). */
  projectedUsage: string
  /** What the bill would be with that projection (minimum applied, credits not). */
  projectedSubtotal: string
}

export interface RatingService {
  setPlan(tenant: Tenant, input: SetPlanInput): Promise<RatingPlan>
  /** Every version of an owner's plan (the tenant default when customerId is null), oldest first. */
  planHistory(tenantId: string, customerId: string | null): Promise<RatingPlan[]>
  /**
   * The plan version in force for a customer at an instant (its own, else the tenant default;
   * setPricingPlan's markups count as plans with one COST_BASED rule), or null: billed at cost.
   * The credits hard stop reads `prepaidOnly` from it.
   */
  planInForce(tenantId: string, customerId: string, at: Date, executor?: Executor): Promise<RatingPlan | null>
  /** The versions ingest resolves plans from, for a batch's customers (one query per table). */
  book(executor: Executor, tenantId: string, customerIds: readonly string[]): Promise<PlanBook>
  /**
   * Rates metered events in the caller's transaction: locks their period counters (key order,
   * docs/architecture.md), rates each in the given order and stores the counters. Returns one
   * result per item; null for an event whose id the ledger already holds (not rated, not counted).
   */
  rateMetered(
    trx: Executor,
    tenantId: string,
    items: readonly MeteredItem[],
    options?: {
      /**
       * The items are stored UNPRICED events being priced late: rated only if still UNPRICED under
       * the lock (null otherwise), instead of only if the ledger does not hold their id.
       */
      stored?: boolean
    },
  ): Promise<(MeteredResult | null)[]>
  invoicePreview(tenant: Tenant, customerId: string, periodStart?: Date | null): Promise<InvoicePreviewView>
  /** Of these customers, those whose plan in force at `at` has a minimum commitment. */
  withMinimum(tenantId: string, customerIds: readonly string[], at: Date): Promise<Set<string>>
  /**
   * A closed period's subtotal and the minimum commitment's true-up in it (both as invoicePreview
   * shows them; the true-up is 0 when no minimum applies). Stripe's true-up invoice item comes from it.
   */
  periodTrueUp(tenantId: string, customerId: string, periodStart: Date): Promise<{ subtotal: string; trueUp: string }>
  /** The period meters (rule id → quantity so far) of a customer's plan version at an instant, read without a lock. */
  meters(tenantId: string, customerId: string, plan: RatingPlan, at: Date): Promise<Map<string, Decimal>>
}
