import { sql } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { RatingRuleJson, UsageEventRow } from '../db/types.ts'

/** rating_plans, rating_counters, rating_reratings and the ledger reads rating needs. The only SQL of src/rating/. */

export interface PlanVersionRow {
  id: string
  customer_id: string | null
  version: number
  effective_from: Date
  prepaid_only: boolean
  rules: RatingRuleJson[]
}

export interface CostPlanRow {
  id: number
  customer_id: string | null
  kind: 'MARKUP' | 'MARGIN'
  percent: string
  effective_from: Date
}

const asDate = (d: Date | string) => (d instanceof Date ? d : new Date(d))

/** Appends a version for the owner (the tenant default when customerId is null): version = last + 1. */
export async function insertPlanVersion(
  db: Executor,
  plan: {
    tenantId: string
    id: string
    customerId: string | null
    effectiveFrom: Date
    prepaidOnly: boolean
    rules: RatingRuleJson[]
  },
): Promise<PlanVersionRow> {
  const row = await sql<PlanVersionRow>`
    insert into rating_plans (tenant_id, id, customer_id, version, effective_from, prepaid_only, rules)
    select ${plan.tenantId}, ${plan.id}, ${plan.customerId}, coalesce(max(version), 0) + 1, ${plan.effectiveFrom},
      ${plan.prepaidOnly}, ${JSON.stringify(plan.rules)}::jsonb
    from rating_plans where tenant_id = ${plan.tenantId} and coalesce(customer_id, '') = ${plan.customerId ?? ''}
    returning id, customer_id, version, effective_from, prepaid_only, rules`.execute(db)
  const r = row.rows[0]!
  return { ...r, effective_from: asDate(r.effective_from) }
}

/** Rating plan versions of these customers and the tenant default (customerIds null: every owner). */
export async function planVersions(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[] | null,
): Promise<PlanVersionRow[]> {
  const rows = await db
    .selectFrom('rating_plans')
    .select(['id', 'customer_id', 'version', 'effective_from', 'prepaid_only', 'rules'])
    .where('tenant_id', '=', tenantId)
    .$if(customerIds !== null, (q) =>
      q.where((eb) =>
        customerIds!.length
          ? eb.or([eb('customer_id', 'is', null), eb('customer_id', 'in', customerIds!)])
          : eb('customer_id', 'is', null),
      ),
    )
    .orderBy('effective_from')
    .orderBy('version')
    .execute()
  return rows.map((r) => ({ ...r, effective_from: asDate(r.effective_from) }))
}

/**
 * Every plan version of these customers and the tenant default (customerIds null: every owner), in
 * one statement: rating plans, and setPricingPlan's rows (markup / margin: plans whose only rule is
 * cost-based). Ingest reads this before each batch.
 */
export async function planBookRows(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[] | null,
): Promise<{ rated: PlanVersionRow[]; costs: CostPlanRow[] }> {
  const owners =
    customerIds === null
      ? sql`true`
      : customerIds.length
        ? sql`(customer_id is null or customer_id in (${sql.join(customerIds)}))`
        : sql`customer_id is null`
  const { rows } = await sql<{
    source: 'rating' | 'cost'
    id: string
    customer_id: string | null
    version: number
    effective_from: Date | string
    prepaid_only: boolean
    rules: RatingRuleJson[] | null
    kind: 'MARKUP' | 'MARGIN' | null
    percent: string | null
  }>`
    select 'rating' as source, id, customer_id, version, effective_from, prepaid_only, rules,
      null::text as kind, null::text as percent
    from rating_plans where tenant_id = ${tenantId} and ${owners}
    union all
    select 'cost', id::text, customer_id, 0, effective_from, false, null::jsonb, kind::text, percent::text
    from pricing_plans where tenant_id = ${tenantId} and ${owners}`.execute(db)
  const rated: PlanVersionRow[] = []
  const costs: CostPlanRow[] = []
  for (const r of rows) {
    const effective_from = asDate(r.effective_from)
    if (r.source === 'rating')
      rated.push({
        id: r.id,
        customer_id: r.customer_id,
        version: Number(r.version),
        effective_from,
        prepaid_only: r.prepaid_only,
        rules: r.rules!,
      })
    else
      costs.push({ id: Number(r.id), customer_id: r.customer_id, kind: r.kind!, percent: r.percent!, effective_from })
  }
  return { rated, costs }
}

export interface CounterKey {
  customerId: string
  planId: string
  periodStart: Date
  ruleId: string
}

const counterKey = (k: CounterKey) => [k.customerId, k.planId, k.periodStart.toISOString(), k.ruleId].join('\u0001')
export { counterKey }

/**
 * Locks the counters (creating missing ones at zero) in key order, so concurrent batches of a
 * customer wait for each other and never deadlock; returns each one's quantity so far.
 */
export async function lockCounters(
  trx: Executor,
  tenantId: string,
  keys: readonly CounterKey[],
): Promise<Map<string, string>> {
  const unique = [...new Map(keys.map((k) => [counterKey(k), k])).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, k]) => k)
  if (unique.length === 0) return new Map()
  await trx
    .insertInto('rating_counters')
    .values(
      unique.map((k) => ({
        tenant_id: tenantId,
        customer_id: k.customerId,
        plan_id: k.planId,
        period_start: k.periodStart,
        rule_id: k.ruleId,
        quantity: '0',
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .execute()
  const rows = await trx
    .selectFrom('rating_counters')
    .select(['customer_id', 'plan_id', 'period_start', 'rule_id', 'quantity'])
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or(
        unique.map((k) =>
          eb.and([
            eb('customer_id', '=', k.customerId),
            eb('plan_id', '=', k.planId),
            eb('period_start', '=', k.periodStart),
            eb('rule_id', '=', k.ruleId),
          ]),
        ),
      ),
    )
    .orderBy(sql`customer_id collate "C"`)
    .orderBy(sql`plan_id collate "C"`)
    .orderBy('period_start')
    .orderBy(sql`rule_id collate "C"`)
    .forUpdate()
    .execute()
  return new Map(
    rows.map((r) => [
      counterKey({
        customerId: r.customer_id,
        planId: r.plan_id,
        periodStart: asDate(r.period_start),
        ruleId: r.rule_id,
      }),
      String(r.quantity),
    ]),
  )
}

export async function saveCounters(
  trx: Executor,
  tenantId: string,
  values: readonly (CounterKey & { quantity: string })[],
): Promise<void> {
  for (const v of values)
    await trx
      .updateTable('rating_counters')
      .set({ quantity: v.quantity })
      .where('tenant_id', '=', tenantId)
      .where('customer_id', '=', v.customerId)
      .where('plan_id', '=', v.planId)
      .where('period_start', '=', v.periodStart)
      .where('rule_id', '=', v.ruleId)
      .execute()
}

/** Ids of these events the ledger already holds (stored, or archived by retention with their key kept). */
export async function knownEventIds(trx: Executor, tenantId: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const rows = await trx
    .selectFrom('usage_event_keys')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', ids)
    .execute()
  return new Set(rows.map((r) => r.id))
}

export interface PeriodLineRow {
  plan_id: string | null
  plan_version: number | null
  rule_id: string | null
  rule: string | null
  tier: number | null
  usage_type: string | null
  unit_price: string | null
  quantity: string
  amount: string
}

/**
 * A customer's billed lines in [from, to), summed per plan version, rule, tier and usage type
 * (amount-level rules over all usage types). Lines billed without a rating plan have no parts and
 * come back with rule null.
 */
export async function periodLines(
  db: Executor,
  tenantId: string,
  customerId: string,
  from: Date,
  to: Date,
): Promise<PeriodLineRow[]> {
  const result = await sql<PeriodLineRow>`
    select line ->> 'planId' as plan_id, (line ->> 'planVersion')::int as plan_version,
      part ->> 'ruleId' as rule_id, part ->> 'rule' as rule, (part ->> 'tier')::int as tier,
      case when part ->> 'rule' in ('AMOUNT_ALLOWANCE', 'AMOUNT_TIERS') then null else line ->> 'usageType' end as usage_type,
      part ->> 'unitPrice' as unit_price,
      sum(coalesce((part ->> 'quantity')::numeric, (line ->> 'quantity')::numeric))::text as quantity,
      sum(coalesce((part ->> 'amount')::numeric, (line ->> 'amount')::numeric))::text as amount
    from usage_events e
      -- As billed now: the latest correction (re-pricing, re-rating) of the event, else its own lines.
      cross join lateral (select coalesce((select c.new_lines from usage_corrections c
        where c.tenant_id = e.tenant_id and c.event_id = e.id order by c.id desc limit 1), e.lines) as lines) cur
      cross join lateral jsonb_array_elements(cur.lines) as l(line)
      cross join lateral jsonb_array_elements(coalesce(line -> 'parts', '[null]'::jsonb)) as p(part)
    where e.tenant_id = ${tenantId} and e.customer_id = ${customerId} and e.ts >= ${from} and e.ts < ${to}
      and e.status = 'PRICED'
    group by 1, 2, 3, 4, 5, 6, 7
    order by 2 nulls first, 1, 3 nulls first, 5 nulls first, 6`.execute(db)
  return result.rows.map((r) => ({ ...r, quantity: String(r.quantity), amount: String(r.amount) }))
}

export async function insertRerating(
  db: Executor,
  row: {
    tenantId: string
    id: string
    customerId: string
    periodStart: Date
    reason: string
    events: number
    correctedEvents: number
    amountDelta: string
    createdAt: Date
  },
): Promise<void> {
  await db
    .insertInto('rating_reratings')
    .values({
      tenant_id: row.tenantId,
      id: row.id,
      customer_id: row.customerId,
      period_start: row.periodStart,
      reason: row.reason,
      events: row.events,
      corrected_events: row.correctedEvents,
      amount_delta: row.amountDelta,
      created_at: row.createdAt,
    })
    .execute()
}

/** Customers with PRICED events in [from, to): whom a tenant-wide re-rating looks at. */
export async function customersWithPricedEvents(
  db: Executor,
  tenantId: string,
  from: Date,
  to: Date,
): Promise<string[]> {
  const rows = await db
    .selectFrom('usage_events')
    .select('customer_id')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'PRICED')
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .orderBy('customer_id')
    .execute()
  return rows.map((r) => r.customer_id)
}

/** A customer's PRICED events in [from, to), in event order (timestamp, then id): the order a re-rating rates them in. */
export function pricedEventsInOrder(
  db: Executor,
  tenantId: string,
  customerId: string,
  from: Date,
  to: Date,
): Promise<UsageEventRow[]> {
  return db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('status', '=', 'PRICED')
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .orderBy('ts')
    .orderBy(sql`id collate "C"`)
    .execute()
}

/** Ids of these events that are still UNPRICED (read under the counters' lock by late pricing). */
export async function stillUnpricedIds(trx: Executor, tenantId: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const rows = await trx
    .selectFrom('usage_events')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', ids)
    .where('status', '=', 'UNPRICED')
    .execute()
  return new Set(rows.map((r) => r.id))
}

export interface ReratingRow {
  id: string
  customer_id: string
  period_start: Date
  reason: string
  events: number
  corrected_events: number
  amount_delta: string
  created_at: Date
}

/** A tenant's re-ratings, newest first (one customer's when customerId is set). */
export async function listReratings(
  db: Executor,
  tenantId: string,
  filter: { customerId: string | null; first: number },
): Promise<ReratingRow[]> {
  const rows = await db
    .selectFrom('rating_reratings')
    .select(['id', 'customer_id', 'period_start', 'reason', 'events', 'corrected_events', 'amount_delta', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .$if(filter.customerId !== null, (q) => q.where('customer_id', '=', filter.customerId!))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.first)
    .execute()
  return rows.map((r) => ({
    ...r,
    period_start: asDate(r.period_start),
    created_at: asDate(r.created_at),
    amount_delta: String(r.amount_delta),
  }))
}

/** A plan version's counters of one customer period (rule id → quantity), read without a lock. */
export async function readCounters(
  db: Executor,
  tenantId: string,
  customerId: string,
  planId: string,
  periodStart: Date,
): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom('rating_counters')
    .select(['rule_id', 'quantity'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .where('plan_id', '=', planId)
    .where('period_start', '=', periodStart)
    .execute()
  return new Map(rows.map((r) => [r.rule_id, String(r.quantity)]))
}
