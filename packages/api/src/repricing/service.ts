import { sql, type Insertable, type Transaction } from 'kysely'
import type { AppliedPriceChange } from '@burnrate/catalog-sync'
import type { CatalogService } from '../catalog/types.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import type { DB, PricedLineJson, UsageCorrectionTable, UsageEventRow, UsageEventTable } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import { applyPlan, planAt, priceEvent, type Plan, type UnpricedReason } from '../pricing/engine.ts'
import {
  addToLineRollups,
  addToRollups,
  listPlans,
  priceStillUnpriced,
  setUnpricedReasons,
} from '../usage/repository.ts'
import {
  NO_CHANGE_FOLLOWERS,
  type BilledChange,
  type BilledChangeBatch,
  type BilledChangePipeline,
  type IngestBatch,
} from '../usage/pipeline.ts'
import { canonicalUnitName } from '../usage/validation.ts'
import { hourBucket, rollupDeltas, rollupDimensions, type LineRollupDelta, type RollupDelta } from '../usage/rollups.ts'
import { lineDeltas } from './changes.ts'

const BATCH = 500

export interface RepriceResult {
  /** Events looked at. */
  examined: number
  /** Correction entries written (0 on a re-run). */
  corrected: number
  costDelta: string
  amountDelta: string
  /** Events the catalog can no longer price (a usage type they report has no price): left at their current bill. */
  unpriced: number
  /** Why, once per distinct reason. */
  unpricedReasons: UnpricedReason[]
}

/** Which UNPRICED events a late-pricing sweep looks at; everything when empty. */
export interface UnpricedScope {
  /** Only this tenant's events. */
  tenantId?: string
  /**
   * Only events whose model resolves to one of these canonical models (of this tenant, or of
   * every tenant when tenantId is null) and stamped at or after `from`: what a catalog change
   * can have made priceable.
   */
  models?: readonly { tenantId: string | null; provider: string; model: string; from: Date }[]
  /** Only these events (an ingest batch that stored UNPRICED events while the catalog changed). */
  eventIds?: readonly string[]
}

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

export interface RepricingService {
  /** Prices every UNPRICED event in scope the catalog can now price; returns how many. Idempotent. */
  priceUnpriced(scope?: UnpricedScope): Promise<number>
  /** Re-prices a tenant's priced events of one model in [from, to) with the catalog as it is now, writing corrections. */
  repriceUsage(
    tenantId: string,
    range: { from: Date; to: Date; provider: string; model: string; reason: string },
  ): Promise<RepriceResult>
}

/** What an event reported, rebuilt from its stored row the way validation built it. */
export function reportedOf(
  event: Pick<
    UsageEventRow,
    'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cache_write_tokens' | 'reasoning_tokens' | 'units'
  >,
) {
  const reported = new Map<string, Decimal>([
    ['input_tokens', new Decimal(event.input_tokens)],
    ['output_tokens', new Decimal(event.output_tokens)],
    ['cache_read_tokens', new Decimal(event.cache_read_tokens)],
    ['cache_write_tokens', new Decimal(event.cache_write_tokens)],
    ['output_reasoning_tokens', new Decimal(event.reasoning_tokens)],
  ])
  // Events stored before aliases were mapped at validation may carry an alias.
  for (const unit of event.units ?? [])
    reported.set(canonicalUnitName(unit.unit) ?? unit.unit, new Decimal(unit.quantity))
  return reported
}

/** The event's lines at these rows (the one pricing rule, priceEvent), or why it cannot be priced. */
function linesOf(
  prices: ReturnType<CatalogService['pricesAt']>,
  event: UsageEventRow,
  plan: Plan | null,
): { unpriced: UnpricedReason } | { unpriced?: undefined; lines: PricedLineJson[]; cost: string; amount: string } {
  const priced = priceEvent(reportedOf(event), prices)
  if (priced.status === 'UNPRICED') return { unpriced: priced.reason }
  const billed = applyPlan(priced.lines, plan)
  const lines: PricedLineJson[] = billed.lines.map((l) => ({
    usageType: l.usageType,
    quantity: l.quantity.toFixed(),
    unitPrice: l.unitPrice.toFixed(),
    cost: l.cost.toFixed(),
    amount: l.amount.toFixed(),
    priceId: l.priceId,
  }))
  return { lines, cost: priced.cost.toFixed(), amount: billed.amount.toFixed() }
}

const sameReason = (stored: UnpricedReason | null, next: UnpricedReason) =>
  stored !== null && stored.code === next.code && stored.usageTypes.join() === next.usageTypes.join()

const sameLines = (a: readonly PricedLineJson[], b: readonly PricedLineJson[]) =>
  a.length === b.length &&
  a.every((line, i) => {
    const other = b[i]!
    return (
      line.usageType === other.usageType &&
      line.priceId === other.priceId &&
      new Decimal(line.quantity).eq(other.quantity) &&
      new Decimal(line.cost).eq(other.cost) &&
      new Decimal(line.amount).eq(other.amount)
    )
  })

const asInsertable = (row: UsageEventRow): Insertable<UsageEventTable> =>
  ({
    ...row,
    lines: JSON.stringify(row.lines),
    units: row.units ? JSON.stringify(row.units) : null,
    metadata: row.metadata ? JSON.stringify(row.metadata) : null,
  }) as Insertable<UsageEventTable>

function negate(delta: RollupDelta): RollupDelta {
  return {
    ...delta,
    events: -(delta.events ?? 0),
    unpriced_events: -(delta.unpriced_events ?? 0),
    input_tokens: -(delta.input_tokens ?? 0),
    output_tokens: -(delta.output_tokens ?? 0),
    cost: new Decimal(delta.cost).negated().toFixed(),
    amount: new Decimal(delta.amount).negated().toFixed(),
  }
}

/** Adds deltas with the same key together (one upsert may not touch a row twice), sorted by key. */
function merge<T extends { [k: string]: unknown }>(
  deltas: readonly T[],
  keyOf: (d: T) => string,
  sum: (a: T, b: T) => T,
): T[] {
  const byKey = new Map<string, T>()
  for (const delta of deltas) {
    const key = keyOf(delta)
    const previous = byKey.get(key)
    byKey.set(key, previous ? sum(previous, delta) : delta)
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v)
}
const rollupKey = (d: RollupDelta) =>
  [d.customer_id, new Date(d.bucket).getTime(), d.provider, d.model, d.feature].join('\u0001')
const lineKey = (d: LineRollupDelta) => [rollupKey(d as unknown as RollupDelta), d.usage_type].join('\u0001')
const add = (a: string, b: string) => new Decimal(a).plus(b).toFixed()
const mergeRollups = (deltas: RollupDelta[]) =>
  merge(deltas, rollupKey, (a, b) => ({
    ...a,
    events: (a.events ?? 0) + (b.events ?? 0),
    unpriced_events: (a.unpriced_events ?? 0) + (b.unpriced_events ?? 0),
    input_tokens: (a.input_tokens ?? 0) + (b.input_tokens ?? 0),
    output_tokens: (a.output_tokens ?? 0) + (b.output_tokens ?? 0),
    cost: add(a.cost, b.cost),
    amount: add(a.amount, b.amount),
  }))
const mergeLines = (deltas: LineRollupDelta[]) =>
  merge(deltas, lineKey, (a, b) => ({
    ...a,
    events: (a.events ?? 0) + (b.events ?? 0),
    quantity: add(a.quantity, b.quantity),
    cost: add(a.cost, b.cost),
    amount: add(a.amount, b.amount),
  }))

/** The lines an event is billed with now: its own, or those of its latest correction. */
async function currentLines(db: Executor, tenantId: string, events: readonly UsageEventRow[]) {
  const latest = new Map<string, { lines: PricedLineJson[]; cost: string; amount: string }>()
  if (events.length === 0) return latest
  const rows = await db
    .selectFrom('usage_corrections')
    .select(['event_id', 'new_lines', 'new_cost', 'new_amount', 'id'])
    .where('tenant_id', '=', tenantId)
    .where(
      'event_id',
      'in',
      events.map((e) => e.id),
    )
    .orderBy('id')
    .execute()
  for (const row of rows) latest.set(row.event_id, { lines: row.new_lines, cost: row.new_cost, amount: row.new_amount })
  return latest
}

export function createRepricingService({
  db,
  clock,
  catalog,
  logger,
  pipeline = NO_CHANGE_FOLLOWERS,
}: {
  db: Db
  clock: Clock
  catalog: CatalogService
  logger: Logger
  /** What follows every billed amount that changes (Stripe outbox, budgets, webhooks): usage/pipeline.ts. */
  pipeline?: BilledChangePipeline
}): RepricingService {
  /** Runs the billed-change pipeline's in-transaction steps; the batch goes to `notify` after commit. */
  async function changed(
    trx: Transaction<DB>,
    tenantId: string,
    changes: readonly BilledChange[],
  ): Promise<BilledChangeBatch | null> {
    if (changes.length === 0) return null
    const batch: BilledChangeBatch = { tenantId, changes, alertsRaised: [] }
    await pipeline.inTransaction(trx, batch)
    return batch
  }
  async function notify(batch: BilledChangeBatch | null) {
    if (batch) await pipeline.afterCommit(batch)
  }

  return {
    async priceUnpriced(scope = {}) {
      await catalog.ensureFresh()
      const tenantIds = new Set(scope.models?.map((m) => m.tenantId))
      const onlyTenant =
        scope.tenantId ?? (tenantIds.size === 1 && !tenantIds.has(null) ? [...tenantIds][0]! : undefined)
      let query = db
        .selectFrom('usage_events')
        .select(['tenant_id', 'model', 'provider'])
        .distinct()
        .where('status', '=', 'UNPRICED')
      if (onlyTenant) query = query.where('tenant_id', '=', onlyTenant)
      if (scope.eventIds)
        query = scope.eventIds.length ? query.where('id', 'in', scope.eventIds) : query.where(sql<boolean>`false`)
      const names = await query.execute()
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
          let batchQuery = db
            .selectFrom('usage_events')
            .selectAll()
            .where('tenant_id', '=', name.tenant_id)
            .where('model', '=', name.model)
            .where((eb) => (name.provider === null ? eb('provider', 'is', null) : eb('provider', '=', name.provider)))
            .where('status', '=', 'UNPRICED')
            .where('seq', '>', afterSeq)
          if (from) batchQuery = batchQuery.where('ts', '>=', from)
          if (scope.eventIds) batchQuery = batchQuery.where('id', 'in', scope.eventIds)
          const events = await batchQuery.orderBy('seq').limit(BATCH).execute()
          if (events.length === 0) break
          afterSeq = Number(events.at(-1)!.seq)
          const plans = await listPlans(db, name.tenant_id, [...new Set(events.map((e) => e.customer_id))])
          const updates = new Map<string, { before: UsageEventRow; after: UsageEventRow }>()
          const stillUnpriced: { id: string; reason: UnpricedReason }[] = []
          for (const event of events) {
            const prices = catalog.pricesAt(resolved.provider, resolved.model, event.ts, event.tenant_id)
            const plan = planAt(plans, event.customer_id, event.ts)
            let priced
            try {
              priced = linesOf(prices, event, plan)
            } catch (error) {
              logger.warn('unpriced event cannot be priced', {
                tenantId: event.tenant_id,
                eventId: event.id,
                error: String(error),
              })
              continue
            }
            if (priced.unpriced) {
              if (!sameReason(event.unpriced_reason, priced.unpriced))
                stillUnpriced.push({ id: event.id, reason: priced.unpriced })
              continue
            }
            updates.set(event.id, {
              before: event,
              after: {
                ...event,
                status: 'PRICED',
                canonical_provider: resolved.provider,
                canonical_model: resolved.model,
                lines: priced.lines,
                cost: priced.cost,
                amount: priced.amount,
                plan_kind: plan?.kind ?? null,
                plan_percent: plan?.percent ?? null,
              },
            })
          }
          // What the event now lacks (e.g. a negotiated price named input only): say so, still UNPRICED.
          await setUnpricedReasons(db, name.tenant_id, stillUnpriced)
          if (updates.size === 0) continue
          const billed = await db.transaction().execute(async (trx) => {
            // One statement, rows locked in id order; only events still UNPRICED change.
            const pricedIds = await priceStillUnpriced(
              trx,
              name.tenant_id,
              [...updates.values()].map(({ after }) => ({
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
            const done = [...updates.values()].filter(({ after }) => pricedIds.has(after.id))
            const removed = rollupDeltas(
              name.tenant_id,
              done.map((d) => asInsertable(d.before)),
            )
            const added = rollupDeltas(
              name.tenant_id,
              done.map((d) => asInsertable(d.after)),
            )
            await addToRollups(trx, mergeRollups([...removed.rollups.map(negate), ...added.rollups]))
            await addToLineRollups(trx, mergeLines(added.lineRollups))
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
            const batch = await changed(trx, name.tenant_id, changes)
            priced += done.length
            return batch
          })
          await notify(billed)
        }
      }
      if (priced > 0) logger.info('unpriced events priced', { events: priced })
      return priced
    },

    async repriceUsage(tenantId, range) {
      await catalog.ensureFresh()
      const result = { examined: 0, corrected: 0, costDelta: new Decimal(0), amountDelta: new Decimal(0) }
      const unpriced: UnpricedReason[] = []
      let afterSeq = 0
      for (;;) {
        const events = await db
          .selectFrom('usage_events')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where('status', '=', 'PRICED')
          .where('canonical_provider', '=', range.provider)
          .where('canonical_model', '=', range.model)
          .where('ts', '>=', range.from)
          .where('ts', '<', range.to)
          .where('seq', '>', afterSeq)
          .orderBy('seq')
          .limit(BATCH)
          .execute()
        if (events.length === 0) break
        afterSeq = Number(events.at(-1)!.seq)
        result.examined += events.length
        const billed = await db.transaction().execute(async (trx) => {
          // One re-pricing per tenant at a time: a concurrent run sees this one's corrections.
          await sql`select pg_advisory_xact_lock(hashtext(${`burnrate.reprice:${tenantId}`}))`.execute(trx)
          const latest = await currentLines(trx, tenantId, events)
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
            const plan = event.plan_kind ? { kind: event.plan_kind, percent: event.plan_percent! } : null
            const next = linesOf(prices, event, plan)
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
            const costDelta = new Decimal(next.cost).minus(current.cost)
            const amountDelta = new Decimal(next.amount).minus(current.amount)
            result.costDelta = result.costDelta.plus(costDelta)
            result.amountDelta = result.amountDelta.plus(amountDelta)
            const base = { tenant_id: tenantId, customer_id: event.customer_id, bucket: hourBucket(event.ts), ...dims }
            rollups.push({
              ...base,
              events: 0,
              unpriced_events: 0,
              input_tokens: 0,
              output_tokens: 0,
              cost: costDelta.toFixed(),
              amount: amountDelta.toFixed(),
            })
            for (const line of current.lines) {
              lines.push({
                ...base,
                usage_type: line.usageType,
                events: -1,
                quantity: new Decimal(line.quantity).negated().toFixed(),
                cost: new Decimal(line.cost).negated().toFixed(),
                amount: new Decimal(line.amount).negated().toFixed(),
              })
            }
            for (const line of next.lines)
              lines.push({
                ...base,
                usage_type: line.usageType,
                events: 1,
                quantity: line.quantity,
                cost: line.cost,
                amount: line.amount,
              })
          }
          if (corrections.length === 0) return null
          const inserted = await trx
            .insertInto('usage_corrections')
            .values(corrections)
            .returning(['id', 'event_id'])
            .execute()
          await addToRollups(trx, mergeRollups(rollups))
          await addToLineRollups(trx, mergeLines(lines))
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
          const batch = await changed(trx, tenantId, changes)
          result.corrected += corrections.length
          return batch
        })
        await notify(billed)
      }
      const reasons = new Map(unpriced.map((r) => [`${r.code}:${r.usageTypes.join()}`, r]))
      return {
        examined: result.examined,
        corrected: result.corrected,
        costDelta: result.costDelta.toFixed(),
        amountDelta: result.amountDelta.toFixed(),
        unpriced: unpriced.length,
        unpricedReasons: [...reasons.values()],
      }
    },
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
  repricing: RepricingService,
): (batch: IngestBatch) => Promise<void> {
  return async ({ tenant, inserted, catalogVersion }) => {
    const unpriced = inserted.filter((e) => e.status === 'UNPRICED').map((e) => e.id)
    if (unpriced.length === 0) return
    await catalog.ensureFresh()
    if (catalog.version() === catalogVersion) return
    await repricing.priceUnpriced({ tenantId: tenant.id, eventIds: unpriced })
  }
}
