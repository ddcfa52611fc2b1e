import type { Db } from '../db/database.ts'
import { Decimal } from '../money/decimal.ts'
import { meteredRules, periodOf, ratedLinesJson } from './plans.ts'
import { rateEvent } from './rate.ts'
import * as repo from './repository.ts'
import type { MeteredResult, RatingService } from './types.ts'

/** Rating events as they are recorded, against the period meters of their plan. */
export function meteringUseCases(db: Db): Pick<RatingService, 'rateMetered' | 'meters'> {
  return {
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

    async meters(tenantId, customerId, plan, at) {
      const { start } = periodOf(at)
      const stored = await repo.readCounters(db, tenantId, customerId, plan.id, start)
      return new Map(meteredRules(plan).map((r) => [r.id, new Decimal(stored.get(r.id) ?? 0)]))
    },
  }
}
