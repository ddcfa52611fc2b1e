import type { Insertable, PricedLineJson, UsageCorrectionTable } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { UnpricedReason } from '../pricing/price-event.ts'
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
import { repriceStoredEvent } from './stored-event.ts'
import type { RepricingDeps, RepricingService } from './types.ts'

const BATCH = 500
const MAX_RANGE_MS = 400 * 86_400_000

/**
 * Corrections: a tenant's priced events re-priced with the catalog as it is now. The event is
 * never edited; each changed one gets a usage_corrections entry, and rollups, Stripe and budgets
 * move by the difference. Re-running is a no-op.
 */
export function createCorrections({
  db,
  clock,
  catalog,
  followers,
}: RepricingDeps): Pick<RepricingService, 'repriceUsage' | 'repriceRequest' | 'listCorrections'> {
  const repriceUsage: RepricingService['repriceUsage'] = async (tenantId, range) => {
    await catalog.ensureFresh()
    const result = { examined: 0, corrected: 0, ratedKept: 0, costDelta: new Decimal(0), amountDelta: new Decimal(0) }
    const unpriced: UnpricedReason[] = []
    let afterSeq = 0
    for (;;) {
      const events = await repo.pricedBatch(db, tenantId, range, { afterSeq, limit: BATCH })
      if (events.length === 0) break
      afterSeq = Number(events.at(-1)!.seq)
      result.examined += events.length
      const billed = await db.transaction().execute(async (trx) => {
        // One re-pricing per tenant at a time: a concurrent run sees this one's corrections.
        await repo.lockTenantRepricing(trx, tenantId)
        const latest = await repo.latestCorrections(
          trx,
          tenantId,
          events.map((e) => e.id),
        )
        const corrections: Insertable<UsageCorrectionTable>[] = []
        const rollups: RollupDelta[] = []
        const lines: LineRollupDelta[] = []
        for (const event of events) {
          const prices = catalog.pricesAt(range.provider, range.model, event.ts, tenantId)
          const current = latest.get(event.id) ?? {
            lines: event.lines,
            cost: event.cost ?? '0',
            amount: event.amount ?? '0',
          }
          // An event billed under a rating plan (its lines name the plan) keeps its bill: a correction
          // here would re-bill it by markup alone; re-rating is its own operation (rerateUsage, rerating.ts).
          if (current.lines.some((line) => line.planId)) {
            result.ratedKept += 1
            continue
          }
          const plan = event.plan_kind ? { kind: event.plan_kind, percent: event.plan_percent! } : null
          const next = repriceStoredEvent(prices, event, plan)
          if (next.unpriced) {
            // Never re-billed at zero for want of a price: the event keeps its bill, and the result says why.
            unpriced.push(next.unpriced)
            continue
          }
          if (sameLines(current.lines, next.lines)) continue
          const dims = rollupDimensions(event)
          corrections.push({
            tenant_id: tenantId,
            event_id: event.id,
            customer_id: event.customer_id,
            ts: event.ts,
            provider: dims.provider,
            model: dims.model,
            feature: dims.feature,
            old_lines: JSON.stringify(current.lines),
            new_lines: JSON.stringify(next.lines),
            old_cost: current.cost,
            new_cost: next.cost,
            old_amount: current.amount,
            new_amount: next.amount,
            reason: range.reason,
            created_at: clock.now(),
          })
          result.costDelta = result.costDelta.plus(new Decimal(next.cost).minus(current.cost))
          result.amountDelta = result.amountDelta.plus(new Decimal(next.amount).minus(current.amount))
          const deltas = correctionRollups(tenantId, event, current, next)
          rollups.push(...deltas.rollups)
          lines.push(...deltas.lineRollups)
        }
        if (corrections.length === 0) return null
        const inserted = await repo.insertCorrections(trx, corrections)
        await addToRollups(trx, mergeRollups(rollups))
        await addToLineRollups(trx, mergeLineRollups(lines))
        // One correction per event per batch: the event id finds each row's correction and event.
        const byEvent = new Map(events.map((e) => [e.id, e]))
        const correctionOf = new Map(corrections.map((c) => [c.event_id, c]))
        const changes: BilledChange[] = inserted.map((row) => {
          const correction = correctionOf.get(row.event_id)!
          const event = byEvent.get(row.event_id)!
          return {
            key: `${row.event_id}#correction-${row.id}`,
            eventId: row.event_id,
            customerId: event.customer_id,
            ts: new Date(event.ts),
            amount: new Decimal(correction.new_amount as string).minus(correction.old_amount as string).toFixed(),
            lines: lineDeltas(
              JSON.parse(correction.old_lines as string) as PricedLineJson[],
              JSON.parse(correction.new_lines as string) as PricedLineJson[],
            ),
            model: range.model,
          }
        })
        const batch = await followers.changed(trx, tenantId, changes)
        result.corrected += corrections.length
        return batch
      })
      await followers.notify(billed)
    }
    const reasons = new Map(unpriced.map((r) => [`${r.code}:${r.usageTypes.join()}`, r]))
    return {
      examined: result.examined,
      corrected: result.corrected,
      costDelta: result.costDelta.toFixed(),
      amountDelta: result.amountDelta.toFixed(),
      unpriced: unpriced.length,
      unpricedReasons: [...reasons.values()],
      ratedKept: result.ratedKept,
    }
  }

  return {
    repriceUsage,

    async repriceRequest(tenantId, request) {
      if (request.to <= request.from) throw badInput('to must be after from', 'to')
      if (request.to.getTime() - request.from.getTime() > MAX_RANGE_MS)
        throw badInput('re-price at most 400 days at a time', 'to')
      const reason = (request.reason ?? 'price correction').trim()
      if (reason.length === 0 || reason.length > 500) throw badInput('reason must be 1-500 characters', 'reason')
      await catalog.ensureFresh()
      const resolved = catalog.resolve(request.model, request.provider, tenantId)
      if (!resolved) throw badInput(`no price source knows model "${request.model}"`, 'model')
      return repriceUsage(tenantId, { from: request.from, to: request.to, ...resolved, reason })
    },

    async listCorrections(tenantId, query) {
      const first = query.first ?? 100
      if (first < 1 || first > 500) throw badInput('first must be 1-500', 'first')
      return repo.listCorrections(db, tenantId, { ...query, first })
    },
  }
}
