import { directionOf } from '@burnrate/catalog-sync'
import { priceDetail, requireCustomerReader, requireTenant } from '../auth/guard.ts'
import { ModelPrice } from '../catalog/schema.ts'
import { Customer } from '../customers/schema.ts'
import type { Db, Executor } from '../db/database.ts'
import type { Tenant, UsageEventRow } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { Decimal } from '../money/decimal.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import { HOUR_MS } from './rollups.ts'
import { PRICE_DETAIL, PricedLine, UsageEvent } from './schema.ts'
import * as repo from './summary-repository.ts'
import type {
  EventAggregate,
  EventPosition,
  GroupKey,
  GroupKeys,
  LineAggregate,
  SummaryScope,
  TimeRange,
} from './summary-repository.ts'

// ------------------------------------------------------------------ limits

const DAY_MS = 24 * HOUR_MS

export const SUMMARY_LIMITS = {
  maxRangeDays: 400,
  maxHourlyRangeDays: 31,
} as const

export const EVENTS_PAGE = { defaultFirst: 50, maxFirst: 500 } as const

const DIMENSIONS = ['MODEL', 'PROVIDER', 'FEATURE', 'USAGE_TYPE', 'DAY', 'HOUR'] as const
export type UsageDimensionName = (typeof DIMENSIONS)[number]

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
export function checkSummaryArgs(args: {
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

/**
 * Splits [from, to) into the whole UTC hours inside it (read from rollups) and the partial-hour
 * edges (read from raw events). Together they cover [from, to) exactly, without overlap.
 */
export function splitRange(from: Date, to: Date): { hours: TimeRange | null; edges: TimeRange[] } {
  const firstHour = Math.ceil(from.getTime() / HOUR_MS) * HOUR_MS
  const lastHour = Math.floor(to.getTime() / HOUR_MS) * HOUR_MS
  if (firstHour >= lastHour) return { hours: null, edges: [{ from, to }] }
  const edges: TimeRange[] = []
  if (from.getTime() < firstHour) edges.push({ from, to: new Date(firstHour) })
  if (lastHour < to.getTime()) edges.push({ from: new Date(lastHour), to })
  return { hours: { from: new Date(firstHour), to: new Date(lastHour) }, edges }
}

/** The grouping the dimensions ask for. DAY with HOUR groups by hour: every hour lies in one day. */
export function groupingOf(dimensions: readonly UsageDimensionName[]): {
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

const keyOf = (k: GroupKey) =>
  [
    k.bucketStart?.getTime() ?? '',
    k.model ?? '\u0000',
    k.provider ?? '\u0000',
    k.feature ?? '\u0000',
    k.usageType ?? '\u0000',
  ].join('\u0001')

/** Rollup and edge rows of event aggregates, added up per group. Exact. */
export function mergeEventAggregates(rows: readonly EventAggregate[]): EventAggregate[] {
  const sums = new Map<string, EventAggregate & { costSum: Decimal; amountSum: Decimal }>()
  for (const row of rows) {
    const key = keyOf(row)
    const sum = sums.get(key)
    if (!sum) {
      sums.set(key, { ...row, costSum: new Decimal(row.cost), amountSum: new Decimal(row.amount) })
      continue
    }
    sum.events += row.events
    sum.unpricedEvents += row.unpricedEvents
    sum.inputTokens += row.inputTokens
    sum.outputTokens += row.outputTokens
    sum.costSum = sum.costSum.plus(row.cost)
    sum.amountSum = sum.amountSum.plus(row.amount)
  }
  return [...sums.values()].map(({ costSum, amountSum, ...sum }) => ({
    ...sum,
    cost: costSum.toFixed(),
    amount: amountSum.toFixed(),
  }))
}

/** Rollup and edge rows of line aggregates, added up per group and usage type. Exact. */
export function mergeLineAggregates(rows: readonly LineAggregate[]): LineAggregate[] {
  const sums = new Map<string, LineAggregate & { quantitySum: Decimal; costSum: Decimal; amountSum: Decimal }>()
  for (const row of rows) {
    const key = keyOf(row)
    const sum = sums.get(key)
    if (!sum) {
      sums.set(key, {
        ...row,
        quantitySum: new Decimal(row.quantity),
        costSum: new Decimal(row.cost),
        amountSum: new Decimal(row.amount),
      })
      continue
    }
    sum.events += row.events
    sum.quantitySum = sum.quantitySum.plus(row.quantity)
    sum.costSum = sum.costSum.plus(row.cost)
    sum.amountSum = sum.amountSum.plus(row.amount)
  }
  return [...sums.values()].map(({ quantitySum, costSum, amountSum, ...sum }) => ({
    ...sum,
    quantity: quantitySum.toFixed(),
    cost: costSum.toFixed(),
    amount: amountSum.toFixed(),
  }))
}

/** '' stands for "none" in rollup keys; the API says null. */
const noneToNull = (value: string | null) => (value === '' ? null : value)

export function eventGroup(row: EventAggregate): UsageGroupView {
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
export function lineGroup(row: LineAggregate): UsageGroupView {
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

export function compareGroups(a: UsageGroupView, b: UsageGroupView): number {
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

export function totalsOf(rows: readonly EventAggregate[]) {
  const [merged] = mergeEventAggregates(
    rows.map((r) => ({ ...r, bucketStart: null, model: null, provider: null, feature: null, usageType: null })),
  )
  return {
    events: merged?.events ?? 0,
    unpricedEvents: merged?.unpricedEvents ?? 0,
    inputTokens: merged?.inputTokens ?? 0,
    outputTokens: merged?.outputTokens ?? 0,
    cost: merged ? new Decimal(merged.cost).toFixed() : '0',
    amount: merged ? new Decimal(merged.amount).toFixed() : '0',
  }
}

/**
 * Totals and groups over [from, to): whole hours from the rollups, partial-hour edges from raw
 * events, merged exactly. Totals always come from usage_rollups (+ edges); USAGE_TYPE groups from
 * the line rollups (+ the edges' lines), so they add up to the totals' cost and amount.
 */
export async function loadUsageSummary(
  db: Db,
  args: { tenant: Tenant; customerId: string | null; from: Date; to: Date; groupBy: readonly UsageDimensionName[] },
): Promise<UsageSummaryView> {
  checkSummaryArgs(args)
  const scope: SummaryScope = { tenantId: args.tenant.id, customerId: args.customerId }
  const { hours, edges } = splitRange(args.from, args.to)
  const { keys, byUsageType, grouped } = groupingOf(args.groupBy)

  // Event aggregates are grouped by the requested keys unless the groups come from lines.
  const eventKeys = grouped && !byUsageType ? keys : repo.NO_GROUPING
  const read = (executor: Executor) =>
    Promise.all([
      hours ? repo.rollupEventAggregates(executor, scope, hours, eventKeys) : [],
      repo.rawEventAggregates(executor, scope, edges, eventKeys),
      byUsageType && hours ? repo.rollupLineAggregates(executor, scope, hours, keys) : [],
      byUsageType ? repo.rawLineAggregates(executor, scope, edges, keys) : [],
    ])
  // Usage-type groups and the totals come from different tables: read them in one snapshot so that
  // concurrent ingest cannot make the groups disagree with the totals. (Otherwise the totals are
  // the sum of the groups, and the rollup hours and edges are disjoint in time.)
  const [rollupEvents, edgeEvents, rollupLines, edgeLines] = byUsageType
    ? await db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read)
    : await read(db)
  const events = mergeEventAggregates([...rollupEvents, ...edgeEvents])
  const groups = !grouped
    ? []
    : byUsageType
      ? mergeLineAggregates([...rollupLines, ...edgeLines]).map(lineGroup)
      : events.map(eventGroup)

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
export const encodeCursor = (p: EventPosition): string => eventCursor.encode({ at: p.ts, id: p.id })
export function decodeCursor(cursor: string): EventPosition {
  const { at, id } = eventCursor.decode(cursor)
  return { ts: at, id }
}

export type UsageEventPage = Page<UsageEventRow>

export async function loadUsageEventPage(
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

// ------------------------------------------------------------------ GraphQL types

const UsageDimension = builder.enumType('UsageDimension', { values: DIMENSIONS })

const UsageGroup = builder.objectRef<UsageGroupView>('UsageGroup').implement({
  description: 'Usage of one combination of the requested dimensions; dimensions not grouped by are null.',
  fields: (t) => ({
    model: t.exposeString('model', { nullable: true }),
    provider: t.exposeString('provider', { nullable: true }),
    feature: t.exposeString('feature', { nullable: true }),
    usageType: t.exposeString('usageType', { nullable: true }),
    bucketStart: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Start of the UTC day or hour, when grouped by DAY or HOUR.',
      resolve: (g) => g.bucketStart,
    }),
    events: t.exposeInt('events', {
      description: 'Events in the group; with USAGE_TYPE, events with a priced line of that type.',
    }),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
    cost: t.field({
      type: 'Decimal',
      description: `What the tenant pays its providers. ${PRICE_DETAIL}`,
      resolve: priceDetail((g) => g.cost),
    }),
    amount: t.field({ type: 'Decimal', resolve: (g) => g.amount }),
  }),
})

const UsageSummary = builder.objectRef<UsageSummaryView>('UsageSummary').implement({
  fields: (t) => ({
    customerId: t.exposeString('customerId', { nullable: true }),
    from: t.field({ type: 'DateTime', resolve: (s) => s.from }),
    to: t.field({ type: 'DateTime', resolve: (s) => s.to }),
    currency: t.exposeString('currency'),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
    cost: t.field({
      type: 'Decimal',
      description: `What the tenant pays its providers. ${PRICE_DETAIL}`,
      resolve: priceDetail((s) => s.cost),
    }),
    amount: t.field({ type: 'Decimal', description: 'What the customer is billed.', resolve: (s) => s.amount }),
    groups: t.field({ type: [UsageGroup], description: 'Empty without groupBy.', resolve: (s) => s.groups }),
  }),
})

const UsageEventConnection = connection('UsageEvent', UsageEvent)

builder.objectFields(UsageEvent, (t) => ({
  customer: t.field({
    type: Customer,
    nullable: true,
    resolve: (event, _args, ctx) => ctx.loaders.customer.load(`${event.tenant_id}\u0001${event.customer_id}`),
  }),
}))

builder.objectFields(PricedLine, (t) => ({
  price: t.field({
    type: ModelPrice,
    nullable: true,
    description: 'The effective-dated catalog row that priced this line.',
    // Lines are only reachable through the caller's own events; its tenant also sees its own (negotiated) rows.
    resolve: (line, _args, ctx) => ctx.loaders.price.load(`${requireTenant(ctx).id}\u0001${line.priceId}`),
  }),
}))

builder.queryFields((t) => ({
  usageSummary: t.field({
    type: UsageSummary,
    description: 'Usage and spend over [from, to) for one customer, or the whole tenant when customerId is null.',
    args: {
      customerId: t.arg.string(),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      groupBy: t.arg({ type: [UsageDimension] }),
    },
    resolve: (_root, args, ctx) =>
      loadUsageSummary(ctx.services.db, {
        // The whole tenant's usage is for its secret key; a widget session reads only its customer.
        tenant: args.customerId == null ? requireTenant(ctx) : requireCustomerReader(ctx, args.customerId),
        customerId: args.customerId ?? null,
        from: args.from,
        to: args.to,
        groupBy: [...new Set(args.groupBy ?? [])],
      }),
  }),
  usageEvents: t.field({
    type: UsageEventConnection,
    description:
      "A customer's events, newest first. Keyset pages on (timestamp, id): ingest between pages never repeats or skips a stored event.",
    args: {
      customerId: t.arg.string({ required: true }),
      from: t.arg({ type: 'DateTime' }),
      to: t.arg({ type: 'DateTime' }),
      ...pageArgs(t.arg, EVENTS_PAGE),
      model: t.arg.string({
        description:
          'Only events of this model, as usageSummary groups MODEL: the canonical model, or the reported one when unknown.',
      }),
      feature: t.arg.string({ description: 'Only events of this feature.' }),
    },
    resolve: (_root, args, ctx) =>
      loadUsageEventPage(ctx.services.db, {
        model: args.model ?? null,
        feature: args.feature ?? null,
        tenant: requireCustomerReader(ctx, args.customerId),
        customerId: args.customerId,
        from: args.from ?? null,
        to: args.to ?? null,
        first: args.first ?? null,
        after: args.after ?? null,
      }),
  }),
}))
