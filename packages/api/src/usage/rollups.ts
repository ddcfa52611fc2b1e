import type {
  Insertable,
  PricedLineJson,
  UsageEventTable,
  UsageLineRollupTable,
  UsageRollupTable,
} from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { HOUR_MS } from '../shared/date-range.ts'

export type RollupDelta = Insertable<UsageRollupTable>
export type LineRollupDelta = Insertable<UsageLineRollupTable>

interface RollupAccumulator {
  customer_id: string
  bucket: Date
  provider: string
  model: string
  feature: string
  events: number
  unpriced_events: number
  input_tokens: number
  output_tokens: number
  cost: Decimal
  amount: Decimal
}

interface LineAccumulator {
  customer_id: string
  bucket: Date
  provider: string
  model: string
  feature: string
  usage_type: string
  events: number
  quantity: Decimal
  cost: Decimal
  amount: Decimal
}

/** What rollupDeltas reads of an event (an insertable row, or a stored one with its lines parsed). */
type RollupSource = Pick<
  Insertable<UsageEventTable>,
  | 'customer_id'
  | 'ts'
  | 'canonical_provider'
  | 'provider'
  | 'canonical_model'
  | 'model'
  | 'feature'
  | 'status'
  | 'input_tokens'
  | 'output_tokens'
  | 'cost'
  | 'amount'
> & { lines: unknown }

function hourBucket(at: Date): Date {
  return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS)
}

/** The rollup key's names for an event: canonical when priced, as reported otherwise, '' for none. */
export function rollupDimensions(event: {
  canonical_provider?: string | null
  provider?: string | null
  canonical_model?: string | null
  model: string
  feature?: string | null
}) {
  return {
    provider: event.canonical_provider ?? event.provider ?? '',
    model: event.canonical_model ?? event.model,
    feature: event.feature ?? '',
  }
}

/**
 * The rollup key, defined once: the usage_rollups primary key after tenant_id (customer, hour
 * bucket, provider, model, feature); usage_line_rollups adds the usage type. Every writer (ingest's
 * SQL in usage/repository.ts follows the same rules, late pricing, corrections) keys rows this way.
 */
export interface RollupKey {
  customer_id: string
  bucket: Date
  provider: string
  model: string
  feature: string
}

/** An event's rollup key: its customer, the hour of its timestamp, and its rollupDimensions. */
export function rollupKeyOf(
  event: Parameters<typeof rollupDimensions>[0] & { customer_id: string; ts: Date | string },
): RollupKey {
  return { customer_id: event.customer_id, bucket: hourBucket(new Date(event.ts)), ...rollupDimensions(event) }
}

/** The key as one string (sorting by it is the order rollup rows are locked in). */
function rollupKey(key: Omit<RollupKey, 'bucket'> & { bucket: Date | string }): string {
  return [key.customer_id, new Date(key.bucket).getTime(), key.provider, key.model, key.feature].join('\u0001')
}

function lineRollupKey(key: Omit<RollupKey, 'bucket'> & { bucket: Date | string; usage_type: string }): string {
  return rollupKey(key) + '\u0001' + key.usage_type
}

/**
 * Folds newly stored events into rollup deltas (pure). Deltas are sorted by key so concurrent
 * writers lock rollup rows in one order.
 */
export function rollupDeltas<E extends RollupSource>(
  tenantId: string,
  events: readonly E[],
  linesOf: (event: E) => readonly PricedLineJson[] = (event) => JSON.parse(event.lines as string) as PricedLineJson[],
): { rollups: RollupDelta[]; lineRollups: LineRollupDelta[] } {
  const rollups = new Map<string, RollupAccumulator>()
  const lineRollups = new Map<string, LineAccumulator>()
  for (const event of events) {
    const rowKey = rollupKeyOf(event)
    const key = rollupKey(rowKey)
    let r = rollups.get(key)
    if (!r) {
      r = {
        ...rowKey,
        events: 0,
        unpriced_events: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost: new Decimal(0),
        amount: new Decimal(0),
      }
      rollups.set(key, r)
    }
    r.events += 1
    if (event.status === 'UNPRICED') r.unpriced_events += 1
    r.input_tokens += event.input_tokens ?? 0
    r.output_tokens += event.output_tokens ?? 0
    if (event.cost) r.cost = r.cost.plus(event.cost)
    if (event.amount) r.amount = r.amount.plus(event.amount)

    for (const line of linesOf(event)) {
      const lineKey = lineRollupKey({ ...rowKey, usage_type: line.usageType })
      let l = lineRollups.get(lineKey)
      if (!l) {
        l = {
          ...rowKey,
          usage_type: line.usageType,
          events: 0,
          quantity: new Decimal(0),
          cost: new Decimal(0),
          amount: new Decimal(0),
        }
        lineRollups.set(lineKey, l)
      }
      l.events += 1
      l.quantity = l.quantity.plus(line.quantity)
      l.cost = l.cost.plus(line.cost)
      l.amount = l.amount.plus(line.amount)
    }
  }
  const byKey = <T>(m: Map<string, T>) =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v)
  return {
    rollups: byKey(rollups).map((r) => ({
      ...r,
      tenant_id: tenantId,
      cost: r.cost.toFixed(),
      amount: r.amount.toFixed(),
    })),
    lineRollups: byKey(lineRollups).map((l) => ({
      ...l,
      tenant_id: tenantId,
      quantity: l.quantity.toFixed(),
      cost: l.cost.toFixed(),
      amount: l.amount.toFixed(),
    })),
  }
}

export function negateRollup(delta: RollupDelta): RollupDelta {
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
function merge<T>(deltas: readonly T[], keyOf: (d: T) => string, sum: (a: T, b: T) => T): T[] {
  const byKey = new Map<string, T>()
  for (const delta of deltas) {
    const key = keyOf(delta)
    const previous = byKey.get(key)
    byKey.set(key, previous ? sum(previous, delta) : delta)
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v)
}
const add = (a: string, b: string) => new Decimal(a).plus(b).toFixed()

export const mergeRollups = (deltas: readonly RollupDelta[]) =>
  merge(deltas, rollupKey, (a, b) => ({
    ...a,
    events: (a.events ?? 0) + (b.events ?? 0),
    unpriced_events: (a.unpriced_events ?? 0) + (b.unpriced_events ?? 0),
    input_tokens: (a.input_tokens ?? 0) + (b.input_tokens ?? 0),
    output_tokens: (a.output_tokens ?? 0) + (b.output_tokens ?? 0),
    cost: add(a.cost, b.cost),
    amount: add(a.amount, b.amount),
  }))

export const mergeLineRollups = (deltas: readonly LineRollupDelta[]) =>
  merge(deltas, lineRollupKey, (a, b) => ({
    ...a,
    events: (a.events ?? 0) + (b.events ?? 0),
    quantity: add(a.quantity, b.quantity),
    cost: add(a.cost, b.cost),
    amount: add(a.amount, b.amount),
  }))
