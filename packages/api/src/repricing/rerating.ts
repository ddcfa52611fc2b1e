import { randomUUID } from 'node:crypto'
import type { AuditService } from '../audit/service.ts'
import type { Tx } from '../db/database.ts'
import type { Insertable, PricedLineJson, Tenant, UsageCorrectionTable, UsageEventRow } from '../db/types.ts'
import { Decimal, ZERO } from '../money/decimal.ts'
import type { CostLine } from '../pricing/engine.ts'
import { billAtPlan, storedPricing } from '../pricing/price-event.ts'
import { isPricingPlan, meteredRules, periodOf, planAt, ratedLinesJson, type PlanBook } from '../rating/plans.ts'
import { feeUsageType, rateEvent } from '../rating/rate.ts'
import * as ratingRepo from '../rating/repository.ts'
import type { RatingPlan } from '../rating/rules.ts'
import type { RatingService } from '../rating/service.ts'
import { badInput } from '../shared/errors.ts'
import type { BilledChange } from '../usage/pipeline.ts'
import { addToLineRollups, addToRollups } from '../usage/repository.ts'
import {
  mergeLineRollups,
  mergeRollups,
  rollupDimensions,
  type LineRollupDelta,
  type RollupDelta,
} from '../usage/rollups.ts'
import { correctionRollups, lineDeltas, sameLines } from './deltas.ts'
import * as repo from './repository.ts'
import type { RepricingDeps } from './types.ts'

/**
 * Re-rating (rerateUsage): a customer's periods rated again, event by event in event order
 * (timestamp, then id), under the plan version in force at each event — its cost lines as they are
 * billed now (re-pricing's latest correction, else the event's), so a re-rating changes what the
 * customer is billed, never what the usage cost. Like re-pricing, it never edits an event: each
 * event whose bill changes gets a usage_corrections entry, rollups, Stripe, budgets and credits
 * move by the difference (the billed-change pipeline), the period counters are set to what the
 * period's events add up to, and a rating_reratings row and an audit entry record the change.
 * Re-running it rates the same events in the same order from the same bills: it changes nothing.
 */

interface RerateInput {
  customerId?: string | null | undefined
  from: Date
  to: Date
  reason: string
}

export interface ReratingView {
  id: string
  customerId: string
  periodStart: Date
  reason: string
  events: number
  correctedEvents: number
  amountDelta: string
  createdAt: Date
}

export interface RerateResult {
  /** The whole periods (UTC months) the range was widened to. */
  periodStart: Date
  periodEnd: Date
  /** PRICED events looked at. */
  examined: number
  /** Correction entries written (0 on a re-run). */
  corrected: number
  amountDelta: string
  /** One per customer period that changed (none on a re-run). */
  reratings: ReratingView[]
}

export interface ReratingService {
  rerateUsage(tenant: Tenant, input: RerateInput): Promise<RerateResult>
  listReratings(
    tenantId: string,
    query: { customerId?: string | null | undefined; first?: number | null | undefined },
  ): Promise<ReratingView[]>
}

const MAX_RANGE_MS = 400 * 86_400_000

interface Billed {
  lines: PricedLineJson[]
  cost: string
  amount: string
}

const fixed = (x: string | undefined) => (x === undefined ? null : new Decimal(x).toFixed())

/** Same bill and the same explanation (plan version, rule parts): nothing to correct. */
function sameBill(a: readonly PricedLineJson[], b: readonly PricedLineJson[]): boolean {
  if (!sameLines(a, b)) return false
  const parts = (l: PricedLineJson) =>
    JSON.stringify(
      (l.parts ?? []).map((p) => [
        p.ruleId,
        p.rule,
        p.tier ?? null,
        fixed(p.quantity),
        fixed(p.unitPrice),
        fixed(p.amount),
      ]),
    )
  return a.every((line, i) => {
    const other = b[i]!
    return (
      (line.planId ?? null) === (other.planId ?? null) &&
      (line.planVersion ?? null) === (other.planVersion ?? null) &&
      parts(line) === parts(other)
    )
  })
}

/** The cost lines a bill was made from: its lines less the unit-fee lines a plan added. */
function costLinesOf(lines: readonly PricedLineJson[]): CostLine[] {
  return lines
    .filter((l) => !l.usageType.startsWith(feeUsageType('')))
    .map((l) => ({
      usageType: l.usageType,
      quantity: new Decimal(l.quantity),
      unitPrice: new Decimal(l.unitPrice),
      cost: new Decimal(l.cost),
      priceId: l.priceId,
    }))
}

/** An event's bill under `plan`, from its current cost lines (pure; `counters` advance for metered rules). */
function rerateEvent(
  plan: RatingPlan | null,
  event: Pick<UsageEventRow, 'canonical_model' | 'model' | 'units'>,
  current: Billed,
  counters: Map<string, Decimal>,
): Billed {
  const lines = costLinesOf(current.lines)
  if (plan && !isPricingPlan(plan)) {
    const rated = rateEvent(
      plan,
      { lines, model: event.canonical_model ?? event.model, units: event.units ?? [] },
      counters,
    )
    return { lines: ratedLinesJson(plan, rated), cost: current.cost, amount: rated.amount.toFixed() }
  }
  const rule = plan?.rules[0]
  const billed = billAtPlan(
    { status: 'PRICED', lines, cost: lines.reduce((s, l) => s.plus(l.cost), ZERO) },
    rule?.type === 'COST_BASED' ? { kind: rule.kind, percent: rule.percent } : null,
  )
  return storedPricing(billed)
}

/** Every plan version in force at some instant of [start, end) for the customer. */
function plansDuring(book: PlanBook, customerId: string, start: Date, end: Date): RatingPlan[] {
  const instants = [start, ...book.versions.map((v) => v.effectiveFrom).filter((t) => t > start && t < end)]
  const plans = new Map<string, RatingPlan>()
  for (const at of instants) {
    const plan = planAt(book, customerId, at)
    if (plan) plans.set(plan.id, plan)
  }
  return [...plans.values()]
}

export function createRerating({
  db,
  clock,
  rating,
  audit = null,
  followers,
}: Pick<RepricingDeps, 'db' | 'clock' | 'followers'> & {
  rating: Pick<RatingService, 'book'>
  audit?: Pick<AuditService, 'record'> | null
}): ReratingService {
  const toView = (r: ratingRepo.ReratingRow): ReratingView => ({
    id: r.id,
    customerId: r.customer_id,
    periodStart: r.period_start,
    reason: r.reason,
    events: r.events,
    correctedEvents: r.corrected_events,
    amountDelta: new Decimal(r.amount_delta).toFixed(),
    createdAt: r.created_at,
  })

  /** One customer period, in one transaction. */
  async function reratePeriod(
    trx: Tx,
    tenant: Tenant,
    customerId: string,
    period: { start: Date; end: Date },
    reason: string,
  ): Promise<{ examined: number; view: ReratingView | null; changes: BilledChange[] }> {
    const tenantId = tenant.id
    // One re-pricing or re-rating per tenant at a time: both write corrections of the same events.
    await repo.lockTenantRepricing(trx, tenantId)
    const book = await rating.book(trx, tenantId, [customerId])
    // Lock the counters of every plan version in force during the period before reading its
    // events: a concurrent ingest of this customer rates after this commits, from the counters set here.
    const keys: ratingRepo.CounterKey[] = []
    for (const plan of plansDuring(book, customerId, period.start, period.end))
      for (const rule of meteredRules(plan))
        keys.push({ customerId, planId: plan.id, periodStart: period.start, ruleId: rule.id })
    await ratingRepo.lockCounters(trx, tenantId, keys)
    const events = await ratingRepo.pricedEventsInOrder(trx, tenantId, customerId, period.start, period.end)
    const latest = await repo.latestCorrections(
      trx,
      tenantId,
      events.map((e) => e.id),
    )
    const meters = new Map<string, Map<string, Decimal>>()
    for (const k of keys) {
      const counters = meters.get(k.planId) ?? new Map<string, Decimal>()
      counters.set(k.ruleId, ZERO)
      meters.set(k.planId, counters)
    }
    const now = clock.now()
    const corrections: Insertable<UsageCorrectionTable>[] = []
    const rollups: RollupDelta[] = []
    const lineRollups: LineRollupDelta[] = []
    let delta = ZERO
    for (const event of events) {
      const ts = new Date(event.ts)
      const current = latest.get(event.id) ?? {
        lines: event.lines,
        cost: event.cost ?? '0',
        amount: event.amount ?? '0',
      }
      const plan = planAt(book, customerId, ts)
      const counters = (plan && meters.get(plan.id)) || new Map<string, Decimal>()
      const next = rerateEvent(plan, event, current, counters)
      if (sameBill(current.lines, next.lines) && new Decimal(current.amount).eq(next.amount)) continue
      const dims = rollupDimensions(event)
      corrections.push({
        tenant_id: tenantId,
        event_id: event.id,
        customer_id: customerId,
        ts,
        provider: dims.provider,
        model: dims.model,
        feature: dims.feature,
        old_lines: JSON.stringify(current.lines),
        new_lines: JSON.stringify(next.lines),
        old_cost: current.cost,
        new_cost: next.cost,
        old_amount: current.amount,
        new_amount: next.amount,
        reason,
        created_at: now,
      })
      delta = delta.plus(new Decimal(next.amount).minus(current.amount))
      const deltas = correctionRollups(tenantId, event, current, next)
      rollups.push(...deltas.rollups)
      lineRollups.push(...deltas.lineRollups)
    }
    // The counters hold what the period's events add up to, whatever they held before.
    await ratingRepo.saveCounters(
      trx,
      tenantId,
      keys.map((k) => ({ ...k, quantity: (meters.get(k.planId)?.get(k.ruleId) ?? ZERO).toFixed() })),
    )
    if (corrections.length === 0) return { examined: events.length, view: null, changes: [] }
    const inserted = await repo.insertCorrections(trx, corrections)
    await addToRollups(trx, mergeRollups(rollups))
    await addToLineRollups(trx, mergeLineRollups(lineRollups))
    const byEvent = new Map(events.map((e) => [e.id, e]))
    const correctionOf = new Map(corrections.map((c) => [c.event_id, c]))
    const changes: BilledChange[] = inserted.map((row) => {
      const c = correctionOf.get(row.event_id)!
      const event = byEvent.get(row.event_id)!
      return {
        key: `${row.event_id}#correction-${row.id}`,
        eventId: row.event_id,
        customerId,
        ts: new Date(event.ts),
        amount: new Decimal(c.new_amount as string).minus(c.old_amount as string).toFixed(),
        lines: lineDeltas(
          JSON.parse(c.old_lines as string) as PricedLineJson[],
          JSON.parse(c.new_lines as string) as PricedLineJson[],
        ),
        model: event.canonical_model ?? event.model,
      }
    })
    const view: ReratingView = {
      id: 'rr_' + randomUUID(),
      customerId,
      periodStart: period.start,
      reason,
      events: events.length,
      correctedEvents: corrections.length,
      amountDelta: delta.toFixed(),
      createdAt: now,
    }
    await ratingRepo.insertRerating(trx, { tenantId, ...view })
    await audit?.record(trx, {
      tenantId,
      action: 'usage.rerate',
      entityType: 'RatingRerating',
      entityId: view.id,
      before: null,
      after: view,
    })
    return { examined: events.length, view, changes }
  }

  return {
    async rerateUsage(tenant, input) {
      const customerId = input.customerId ?? null
      if (customerId !== null && (customerId.length === 0 || customerId.length > 255))
        throw badInput('customerId must be 1-255 characters', 'input.customerId')
      if (input.to <= input.from) throw badInput('to must be after from', 'input.to')
      if (input.to.getTime() - input.from.getTime() > MAX_RANGE_MS)
        throw badInput('re-rate at most 400 days at a time', 'input.to')
      const reason = input.reason.trim()
      if (reason.length === 0 || reason.length > 500) throw badInput('reason must be 1-500 characters', 'input.reason')
      // Whole periods: a meter's charge depends on every event of its period before it.
      const start = periodOf(input.from).start
      const end = periodOf(new Date(input.to.getTime() - 1)).end
      const customers =
        customerId !== null ? [customerId] : await ratingRepo.customersWithPricedEvents(db, tenant.id, start, end)
      const result: RerateResult = {
        periodStart: start,
        periodEnd: end,
        examined: 0,
        corrected: 0,
        amountDelta: '0',
        reratings: [],
      }
      let total = ZERO
      for (const customer of customers) {
        for (let p = periodOf(start); p.start < end; p = periodOf(p.end)) {
          const period = p
          const { outcome, batch } = await db.transaction().execute(async (trx) => {
            const outcome = await reratePeriod(trx, tenant, customer, period, reason)
            const batch = await followers.changed(trx, tenant.id, outcome.changes)
            return { outcome, batch }
          })
          await followers.notify(batch)
          result.examined += outcome.examined
          if (outcome.view) {
            result.corrected += outcome.view.correctedEvents
            total = total.plus(outcome.view.amountDelta)
            result.reratings.push(outcome.view)
          }
        }
      }
      result.amountDelta = total.toFixed()
      return result
    },

    async listReratings(tenantId, query) {
      const first = query.first ?? 100
      if (first < 1 || first > 500) throw badInput('first must be 1-500', 'first')
      const customerId = query.customerId ?? null
      if (customerId !== null && (customerId.length === 0 || customerId.length > 255))
        throw badInput('customerId must be 1-255 characters', 'customerId')
      return (await ratingRepo.listReratings(db, tenantId, { customerId, first })).map(toView)
    },
  }
}
