import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import { forecastSpend } from '../budgets/evaluate.ts'
import { Decimal, ZERO } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import { periodOf, planAt } from './plans.ts'
import { loadBook } from './plan-versions.ts'
import * as repo from './repository.ts'
import type { RatingPlan } from './rules.ts'
import type { CreditsForInvoice, InvoiceLineKind, InvoiceLineView, RatingService } from './types.ts'

/** A period's bill: the invoice preview, the minimum commitment and its true-up. */
export function invoiceUseCases(deps: {
  db: Db
  clock: Clock
  billedAmount: (executor: Executor, tenantId: string, customerId: string, from: Date, to: Date) => Promise<string>
  credits: CreditsForInvoice | null
}): Pick<RatingService, 'invoicePreview' | 'withMinimum' | 'periodTrueUp'> {
  const { db, clock, billedAmount, credits } = deps
  /**
   * A period's billed lines (usage as billed now, plus an adjustment for what else the ledger holds),
   * their sum, and the minimum commitment of the plan in force at the period's end (or now).
   */
  async function periodBill(tenantId: string, customerId: string, period: { start: Date; end: Date }, now: Date) {
    const planBook = await loadBook(db, tenantId, [customerId])
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

  return {
    async withMinimum(tenantId, customerIds, at) {
      const planBook = await loadBook(db, tenantId, customerIds)
      return new Set(customerIds.filter((c) => planAt(planBook, c, at)?.rules.some((r) => r.type === 'MINIMUM')))
    },

    async periodTrueUp(tenantId, customerId, periodStart) {
      const { usage, trueUp } = await periodBill(tenantId, customerId, periodOf(periodStart), clock.now())
      const up = trueUp(usage)
      return { subtotal: usage.plus(up).toFixed(), trueUp: up.toFixed() }
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
