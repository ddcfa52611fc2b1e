/**
 * The console's overview, in one query built for it: billed, cost and margin over a range by UTC
 * day and by provider and model, UNPRICED events and the amount they put at risk, alerts raised
 * today — from the per-day rollups (usage_day_models, whole UTC days; migration 20261212T0100) and
 * usage_rollups (the hours at the range's edges), never a scan of raw events. And the UNPRICED
 * events grouped by reason, each group with its estimate and the fix that prices it.
 *
 * Amount at risk (README: Overview): an UNPRICED event bills nothing until priced. What it would
 * bill is estimated per (provider, model) as its UNPRICED events × the average billed amount of
 * the PRICED events of that same provider and model in the same range — or, when it has none
 * (events that reported no provider, or an alias, are rolled up under the names they reported), of
 * the priced events of the same model name under any provider. A model with no priced event in the
 * range (typically an unknown model) has no basis: its estimate is null — "unknown",
 * never 0 — and its events are counted in `unestimatedEvents`. The total is the sum of the
 * estimable parts (null when none is), so it is a lower bound whenever `unestimatedEvents` > 0.
 */
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant, UnpricedReasonJson } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { DAY_MS, splitDays, wholeHours } from '../shared/date-range.ts'
import { badInput } from '../shared/errors.ts'
import * as repo from './repository.ts'

const OVERVIEW_LIMITS = { maxRangeDays: 400, unpricedGroups: 200 } as const

interface Figures {
  events: number
  unpricedEvents: number
  cost: string
  /** Billed. */
  amount: string
  /** amount − cost. */
  margin: string
}

export interface DayFigures extends Figures {
  day: Date
}

export interface ModelFigures extends Figures {
  provider: string
  model: string
  /** This model's estimate; null when it has UNPRICED events and no priced event to estimate from. */
  amountAtRisk: string | null
}

export interface AmountAtRisk {
  events: number
  /** Sum of the estimable parts; null when there are UNPRICED events and none is estimable; '0' when none. */
  amount: string | null
  estimatedEvents: number
  /** UNPRICED events of models with no priced event in the range: not in `amount`. */
  unestimatedEvents: number
}

export interface OverviewView extends Figures {
  /** The range read: whole UTC hours (from floored, to raised to the hour). */
  from: Date
  to: Date
  currency: string
  byDay: DayFigures[]
  byModel: ModelFigures[]
  atRisk: AmountAtRisk
  /** Budget and credit alerts raised since today's UTC midnight. */
  alertsToday: number
}

type UnpricedFixAction = 'ADD_OVERRIDE_THEN_REPRICE' | 'REPRICE'

export interface UnpricedGroupView {
  provider: string
  model: string
  /** Null for events stored before reasons were kept. */
  reason: UnpricedReasonJson | null
  events: number
  customers: number
  firstAt: Date
  lastAt: Date
  amountAtRisk: string | null
  fix: {
    action: UnpricedFixAction
    /** The usage types a negotiated price must name (input and output when the model is unknown). */
    usageTypes: string[]
    /** A price must be in force from here to price the group's first event. */
    effectiveFrom: Date
    description: string
  }
}

interface Accumulator {
  events: number
  unpricedEvents: number
  cost: Decimal
  amount: Decimal
}

const empty = (): Accumulator => ({ events: 0, unpricedEvents: 0, cost: new Decimal(0), amount: new Decimal(0) })

function add(acc: Accumulator, cell: repo.RollupCell): void {
  acc.events += cell.events
  acc.unpricedEvents += cell.unpriced_events
  acc.cost = acc.cost.plus(cell.cost)
  acc.amount = acc.amount.plus(cell.amount)
}

function figures(acc: Accumulator): Figures {
  return {
    events: acc.events,
    unpricedEvents: acc.unpricedEvents,
    cost: acc.cost.toFixed(),
    amount: acc.amount.toFixed(),
    margin: acc.amount.minus(acc.cost).toFixed(),
  }
}

const modelKey = (provider: string, model: string) => provider + '\u0001' + model

/** Average billed amount per PRICED event of one model (null: no priced event to average). */
function averageBilled(acc: Accumulator): Decimal | null {
  const priced = acc.events - acc.unpricedEvents
  return priced > 0 ? acc.amount.div(priced) : null
}

/** The average bill per priced event for a (provider, model): its own, else its model name's. */
function basis(
  models: Map<string, { model: string; acc: Accumulator }>,
  provider: string,
  model: string,
): Decimal | null {
  const own = models.get(modelKey(provider, model))
  const average = own ? averageBilled(own.acc) : null
  if (average !== null) return average
  const byName = empty()
  for (const m of models.values())
    if (m.model === model) {
      byName.events += m.acc.events
      byName.unpricedEvents += m.acc.unpricedEvents
      byName.amount = byName.amount.plus(m.acc.amount)
    }
  return averageBilled(byName)
}

/** Rounded like a bill line: 6 decimal places (an estimate, not a charge). */
const estimate = (average: Decimal, events: number) => average.times(events).toDecimalPlaces(6).toFixed()

/** Folds rollup cells into the overview's figures (pure). */
function foldCells(cells: readonly repo.RollupCell[]): Omit<OverviewView, 'from' | 'to' | 'currency' | 'alertsToday'> {
  const total = empty()
  const days = new Map<number, Accumulator>()
  const models = new Map<string, { provider: string; model: string; acc: Accumulator }>()
  for (const cell of cells) {
    add(total, cell)
    const d = days.get(cell.day.getTime()) ?? empty()
    days.set(cell.day.getTime(), d)
    add(d, cell)
    const k = modelKey(cell.provider, cell.model)
    const m = models.get(k) ?? { provider: cell.provider, model: cell.model, acc: empty() }
    models.set(k, m)
    add(m.acc, cell)
  }
  const atRisk = { events: total.unpricedEvents, sum: new Decimal(0), estimatedEvents: 0, unestimatedEvents: 0 }
  const byModel: ModelFigures[] = [...models.values()].map(({ provider, model, acc }) => {
    let amountAtRisk: string | null = '0'
    if (acc.unpricedEvents > 0) {
      const average = basis(models, provider, model)
      if (average === null) {
        amountAtRisk = null
        atRisk.unestimatedEvents += acc.unpricedEvents
      } else {
        amountAtRisk = estimate(average, acc.unpricedEvents)
        atRisk.sum = atRisk.sum.plus(amountAtRisk)
        atRisk.estimatedEvents += acc.unpricedEvents
      }
    }
    return { provider, model, ...figures(acc), amountAtRisk }
  })
  byModel.sort(
    (a, b) =>
      new Decimal(b.amount).comparedTo(a.amount) ||
      a.provider.localeCompare(b.provider) ||
      a.model.localeCompare(b.model),
  )
  return {
    ...figures(total),
    byDay: [...days.entries()].sort(([a], [b]) => a - b).map(([day, acc]) => ({ day: new Date(day), ...figures(acc) })),
    byModel,
    atRisk: {
      events: atRisk.events,
      amount: atRisk.events === 0 ? '0' : atRisk.estimatedEvents === 0 ? null : atRisk.sum.toFixed(),
      estimatedEvents: atRisk.estimatedEvents,
      unestimatedEvents: atRisk.unestimatedEvents,
    },
  }
}

/** What prices a group's events: the negotiated prices it lacks, then re-pricing (pure). */
function fixOf(
  group: Pick<repo.UnpricedGroupRow, 'reason' | 'first_at' | 'provider' | 'model'>,
): UnpricedGroupView['fix'] {
  const effectiveFrom = new Date(Math.floor(group.first_at.getTime() / DAY_MS) * DAY_MS)
  const name = `${group.provider || '(no provider)'}/${group.model}`
  const code = group.reason?.code
  if (code === 'MISSING_USAGE_PRICE') {
    const types = group.reason?.usageTypes ?? []
    return {
      action: 'ADD_OVERRIDE_THEN_REPRICE',
      usageTypes: types,
      effectiveFrom,
      description: `Add a negotiated price for ${types.join(', ')} of ${name} in force from ${effectiveFrom.toISOString().slice(0, 10)}, then re-price.`,
    }
  }
  if (code === 'UNKNOWN_MODEL' || code === 'NO_PRICE_AT_TIME') {
    return {
      action: 'ADD_OVERRIDE_THEN_REPRICE',
      usageTypes: ['input', 'output'],
      effectiveFrom,
      description: `Add negotiated prices for ${name} (each usage type its events report, usually input and output) in force from ${effectiveFrom.toISOString().slice(0, 10)}, then re-price.`,
    }
  }
  return {
    action: 'REPRICE',
    usageTypes: [],
    effectiveFrom,
    description: `The reason was not recorded (events stored before reasons were kept): re-price ${name} to price them or record why not.`,
  }
}

function checkRange(range: { from: Date; to: Date }): void {
  if (range.from >= range.to) throw badInput('from must be before to', 'from')
  if (range.to.getTime() - range.from.getTime() > OVERVIEW_LIMITS.maxRangeDays * DAY_MS)
    throw badInput(`the range spans at most ${OVERVIEW_LIMITS.maxRangeDays} days; narrow from/to`, 'to')
}

export interface OverviewService {
  overview(tenant: Tenant, range: { from: Date; to: Date }): Promise<OverviewView>
  unpricedGroups(tenant: Tenant, range: { from: Date; to: Date }): Promise<UnpricedGroupView[]>
  /**
   * Moves every pending usage_day_deltas row into the per-day rollups, tenant by tenant, in
   * statements of at most COMPACT_CHUNK rows; returns how many moved. Reads are exact before and
   * after: this only keeps them fast (main.ts runs it every few seconds).
   */
  compactDayRollups(): Promise<number>
}

/** Delta rows moved per statement: a short transaction, a bounded number of day rows locked. */
const COMPACT_CHUNK = 10_000

export function createOverviewService({ db, clock }: { db: Db; clock: Clock }): OverviewService {
  return {
    async overview(tenant, range) {
      checkRange(range)
      const hours = wholeHours(range)
      const midnight = new Date(Math.floor(clock.now().getTime() / DAY_MS) * DAY_MS)
      const [cells, alertsToday] = await Promise.all([
        repo.rollupCells(db, tenant.id, splitDays({ from: hours.start, to: hours.end })),
        repo.alertsSince(db, tenant.id, midnight),
      ])
      return { from: hours.start, to: hours.end, currency: tenant.currency, ...foldCells(cells), alertsToday }
    },

    async compactDayRollups() {
      let total = 0
      for (const tenantId of await repo.tenantsWithDayDeltas(db)) {
        for (;;) {
          const moved = await repo.compactDayDeltas(db, tenantId, COMPACT_CHUNK)
          total += moved
          if (moved < COMPACT_CHUNK) break
        }
      }
      return total
    },

    async unpricedGroups(tenant, range) {
      checkRange(range)
      const hours = wholeHours(range)
      const [groups, cells] = await Promise.all([
        repo.unpricedGroups(db, tenant.id, hours.start, hours.end, OVERVIEW_LIMITS.unpricedGroups),
        repo.rollupCells(db, tenant.id, splitDays({ from: hours.start, to: hours.end })),
      ])
      const models = new Map<string, { model: string; acc: Accumulator }>()
      for (const cell of cells) {
        const k = modelKey(cell.provider, cell.model)
        const m = models.get(k) ?? { model: cell.model, acc: empty() }
        models.set(k, m)
        add(m.acc, cell)
      }
      return groups.map((g) => {
        const average = basis(models, g.provider, g.model)
        return {
          provider: g.provider,
          model: g.model,
          reason: g.reason,
          events: g.events,
          customers: g.customers,
          firstAt: g.first_at,
          lastAt: g.last_at,
          amountAtRisk: average === null ? null : estimate(average, g.events),
          fix: fixOf(g),
        }
      })
    },
  }
}
