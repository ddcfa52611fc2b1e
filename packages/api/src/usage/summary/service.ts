/**
 * The usage ledger's read side: usageSummary (totals and groups over a range, from per-day and
 * hourly rollups plus raw partial hours, exact), usageEvents (keyset pages of one customer's
 * events), and the billed amount of a range that budgets seed their spend from.
 */
import { directionOf } from '@burnrate/catalog-sync'
import type { Db, Executor } from '../../db/database.ts'
import type { Tenant, UsageEventRow } from '../../db/types.ts'
import { Decimal } from '../../money/decimal.ts'
import { DAY_MS, planHours, splitDays } from '../../shared/date-range.ts'
import { badInput } from '../../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../../shared/pagination.ts'
import * as repo from './repository.ts'
import type { EventAggregate, EventPosition, GroupKeys, LineAggregate, SummaryScope } from './repository.ts'

// ------------------------------------------------------------------ limits

const SUMMARY_LIMITS = {
  maxRangeDays: 400,
  maxHourlyRangeDays: 31,
} as const

export const EVENTS_PAGE = { defaultFirst: 50, maxFirst: 500 } as const

export const DIMENSIONS = ['MODEL', 'PROVIDER', 'FEATURE', 'USAGE_TYPE', 'DAY', 'HOUR'] as const
type UsageDimensionName = (typeof DIMENSIONS)[number]

// ------------------------------------------------------------------ pure summary logic

export interface UsageGroupView {
  model: string | null
  provider: string | null
  feature: string | null
  usageType: string | null
  bucketStart: Date | null
  events: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
}

export interface UsageSummaryView {
  customerId: string | null
  from: Date
  to: Date
  currency: string
  events: number
  unpricedEvents: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
  groups: UsageGroupView[]
}

/** Throws BAD_USER_INPUT for a range or grouping the summary refuses to compute. */
function checkSummaryArgs(args: {
  customerId: string | null
  from: Date
  to: Date
  groupBy: readonly UsageDimensionName[]
}): void {
  if (args.customerId !== null && (args.customerId.length === 0 || args.customerId.length > 255)) {
    throw badInput('customerId must be 1-255 characters (or null for the whole tenant)', 'customerId')
  }
  const span = args.to.getTime() - args.from.getTime()
  if (span <= 0) throw badInput('to must be after from: the range is [from, to)', 'to')
  if (span > SUMMARY_LIMITS.maxRangeDays * DAY_MS) {
    throw badInput(`the range spans at most ${SUMMARY_LIMITS.maxRangeDays} days; split it into several queries`, 'to')
  }
  if (args.groupBy.includes('HOUR') && span > SUMMARY_LIMITS.maxHourlyRangeDays * DAY_MS) {
    throw badInput(
      `grouping by HOUR allows a range of at most ${SUMMARY_LIMITS.maxHourlyRangeDays} days; group by DAY or narrow from/to`,
      'groupBy',
    )
  }
}

/** The grouping the dimensions ask for. DAY with HOUR groups by hour: every hour lies in one day. */
function groupingOf(dimensions: readonly UsageDimensionName[]): {
  keys: GroupKeys
  byUsageType: boolean
  grouped: boolean
} {
  const has = (d: UsageDimensionName) => dimensions.includes(d)
  return {
    keys: {
      model: has('MODEL'),
      provider: has('PROVIDER'),
      feature: has('FEATURE'),
      bucket: has('HOUR') ? 'HOUR' : has('DAY') ? 'DAY' : null,
    },
    byUsageType: has('USAGE_TYPE'),
    grouped: dimensions.length > 0,
  }
}

/** '' stands for "none" in rollup keys; the API says null. */
const noneToNull = (value: string | null) => (value === '' ? null : value)

function eventGroup(row: EventAggregate): UsageGroupView {
  return {
    bucketStart: row.bucketStart,
    model: row.model,
    provider: noneToNull(row.provider),
    feature: noneToNull(row.feature),
    usageType: null,
    events: row.events,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    cost: new Decimal(row.cost).toFixed(),
    amount: new Decimal(row.amount).toFixed(),
  }
}

/** A usage-type group: its tokens are the line quantity, on the side the usage type belongs to. */
function lineGroup(row: LineAggregate): UsageGroupView {
  const direction = directionOf(row.usageType)
  // Token counts are integers far below 2^53, so Number is exact here (unlike money).
  const tokens = direction ? Number(row.quantity) : 0
  return {
    bucketStart: row.bucketStart,
    model: row.model,
    provider: noneToNull(row.provider),
    feature: noneToNull(row.feature),
    usageType: row.usageType,
    events: row.events,
    inputTokens: direction === 'input' ? tokens : 0,
    outputTokens: direction === 'output' ? tokens : 0,
    cost: new Decimal(row.cost).toFixed(),
    amount: new Decimal(row.amount).toFixed(),
  }
}

/** Code-point order, nulls last: stable whatever the locale. */
function compareNullable(a: string | null, b: string | null): number {
  if (a === b) return 0
  if (a === null) return 1
  if (b === null) return -1
  return a < b ? -1 : 1
}

function compareGroups(a: UsageGroupView, b: UsageGroupView): number {
  const ta = a.bucketStart?.getTime() ?? Number.POSITIVE_INFINITY
  const tb = b.bucketStart?.getTime() ?? Number.POSITIVE_INFINITY
  return (
    (ta === tb ? 0 : ta < tb ? -1 : 1) ||
    compareNullable(a.model, b.model) ||
    compareNullable(a.provider, b.provider) ||
    compareNullable(a.feature, b.feature) ||
    compareNullable(a.usageType, b.usageType)
  )
}

function totalsOf(rows: readonly EventAggregate[]) {
  const totals = {
    events: 0,
    unpricedEvents: 0,
    inputTokens: 0,
    outputTokens: 0,
    cost: new Decimal(0),
    amount: new Decimal(0),
  }
  for (const row of rows) {
    totals.events += row.events
    totals.unpricedEvents += row.unpricedEvents
    totals.inputTokens += row.inputTokens
    totals.outputTokens += row.outputTokens
    totals.cost = totals.cost.plus(row.cost)
    totals.amount = totals.amount.plus(row.amount)
  }
  return { ...totals, cost: totals.cost.toFixed(), amount: totals.amount.toFixed() }
}

/**
 * Which parts of a range planned by planHours a summary with these event keys reads from which
 * source: partial hours raw (added, or taken away from their whole hour), whole UTC days from the
 * per-day rollups when the keys allow, the hours left from the hourly rollups.
 */
function summaryParts({ hours, raw }: ReturnType<typeof planHours>, eventKeys: GroupKeys): repo.SummaryParts {
  if (!hours) return { days: null, hours: [], raw }
  if (!repo.daysServe(eventKeys)) return { days: null, hours: [hours], raw }
  const { days, hours: edgeHours } = splitDays(hours)
  return { days, hours: edgeHours, raw }
}

/**
 * Totals and groups over [from, to): whole UTC days from the per-day rollups (unless grouped by
 * feature or hour), whole hours from the hourly rollups, partial hours from raw events — each
 * summed in one SQL statement, so exact and from one snapshot. USAGE_TYPE groups come from the
 * line rollups (and the raw events' lines) and the totals from the event side, read in one
 * repeatable-read transaction so that concurrent ingest cannot make them disagree.
 */
async function loadUsageSummary(
  db: Db,
  args: { tenant: Tenant; customerId: string | null; from: Date; to: Date; groupBy: readonly UsageDimensionName[] },
): Promise<UsageSummaryView> {
  checkSummaryArgs(args)
  const scope: SummaryScope = { tenantId: args.tenant.id, customerId: args.customerId }
  const { keys, byUsageType, grouped } = groupingOf(args.groupBy)
  // Event aggregates are grouped by the requested keys unless the groups come from lines.
  const eventKeys = grouped && !byUsageType ? keys : repo.NO_GROUPING
  const plan = planHours(args.from, args.to)
  const parts = summaryParts(plan, eventKeys)

  let events: EventAggregate[]
  let groups: UsageGroupView[] = []
  if (byUsageType) {
    // Lines have no per-day tier: whole hours from usage_line_rollups.
    const lineParts = { hours: plan.hours ? [plan.hours] : [], raw: plan.raw }
    const [eventRows, lineRows] = await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute((trx) =>
        Promise.all([
          repo.eventAggregates(trx, scope, parts, eventKeys),
          repo.lineAggregates(trx, scope, lineParts, keys),
        ]),
      )
    events = eventRows
    groups = lineRows.map(lineGroup)
  } else {
    events = await repo.eventAggregates(db, scope, parts, eventKeys)
    if (grouped) groups = events.map(eventGroup)
  }
  return {
    customerId: args.customerId,
    from: args.from,
    to: args.to,
    currency: args.tenant.currency,
    ...totalsOf(events),
    groups: groups.sort(compareGroups),
  }
}

// ------------------------------------------------------------------ event pages

/** usageEvents' cursors: the one keyset codec (shared/pagination.ts), positions (ts, id). */
const eventCursor = keysetCursor('usageEvents')
const encodeCursor = (p: EventPosition): string => eventCursor.encode({ at: p.ts, id: p.id })
function decodeCursor(cursor: string): EventPosition {
  const { at, id } = eventCursor.decode(cursor)
  return { ts: at, id }
}

type UsageEventPage = Page<UsageEventRow>

async function loadUsageEventPage(
  db: Executor,
  args: {
    tenant: Tenant
    customerId: string
    from: Date | null
    to: Date | null
    first: number | null
    after: string | null
    model?: string | null
    feature?: string | null
  },
): Promise<UsageEventPage> {
  const first = pageSize(args.first, EVENTS_PAGE)
  if (args.from && args.to && args.from.getTime() >= args.to.getTime())
    throw badInput('to must be after from: the range is [from, to)', 'to')
  const after = args.after === null ? null : decodeCursor(args.after)
  // One row more than asked tells whether another page exists.
  const rows = await repo.listEventsPage(db, {
    tenantId: args.tenant.id,
    customerId: args.customerId,
    from: args.from,
    to: args.to,
    after,
    limit: first + 1,
    model: args.model ?? null,
    feature: args.feature ?? null,
  })
  return pageOf(rows, { first, after }, (node) => encodeCursor({ ts: new Date(node.ts), id: node.id }))
}

// ------------------------------------------------------------------ the service

interface UsageSummaryArgs {
  customerId: string | null
  from: Date
  to: Date
  groupBy: readonly UsageDimensionName[]
}

interface UsageEventPageArgs {
  customerId: string
  from: Date | null
  to: Date | null
  first: number | null
  after: string | null
  model?: string | null
  feature?: string | null
}

export interface UsageReadService {
  /** usageSummary: totals and groups over [from, to) for one customer or the whole tenant. */
  summary(tenant: Tenant, args: UsageSummaryArgs): Promise<UsageSummaryView>
  /** usageEvents: one page of a customer's events, newest first. */
  events(tenant: Tenant, args: UsageEventPageArgs): Promise<UsageEventPage>
  /** What the ledger says a customer was billed in [from, to) (rollup hours plus raw edges), exact. */
  billedAmount(executor: Executor, tenantId: string, customerId: string, from: Date, to: Date): Promise<string>
}

export function createUsageReadService({ db }: { db: Db }): UsageReadService {
  return {
    summary: (tenant, args) => loadUsageSummary(db, { tenant, ...args, groupBy: [...new Set(args.groupBy)] }),
    events: (tenant, args) => loadUsageEventPage(db, { tenant, ...args }),
    async billedAmount(executor, tenantId, customerId, from, to) {
      const scope = { tenantId, customerId }
      const rows = await repo.eventAggregates(
        executor,
        scope,
        summaryParts(planHours(from, to), repo.NO_GROUPING),
        repo.NO_GROUPING,
      )
      return totalsOf(rows).amount
    },
  }
}
