import type { AppliedPriceChange } from '@burnrate/catalog-sync'
import type { CatalogService } from '../catalog/types.ts'
import type { PricedLineJson, UsageEventRow } from '../db/types.ts'
import { billAtPlan, storedPricing, type UnpricedReason } from '../pricing/price-event.ts'
import { isPricingPlan, needsCounters, planAt, ratedLinesJson } from '../rating/plans.ts'
import { rateEvent } from '../rating/rate.ts'
import type { MeteredItem } from '../rating/service.ts'
import type { BilledChange, IngestBatch } from '../usage/pipeline.ts'
import { addToLineRollups, addToRollups, priceStillUnpriced, setUnpricedReasons } from '../usage/repository.ts'
import { latePricingRollups, lineDeltas, sameReason } from './deltas.ts'
import * as repo from './repository.ts'
import { priceStoredEvent } from './stored-event.ts'
import type { RepricingDeps, RepricingService, UnpricedScope } from './types.ts'

const BATCH = 500

/**
 * The sweep a committed catalog change needs: events of the models it gave a price, from the
 * start of that price. Null when it priced nothing new (it only closed rows); everything when the
 * changes are unknown (another process changed the catalog).
 */
export function sweepScopeOf(changes: readonly AppliedPriceChange[]): UnpricedScope | null {
  if (changes.length === 0) return {}
  const opened = changes.filter((c) => c.newUnitPrice !== null)
  if (opened.length === 0) return null
  return {
    models: opened.map((c) => ({
      tenantId: c.tenantId,
      provider: c.provider,
      model: c.model,
      from: new Date(c.effectiveFrom),
    })),
  }
}

/** Late pricing: UNPRICED events the catalog can now price get priced, once each. */
export function createLatePricing({
  db,
  catalog,
  logger,
  rating,
  followers,
}: RepricingDeps): RepricingService['priceUnpriced'] {
  return async (scope = {}) => {
    await catalog.ensureFresh()
    const tenantIds = new Set(scope.models?.map((m) => m.tenantId))
    const onlyTenant = scope.tenantId ?? (tenantIds.size === 1 && !tenantIds.has(null) ? [...tenantIds][0]! : undefined)
    const names = await repo.unpricedNames(db, { tenantId: onlyTenant, eventIds: scope.eventIds })
    let priced = 0
    for (const name of names) {
      const resolved = catalog.resolve(name.model, name.provider, name.tenant_id)
      if (!resolved) continue
      // A catalog change can only price its own model's events, from the start of the row it opened.
      let from: Date | null = null
      if (scope.models) {
        const matching = scope.models.filter(
          (m) =>
            (m.tenantId === null || m.tenantId === name.tenant_id) &&
            m.provider === resolved.provider &&
            m.model === resolved.model,
        )
        if (matching.length === 0) continue
        from = new Date(Math.min(...matching.map((m) => m.from.getTime())))
      }
      let afterSeq = 0
      for (;;) {
        const events = await repo.unpricedBatch(db, name, { afterSeq, limit: BATCH, from, eventIds: scope.eventIds })
        if (events.length === 0) break
        afterSeq = Number(events.at(-1)!.seq)
        const plans = await rating.book(db, name.tenant_id, [...new Set(events.map((e) => e.customer_id))])
        const updates = new Map<string, { before: UsageEventRow; after: UsageEventRow }>()
        const stillUnpriced: { id: string; reason: UnpricedReason }[] = []
        // Events under a plan with meters (tiers, allowances): rated in the transaction, under the counters' lock.
        const metered: MeteredItem[] = []
        for (const event of events) {
          const prices = catalog.pricesAt(resolved.provider, resolved.model, event.ts, event.tenant_id)
          const ts = new Date(event.ts)
          let priced
          try {
            priced = priceStoredEvent(prices, event)
          } catch (error) {
            logger.warn('unpriced event cannot be priced', {
              tenantId: event.tenant_id,
              eventId: event.id,
              error: String(error),
            })
            continue
          }
          if (priced.status === 'UNPRICED') {
            if (!sameReason(event.unpriced_reason, priced.reason))
              stillUnpriced.push({ id: event.id, reason: priced.reason })
            continue
          }
          // Billed by the plan in force at the event, exactly as ingest bills (usage/service.ts).
          const inForce = planAt(plans, event.customer_id, ts)
          const costRule = inForce?.rules.find((r) => r.type === 'COST_BASED')
          const plan = costRule?.type === 'COST_BASED' ? { kind: costRule.kind, percent: costRule.percent } : null
          let billed: { lines: PricedLineJson[]; amount: string }
          if (inForce && !isPricingPlan(inForce)) {
            const units = event.units ?? []
            if (needsCounters(inForce)) {
              metered.push({
                eventId: event.id,
                customerId: event.customer_id,
                ts,
                plan: inForce,
                lines: priced.lines,
                model: resolved.model,
                units,
              })
              billed = { lines: [], amount: '0' }
            } else {
              const rated = rateEvent(inForce, { lines: priced.lines, model: resolved.model, units }, new Map())
              billed = { lines: ratedLinesJson(inForce, rated), amount: rated.amount.toFixed() }
            }
          } else billed = storedPricing(billAtPlan(priced, plan))
          updates.set(event.id, {
            before: event,
            after: {
              ...event,
              status: 'PRICED',
              canonical_provider: resolved.provider,
              canonical_model: resolved.model,
              lines: billed.lines,
              cost: priced.cost.toFixed(),
              amount: billed.amount,
              plan_kind: plan?.kind ?? null,
              plan_percent: plan?.percent ?? null,
            },
          })
        }
        // What the event now lacks (e.g. a negotiated price named input only): say so, still UNPRICED.
        await setUnpricedReasons(db, name.tenant_id, stillUnpriced)
        if (updates.size === 0) continue
        // Rated in event order (timestamp, then id), after the period's earlier usage.
        metered.sort((a, b) => a.ts.getTime() - b.ts.getTime() || (a.eventId < b.eventId ? -1 : 1))
        const billed = await db.transaction().execute(async (trx) => {
          const rated = new Set<string>()
          const pending = new Map(updates)
          if (metered.length > 0) {
            const results = await rating.rateMetered(trx, name.tenant_id, metered, { stored: true })
            for (const [i, result] of results.entries()) {
              const id = metered[i]!.eventId
              // Priced meanwhile by another sweep: not this one's to price.
              if (!result) {
                pending.delete(id)
                continue
              }
              const update = pending.get(id)!
              pending.set(id, { ...update, after: { ...update.after, lines: result.lines, amount: result.amount } })
              rated.add(id)
            }
          }
          // One statement, rows locked in id order; only events still UNPRICED change.
          const pricedIds = await priceStillUnpriced(
            trx,
            name.tenant_id,
            [...pending.values()].map(({ after }) => ({
              id: after.id,
              canonical_provider: after.canonical_provider!,
              canonical_model: after.canonical_model!,
              lines: JSON.stringify(after.lines),
              cost: after.cost!,
              amount: after.amount!,
              plan_kind: after.plan_kind,
              plan_percent: after.plan_percent,
            })),
          )
          // A rated event's counters moved: it must be the one priced here (else roll back; the next sweep prices it).
          for (const id of rated)
            if (!pricedIds.has(id)) throw new Error(`late-priced event ${id} was priced meanwhile`)
          const done = [...pending.values()].filter(({ after }) => pricedIds.has(after.id))
          const deltas = latePricingRollups(name.tenant_id, done)
          await addToRollups(trx, deltas.rollups)
          await addToLineRollups(trx, deltas.lineRollups)
          // Ingest billed nothing for an UNPRICED event: its whole amount is new to budgets and Stripe.
          const changes: BilledChange[] = done.map(({ after }) => ({
            key: after.id,
            eventId: after.id,
            customerId: after.customer_id,
            ts: new Date(after.ts),
            amount: after.amount!,
            lines: lineDeltas([], after.lines),
            model: after.canonical_model ?? after.model,
          }))
          const batch = await followers.changed(trx, name.tenant_id, changes)
          priced += done.length
          return batch
        })
        await followers.notify(billed)
      }
    }
    if (priced > 0) logger.info('unpriced events priced', { events: priced })
    return priced
  }
}

/**
 * Closes the race between ingest and a catalog change. A batch priced against a snapshot without
 * a new price can commit after that change's sweep looked for UNPRICED events, and would stay
 * UNPRICED until some later change. So after commit, when the batch stored UNPRICED events and
 * the catalog's version has moved since the batch was priced, those events are swept here. One of
 * the two always sees the other: the change's sweep starts after its commit, so it sees the
 * events if they committed first; otherwise the change committed before the version read below,
 * which then differs and this sweep prices them with the new catalog. Ingest step `repricing.catchUp`
 * (usage/pipeline.ts), after commit.
 */
export function catchUpUnpriced(
  catalog: CatalogService,
  repricing: Pick<RepricingService, 'priceUnpriced'>,
): (batch: IngestBatch) => Promise<void> {
  return async ({ tenant, inserted, catalogVersion }) => {
    const unpriced = inserted.filter((e) => e.status === 'UNPRICED').map((e) => e.id)
    if (unpriced.length === 0) return
    await catalog.ensureFresh()
    if (catalog.version() === catalogVersion) return
    await repricing.priceUnpriced({ tenantId: tenant.id, eventIds: unpriced })
  }
}
