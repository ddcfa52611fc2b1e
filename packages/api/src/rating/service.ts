import { randomUUID } from 'node:crypto'
import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import type { PricedLineJson, Tenant } from '../db/types.ts'
import { forecastSpend } from '../budgets/evaluate.ts'
import { Decimal, ZERO } from '../money/decimal.ts'
import type { CostLine } from '../pricing/engine.ts'
import { badInput } from '../shared/errors.ts'
import { costPlanVersion, meteredRules, periodOf, planAt, ratedLinesJson, type PlanBook } from './plans.ts'
import { rateEvent } from './rate.ts'
import * as repo from './repository.ts'
import { parseRules, type RatingPlan, type RuleInput } from './rules.ts'

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

interface MeteredResult {
  lines: PricedLineJson[]
  amount: string
}

type InvoiceLineKind =
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

const toPlan = (r: repo.PlanVersionRow): RatingPlan => ({
  id: r.id,
  customerId: r.customer_id,
  version: r.version,
  effectiveFrom: r.effective_from,
  prepaidOnly: r.prepaid_only,
  rules: r.rules,
})

function checkCustomerId(customerId: string | null | undefined, field: string): string | null {
  if (customerId === null || customerId === undefined) return null
  if (customerId.length === 0 || customerId.length > 255) throw badInput('customerId must be 1-255 characters', field)
  return customerId
}

export function createRatingService({
  db,
  clock,
  billedAmount,
  credits = null,
  audit = null,
}: {
  db: Db
  clock: Clock
  /** Plan versions are recorded in the audit log in the transaction that writes them (`ratingPlan.set`). */
  audit?: Pick<AuditService, 'record'> | null
  /** The ledger's billed amount of a customer's range (usage/summary), for the preview's subtotal check. */
  billedAmount: (executor: Executor, tenantId: string, customerId: string, from: Date, to: Date) => Promise<string>
  credits?: CreditsForInvoice | null
}): RatingService {
  async function book(executor: Executor, tenantId: string, customerIds: readonly string[] | null): Promise<PlanBook> {
    const [rated, costs] = await Promise.all([
      repo.planVersions(executor, tenantId, customerIds),
      repo.costPlans(executor, tenantId, customerIds),
    ])
    const versions = [...rated.map(toPlan), ...costs.map(costPlanVersion)].sort(
      (a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime() || a.version - b.version,
    )
    return { versions }
  }

  /**
   * A period's billed lines (usage as billed now, plus an adjustment for what else the ledger holds),
   * their sum, and the minimum commitment of the plan in force at the period's end (or now).
   */
  async function periodBill(tenantId: string, customerId: string, period: { start: Date; end: Date }, now: Date) {
    const planBook = await book(db, tenantId, [customerId])
    // The plan at the period's end (or now, for the current period) sets the minimum commitment.
    const at = now < period.end ? now : new Date(period.end.getTime() - 1)
    const plan = planAt(planBook, customerId, at)
    const [rows, ledger] = await Promise.all([
      repo.periodLines(db, tenantId, customerId, period.start, period.end),
      billedAmount(db, tenantId, customerId, period.start, period.end),
    ])
    const versionOf = new Map(planBook.versions.map((v) => [v.id, v]))
    // In plan order: version, then the rule's position in it, then tier and usage type.
    const position = (r: repo.PeriodLineRow) => {
      const rules = r.plan_id ? versionOf.get(r.plan_id)?.rules : undefined
      const i = rules?.findIndex((x) => x.id === r.rule_id) ?? -1
      return i === -1 ? (r.rule_id === null ? -1 : 1e6) : i
    }
    rows.sort(
      (a, b) =>
        (a.plan_version ?? -1) - (b.plan_version ?? -1) ||
        (a.plan_id ?? '').localeCompare(b.plan_id ?? '') ||
        position(a) - position(b) ||
        (a.tier ?? 0) - (b.tier ?? 0) ||
        (a.usage_type ?? '').localeCompare(b.usage_type ?? ''),
    )
    const lines: InvoiceLineView[] = rows.map((r) => {
      const kind = (r.rule ?? 'USAGE') as InvoiceLineKind
      const version = r.plan_id ? versionOf.get(r.plan_id) : undefined
      return {
        kind,
        description: describe(kind, r, version),
        planId: r.plan_id,
        planVersion: r.plan_version,
        ruleId: r.rule_id,
        tier: r.tier,
        usageType: r.usage_type,
        quantity: r.quantity,
        unitPrice: r.unit_price,
        amount: new Decimal(r.amount).toFixed(),
      }
    })
    let usage = lines.reduce((s, l) => s.plus(l.amount), ZERO)
    // The lines are as billed now (corrections included); anything else the ledger holds shows as an adjustment.
    const adjustment = new Decimal(ledger).minus(usage)
    if (!adjustment.isZero()) {
      lines.push({
        kind: 'ADJUSTMENT',
        description: 'Corrections (re-pricing, re-rating) to usage of this period',
        planId: null,
        planVersion: null,
        ruleId: null,
        tier: null,
        usageType: null,
        quantity: null,
        unitPrice: null,
        amount: adjustment.toFixed(),
      })
      usage = usage.plus(adjustment)
    }
    const rule = plan?.rules.find((r) => r.type === 'MINIMUM')
    const minimum = rule?.type === 'MINIMUM' ? rule : undefined
    const trueUp = (amount: Decimal) => (minimum ? Decimal.max(0, new Decimal(minimum.amount).minus(amount)) : ZERO)
    return { plan, lines, usage, minimum, trueUp }
  }

  const service: RatingService = {
    async setPlan(tenant, input) {
      const customerId = checkCustomerId(input.customerId, 'input.customerId')
      const now = clock.now()
      const effectiveFrom = input.effectiveFrom ?? now
      const retroactive = input.retroactive === true
      if (retroactive && effectiveFrom.getTime() < now.getTime() - 400 * 86_400_000)
        throw badInput('a retroactive effectiveFrom is at most 400 days in the past', 'input.effectiveFrom')
      if (!retroactive && effectiveFrom.getTime() < now.getTime() - 1000)
        throw badInput(
          'effectiveFrom must not be in the past: a plan change never rewrites what was billed (set retroactive: true, then re-rate the periods explicitly with rerateUsage)',
          'input.effectiveFrom',
        )
      if (input.rules.length === 0) throw badInput('a plan has at least one rule', 'input.rules')
      const rules = parseRules(input.rules)
      for (let attempt = 0; ; attempt++) {
        try {
          // The new version and its audit entry commit together.
          return await db.transaction().execute(async (trx) => {
            const previous = (await repo.planVersions(trx, tenant.id, customerId === null ? [] : [customerId]))
              .filter((r) => r.customer_id === customerId)
              .sort((a, b) => a.version - b.version)
              .at(-1)
            const row = toPlan(
              await repo.insertPlanVersion(trx, {
                tenantId: tenant.id,
                id: randomUUID(),
                customerId,
                effectiveFrom: effectiveFrom < now && !retroactive ? now : effectiveFrom,
                prepaidOnly: input.prepaidOnly ?? false,
                rules,
              }),
            )
            await audit?.record(trx, {
              tenantId: tenant.id,
              action: 'ratingPlan.set',
              entityType: 'RatingPlan',
              entityId: customerId ?? 'default',
              before: previous ? toPlan(previous) : null,
              after: row,
            })
            return row
          })
        } catch (error) {
          // Two versions written at once for one owner: the unique version index refuses one; take the next.
          if (attempt < 3 && /rating_plans_version|duplicate key/.test(String(error))) continue
          throw error
        }
      }
    },

    async planHistory(tenantId, customerId) {
      const owner = checkCustomerId(customerId, 'customerId')
      const { versions } = await book(db, tenantId, owner === null ? [] : [owner])
      return versions.filter((v) => v.customerId === owner)
    },

    async planInForce(tenantId, customerId, at, executor = db) {
      return planAt(await book(executor, tenantId, [customerId]), customerId, at)
    },

    book: (executor, tenantId, customerIds) => book(executor, tenantId, customerIds),

    async rateMetered(trx, tenantId, items, options) {
      const keys: repo.CounterKey[] = []
      for (const item of items) {
        const { start } = periodOf(item.ts)
        for (const rule of meteredRules(item.plan))
          keys.push({ customerId: item.customerId, planId: item.plan.id, periodStart: start, ruleId: rule.id })
      }
      const locked = await repo.lockCounters(trx, tenantId, keys)
      // Read under the lock: a concurrent batch of this customer that stored one of these ids has committed.
      const ids = items.map((i) => i.eventId)
      let known: Set<string>
      if (options?.stored) {
        const pending = await repo.stillUnpricedIds(trx, tenantId, ids)
        known = new Set(ids.filter((id) => !pending.has(id)))
      } else known = await repo.knownEventIds(trx, tenantId, ids)
      // One live map of rule id → quantity per (customer, plan version, period).
      const meters = new Map<string, Map<string, Decimal>>()
      const results: (MeteredResult | null)[] = []
      for (const item of items) {
        if (known.has(item.eventId)) {
          results.push(null)
          continue
        }
        const { start } = periodOf(item.ts)
        const scope = [item.customerId, item.plan.id, start.toISOString()].join('\u0001')
        let counters = meters.get(scope)
        if (!counters) {
          counters = new Map()
          for (const rule of meteredRules(item.plan)) {
            const q = locked.get(
              repo.counterKey({
                customerId: item.customerId,
                planId: item.plan.id,
                periodStart: start,
                ruleId: rule.id,
              }),
            )
            counters.set(rule.id, new Decimal(q ?? 0))
          }
          meters.set(scope, counters)
        }
        const rated = rateEvent(item.plan, item, counters)
        results.push({ lines: ratedLinesJson(item.plan, rated), amount: rated.amount.toFixed() })
      }
      const updates: (repo.CounterKey & { quantity: string })[] = []
      for (const [scope, counters] of meters) {
        const [customerId, planId, startIso] = scope.split('\u0001') as [string, string, string]
        for (const [ruleId, quantity] of counters)
          updates.push({ customerId, planId, periodStart: new Date(startIso), ruleId, quantity: quantity.toFixed() })
      }
      updates.sort((a, b) => {
        const ka = repo.counterKey(a)
        const kb = repo.counterKey(b)
        return ka < kb ? -1 : ka > kb ? 1 : 0
      })
      await repo.saveCounters(trx, tenantId, updates)
      return results
    },

    async withMinimum(tenantId, customerIds, at) {
      const planBook = await book(db, tenantId, customerIds)
      return new Set(customerIds.filter((c) => planAt(planBook, c, at)?.rules.some((r) => r.type === 'MINIMUM')))
    },

    async periodTrueUp(tenantId, customerId, periodStart) {
      const { usage, trueUp } = await periodBill(tenantId, customerId, periodOf(periodStart), clock.now())
      const up = trueUp(usage)
      return { subtotal: usage.plus(up).toFixed(), trueUp: up.toFixed() }
    },

    async meters(tenantId, customerId, plan, at) {
      const { start } = periodOf(at)
      const stored = await repo.readCounters(db, tenantId, customerId, plan.id, start)
      return new Map(meteredRules(plan).map((r) => [r.id, new Decimal(stored.get(r.id) ?? 0)]))
    },

    async invoicePreview(tenant, customerId, periodStart) {
      if (customerId.length === 0 || customerId.length > 255)
        throw badInput('customerId must be 1-255 characters', 'customerId')
      const now = clock.now()
      const period = periodOf(periodStart ?? now)
      if (periodStart && periodStart.getTime() !== period.start.getTime())
        throw badInput(
          `periodStart must be the start of a period (a UTC month), e.g. ${period.start.toISOString()}`,
          'periodStart',
        )
      if (period.start.getTime() > now.getTime()) throw badInput('periodStart must not be in the future', 'periodStart')
      const { plan, lines, usage, minimum, trueUp } = await periodBill(tenant.id, customerId, period, now)
      const up = trueUp(usage)
      if (minimum && up.greaterThan(0))
        lines.push({
          kind: 'MINIMUM_TRUE_UP',
          description: `Minimum commitment of ${minimum.amount} ${tenant.currency} per period`,
          planId: plan!.id,
          planVersion: plan!.version,
          ruleId: minimum.id,
          tier: null,
          usageType: null,
          quantity: null,
          unitPrice: null,
          amount: up.toFixed(),
        })
      const subtotal = usage.plus(up)
      const credit = credits ? await credits.forPeriod(tenant, customerId, period) : { applied: '0', remaining: null }
      const projectedUsage = forecastSpend(usage, period, now)
      return {
        customerId,
        currency: tenant.currency,
        periodStart: period.start,
        periodEnd: period.end,
        plan,
        lines,
        subtotal: subtotal.toFixed(),
        creditsApplied: new Decimal(credit.applied).toFixed(),
        creditsRemaining: credit.remaining,
        total: subtotal.minus(credit.applied).toFixed(),
        projectedUsage: projectedUsage.toFixed(),
        projectedSubtotal: projectedUsage.plus(trueUp(projectedUsage)).toFixed(),
      }
    },
  }
  return service
}

function describe(kind: InvoiceLineKind, r: repo.PeriodLineRow, plan: RatingPlan | undefined): string {
  const v = plan ? ` (plan v${plan.version})` : ''
  const on = r.usage_type ? ` ${r.usage_type}` : ''
  switch (kind) {
    case 'USAGE':
      return `Usage${on}`
    case 'COST_BASED':
      return `Usage${on}${v}`
    case 'AT_COST':
      return `Usage${on} at cost${v}`
    case 'FIXED_PRICE':
      return `Usage${on} at a fixed price${v}`
    case 'TOKEN_TIERS':
      return `Usage${on}, tier ${r.tier}${v}`
    case 'TOKEN_ALLOWANCE':
      return `Included${on} allowance${v}`
    case 'UNIT_FEE':
      return `Fee${on.replace(' fee:', ' ')}${v}`
    case 'AMOUNT_ALLOWANCE':
      return `Included amount${v}`
    case 'AMOUNT_TIERS':
      return `Amount tier ${r.tier}${v}`
    default:
      return kind
  }
}
