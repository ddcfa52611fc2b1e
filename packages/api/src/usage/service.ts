import type { CatalogService } from '../catalog/types.ts'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { PricedLineJson, Tenant, UsageEventRow } from '../db/types.ts'
import { UsageShapeError, type CostLine } from '../pricing/engine.ts'
import { billAtPlan, priceEvent, storedPricing } from '../pricing/price-event.ts'
import { isPricingPlan, needsCounters, planAt, ratedLinesJson, type PlanBook } from '../rating/plans.ts'
import { rateEvent } from '../rating/rate.ts'
import type { RatingService } from '../rating/service.ts'
import type { RatingPlan } from '../rating/rules.ts'
import { NO_INGEST_FOLLOWERS, type IngestBatch, type IngestPipeline } from './pipeline.ts'
import * as repo from './repository.ts'
import { canonicalEventString, contentHash, verifyCanonicalSignature } from './signing.ts'
import { validateEvent, type EventError, type UsageEventInput, type ValidEvent } from './validation.ts'

export type RecordResult =
  | { status: 'RECORDED'; event: UsageEventRow; error: null }
  | { status: 'DUPLICATE'; event: UsageEventRow; error: null }
  | { status: 'REJECTED'; event: null; error: EventError }

export interface UsageService {
  /** Records events atomically as a batch: one result per input, in input order. */
  record(tenant: Tenant, inputs: readonly UsageEventInput[]): Promise<RecordResult[]>
}

interface Candidate {
  index: number
  event: ValidEvent
  hash: string
  /**
   * The row as stored, built once: inserted from it (with the JSON columns' text below), handed to
   * the pipeline and returned as the result's event. Its seq is filled in when the insert returns it.
   */
  row?: UsageEventRow
  json?: repo.EventJson
  /** Set when the plan in force keeps period counters: the amount is rated in the transaction. */
  metered?: { plan: RatingPlan; lines: readonly CostLine[]; model: string }
}

/** A batch rated an event whose id a concurrent transaction stored meanwhile: run the transaction again. */
class RatedEventRaced extends Error {}

/** The insert of an event whose customer row is missing (usage_events' foreign key to customers). */
const isMissingCustomer = (error: unknown) =>
  (error as { code?: string; constraint?: string } | null)?.code === '23503' &&
  (error as { constraint?: string }).constraint === 'usage_events_customer_fk'

/**
 * The (tenant, customer) pairs this process has seen committed, so that a batch of known customers
 * sends no customers insert (one statement fewer per batch and per group-committed single call).
 * Only pairs whose transaction committed are remembered; bounded (the oldest half is dropped).
 */
function knownCustomers(max = 100_000) {
  const known = new Set<string>()
  const key = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`
  return {
    unknown: (tenantId: string, ids: readonly string[]) => ids.filter((id) => !known.has(key(tenantId, id))),
    remember(tenantId: string, ids: readonly string[]) {
      if (known.size + ids.length > max) {
        let drop = known.size / 2
        for (const k of known) {
          if (drop-- <= 0) break
          known.delete(k)
        }
      }
      for (const id of ids) known.add(key(tenantId, id))
    },
    forget(tenantId: string, ids: readonly string[]) {
      for (const id of ids) known.delete(key(tenantId, id))
    },
  }
}

export function createUsageService({
  db,
  clock,
  catalog,
  rating,
  pipeline = NO_INGEST_FOLLOWERS,
}: {
  db: Db
  clock: Clock
  catalog: CatalogService
  /** Plans in force and metered rating (src/rating/). */
  rating: Pick<RatingService, 'book' | 'rateMetered'>
  /** What follows ingest (budgets, Stripe outbox, webhooks, …): usage/pipeline.ts. */
  pipeline?: IngestPipeline
}): UsageService {
  const customers = knownCustomers()

  function priceRow(
    tenant: Tenant,
    candidate: Candidate,
    plans: PlanBook,
    receivedAt: Date,
  ): UsageEventRow | EventError {
    const { event } = candidate
    // The tenant's negotiated prices win over public ones for its own events.
    const resolved = catalog.resolve(event.model, event.provider, tenant.id)
    let pricing
    try {
      pricing = priceEvent(
        event.reported,
        resolved ? catalog.pricesAt(resolved.provider, resolved.model, event.timestamp, tenant.id) : null,
      )
    } catch (error) {
      if (error instanceof UsageShapeError) return { code: 'INVALID_INPUT', message: error.message, field: 'units' }
      throw error
    }
    let lines: PricedLineJson[] = []
    let cost: string | null = null
    let amount: string | null = null
    let plan: { kind: 'MARKUP' | 'MARGIN'; percent: string } | null = null
    const inForce = planAt(plans, event.customerId, event.timestamp)
    if (pricing.status === 'PRICED' && inForce && !isPricingPlan(inForce)) {
      // Cost lines → billed amount under a rating plan (src/rating/); its cost rule is what
      // re-pricing recomputes from.
      const costRule = inForce.rules.find((r) => r.type === 'COST_BASED')
      plan = costRule?.type === 'COST_BASED' ? { kind: costRule.kind, percent: costRule.percent } : null
      const model = resolved?.model ?? event.model
      if (needsCounters(inForce)) {
        // Rated in the transaction, under the counters' lock; the lines and amount are set there.
        candidate.metered = { plan: inForce, lines: pricing.lines, model }
        lines = ratedLinesJson(inForce, rateEvent(inForce, { lines: pricing.lines, model, units: [] }, new Map()))
        amount = '0'
      } else {
        const rated = rateEvent(inForce, { lines: pricing.lines, model, units: event.units }, new Map())
        lines = ratedLinesJson(inForce, rated)
        amount = rated.amount.toFixed()
      }
      cost = pricing.cost.toFixed()
    } else if (pricing.status === 'PRICED') {
      // Cost lines → billed amount: the tenant's markup or margin (setPricingPlan) in force, or at cost.
      const costRule = inForce?.rules[0]
      const billed = billAtPlan(
        pricing,
        costRule?.type === 'COST_BASED' ? { kind: costRule.kind, percent: costRule.percent } : null,
      )
      const stored = storedPricing(billed)
      lines = stored.lines
      cost = stored.cost
      amount = stored.amount
      plan = billed.plan
    }
    const unpricedReason = pricing.status === 'UNPRICED' ? pricing.reason : null
    candidate.json = {
      units: event.units.length ? JSON.stringify(event.units) : null,
      metadata: event.metadataJson,
      lines: JSON.stringify(lines),
      unpricedReason: unpricedReason && JSON.stringify(unpricedReason),
    }
    return {
      tenant_id: tenant.id,
      id: event.id,
      seq: 0,
      customer_id: event.customerId,
      model: event.model,
      provider: event.provider,
      canonical_provider: cost === null ? null : (resolved?.provider ?? null),
      canonical_model: cost === null ? null : (resolved?.model ?? null),
      ts: event.timestamp,
      received_at: receivedAt,
      status: cost === null ? 'UNPRICED' : 'PRICED',
      cost,
      amount,
      currency: tenant.currency,
      input_tokens: event.inputTokens,
      output_tokens: event.outputTokens,
      cache_read_tokens: event.cacheReadTokens,
      cache_write_tokens: event.cacheWriteTokens,
      reasoning_tokens: event.reasoningTokens,
      units: event.units.length ? event.units : null,
      feature: event.feature,
      metadata: event.metadata,
      lines,
      plan_kind: plan?.kind ?? null,
      plan_percent: plan?.percent ?? null,
      content_hash: candidate.hash,
      reservation_id: event.reservationId,
      unpriced_reason: unpricedReason,
    }
  }

  return {
    async record(tenant, inputs) {
      const now = clock.now()
      const results: (RecordResult | undefined)[] = new Array(inputs.length)
      const firstById = new Map<string, Candidate>()
      const repeats: Candidate[] = []

      for (const [index, input] of inputs.entries()) {
        const checked = validateEvent(input, now)
        if (!checked.ok) {
          results[index] = { status: 'REJECTED', event: null, error: checked.error }
          continue
        }
        // Signed and hashed as sent: an alias the client used is part of what it signed.
        const canonical = canonicalEventString({ ...checked.event, units: checked.event.unitsAsSent })
        if (checked.event.signature !== null || tenant.require_signatures) {
          if (checked.event.signature === null) {
            results[index] = {
              status: 'REJECTED',
              event: null,
              error: {
                code: 'INVALID_SIGNATURE',
                message: 'this tenant requires every event to be signed',
                field: 'signature',
              },
            }
            continue
          }
          if (!verifyCanonicalSignature(canonical, checked.event.signature, tenant.signing_secret)) {
            results[index] = {
              status: 'REJECTED',
              event: null,
              error: { code: 'INVALID_SIGNATURE', message: 'signature does not match the event', field: 'signature' },
            }
            continue
          }
        }
        const candidate: Candidate = { index, event: checked.event, hash: contentHash(canonical) }
        if (firstById.has(candidate.event.id)) repeats.push(candidate)
        else firstById.set(candidate.event.id, candidate)
      }

      const checked = [...firstById.values()]
      if (checked.length > 0) {
        const errors = await pipeline.check(
          tenant,
          checked.map((c) => c.event),
        )
        for (const [i, error] of errors.entries()) {
          if (!error) continue
          results[checked[i]!.index] = { status: 'REJECTED', event: null, error }
          firstById.delete(checked[i]!.event.id)
        }
      }

      const candidates = [...firstById.values()]
      let catalogVersion = catalog.version()
      if (candidates.length > 0) {
        await catalog.ensureFresh()
        // Read before pricing: a reload while the batch is priced only makes it newer.
        catalogVersion = catalog.version()
        const customerIds = [...new Set(candidates.map((c) => c.event.customerId))]
        const plans = await rating.book(db, tenant.id, customerIds)
        for (const candidate of candidates) {
          const row = priceRow(tenant, candidate, plans, now)
          if ('code' in row) {
            results[candidate.index] = { status: 'REJECTED', event: null, error: row }
            firstById.delete(candidate.event.id)
          } else {
            candidate.row = row
          }
        }
      }

      const toStore = [...firstById.values()]
      const batchCustomers = [...new Set(toStore.map((c) => c.event.customerId))]
      const stored = new Map<string, UsageEventRow>()
      const insertedIds = new Set<string>()
      if (toStore.length > 0) {
        const attempt = () =>
          db.transaction().execute(async (trx): Promise<IngestBatch | null> => {
            stored.clear()
            insertedIds.clear()
            // Customers this process saw committed need no insert (a customer row with events is never deleted).
            await repo.ensureCustomers(trx, tenant.id, customers.unknown(tenant.id, batchCustomers))
            // Events under a plan with meters (tiers, allowances) are rated here, under their period
            // counters' lock (lock order: docs/architecture.md), in batch order; an id already stored
            // is left as it is (its result is DUPLICATE or a conflict).
            const metered = toStore.filter((c) => c.metered)
            const rated = new Set<string>()
            if (metered.length > 0) {
              const results = await rating.rateMetered(
                trx,
                tenant.id,
                metered.map((c) => ({
                  eventId: c.event.id,
                  customerId: c.event.customerId,
                  ts: c.event.timestamp,
                  plan: c.metered!.plan,
                  lines: c.metered!.lines,
                  model: c.metered!.model,
                  units: c.event.units,
                })),
              )
              for (const [i, result] of results.entries()) {
                if (!result) continue
                const c = metered[i]!
                c.row!.lines = result.lines
                c.row!.amount = result.amount
                c.json!.lines = JSON.stringify(result.lines)
                rated.add(c.event.id)
              }
            }
            // One statement: the events, and the rollup deltas of those it newly inserted (summed in SQL).
            const inserted = await repo.insertNewEventsWithRollups(
              trx,
              toStore.map((c) => ({ row: c.row!, json: c.json! })),
            )
            // A concurrent batch (another customer's, outside our counters' lock) claimed a rated id first.
            for (const id of rated) if (!inserted.has(id)) throw new RatedEventRaced(id)
            for (const c of toStore) {
              const seq = inserted.get(c.event.id)
              if (seq === undefined) continue
              c.row!.seq = seq
              insertedIds.add(c.event.id)
              stored.set(c.event.id, c.row!)
            }
            const existing = await repo.findEvents(
              trx,
              tenant.id,
              toStore.filter((c) => !inserted.has(c.event.id)).map((c) => c.event.id),
            )
            for (const row of existing) stored.set(row.id, row)
            // Retention dropped the raw event but its key stays: still a replay, judged by the stored hash.
            const archived = toStore.filter((c) => !stored.has(c.event.id))
            const hashes = await repo.findArchivedKeys(
              trx,
              tenant.id,
              archived.map((c) => c.event.id),
            )
            for (const c of archived) {
              const hash = hashes.get(c.event.id)
              if (hash !== undefined) stored.set(c.event.id, { ...c.row!, content_hash: hash })
            }
            const fresh = [...insertedIds].map((id) => stored.get(id)!)
            if (fresh.length === 0) return null
            // The batch context every follower reads and extends (usage/pipeline.ts).
            const batch: IngestBatch = {
              tenant,
              inserted: fresh,
              catalogVersion,
              alertsRaised: [],
              creditAlertsRaised: [],
            }
            await pipeline.inTransaction(trx, batch)
            return batch
          })
        let batch: IngestBatch | null = null
        for (let tries = 1; ; tries++) {
          try {
            batch = await attempt()
            break
          } catch (error) {
            if (tries >= 3) throw error
            // A customer remembered as existing was deleted by hand (it had no events): insert it this time.
            if (isMissingCustomer(error)) customers.forget(tenant.id, batchCustomers)
            else if (!(error instanceof RatedEventRaced)) throw error
          }
        }
        customers.remember(tenant.id, batchCustomers)
        if (batch) await pipeline.afterCommit(batch)
      }

      const settle = (candidate: Candidate, isFirst: boolean) => {
        const row = stored.get(candidate.event.id)
        if (!row) throw new Error(`event ${candidate.event.id} was neither stored nor found`)
        if (row.content_hash !== candidate.hash) {
          results[candidate.index] = {
            status: 'REJECTED',
            event: null,
            error: {
              code: 'IDEMPOTENCY_CONFLICT',
              message: `an event with id "${candidate.event.id}" was already recorded with different content`,
              field: 'id',
            },
          }
        } else if (isFirst && insertedIds.has(row.id)) {
          results[candidate.index] = { status: 'RECORDED', event: row, error: null }
        } else {
          results[candidate.index] = { status: 'DUPLICATE', event: row, error: null }
        }
      }
      for (const candidate of toStore) settle(candidate, true)
      for (const candidate of repeats) {
        if (stored.has(candidate.event.id)) settle(candidate, false)
        else {
          // Its first occurrence was rejected; judge the repeat the same way rather than storing it.
          results[candidate.index] = results[firstById.get(candidate.event.id)?.index ?? -1] ?? {
            status: 'REJECTED',
            event: null,
            error: {
              code: 'INVALID_INPUT',
              message: `event "${candidate.event.id}" repeats an earlier event of this batch that was rejected`,
              field: 'id',
            },
          }
        }
      }
      return results as RecordResult[]
    },
  }
}
