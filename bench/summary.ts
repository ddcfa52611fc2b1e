/**
 * usageSummary at scale. Fills a fresh database with 5,000,000 events of one tenant — one target
 * customer holds a month of events (1/3 of the rows), 200 other customers the rest — then times
 * usageSummary for the target over that month (from/to not hour-aligned, so partial hours are
 * read from raw events too) with groupBy [], [MODEL], [DAY], [MODEL, DAY], and checks its totals against a
 * direct SUM over usage_events.
 *
 * The fill is SQL, not ingest: ~100 template events are recorded through the real ingest service
 * (so prices, lines, plan and amounts are what ingest writes), then generate_series copies them
 * with new ids, customers and timestamps (content_hash recomputed in SQL), and the rollup tables
 * are built with INSERT … SELECT … GROUP BY from the events, keyed as rollups.ts keys them.
 * A few generated rows are then re-recorded through the ingest service under a second tenant and
 * compared column by column with the generated ones.
 *
 *   npx tsx bench/summary.ts [--events 5000000] [--runs 50]      (BENCH_EVENTS=300000 for a quick check)
 */
import { Decimal } from '../packages/api/src/money/decimal.ts'
import { planHours } from '../packages/api/src/shared/date-range.ts'
import { checkAgainstIngest, fillDatabase, PLAN, TARGET } from './fill.ts'
import {
  distribution,
  fmt,
  graphql,
  main,
  numericOptions,
  printHeader,
  psql,
  psqlRows,
  setUpApp,
  timed,
} from './lib.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

const SUMMARY_QUERY = `query($customerId: String, $from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]) {
  usageSummary(customerId: $customerId, from: $from, to: $to, groupBy: $groupBy) {
    events unpricedEvents inputTokens outputTokens cost amount
    groups { model bucketStart events inputTokens outputTokens cost amount }
  }
}`

interface SummaryResult {
  events: number
  unpricedEvents: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
  groups: {
    model: string | null
    bucketStart: string | null
    events: number
    inputTokens: number
    outputTokens: number
    cost: string
    amount: string
  }[]
}

main(async () => {
  const options = numericOptions('summary', {
    events: { env: 'BENCH_EVENTS', default: 5_000_000, help: 'events in the database (1/3 for the target customer)' },
    customers: { env: 'BENCH_CUSTOMERS', default: 200, help: 'other customers' },
    days: { env: 'BENCH_DAYS', default: 30, help: "length of the target's month" },
    templates: { env: 'BENCH_TEMPLATES', default: 96, help: 'distinct priced template events' },
    runs: { env: 'BENCH_RUNS', default: 50, help: 'timed runs per groupBy' },
    warmupRuns: { env: 'BENCH_WARMUP_RUNS', default: 5, help: 'untimed runs per groupBy' },
  })
  printHeader('summary: usageSummary over rollups + raw partial hours', options)
  if (options.customers < 1 || options.customers > 999) throw new Error('--customers must be 1..999')

  const bench = await setUpApp('summary')
  try {
    const monthEnd = Math.floor(Date.now() / DAY_MS) * DAY_MS
    const monthStart = monthEnd - options.days * DAY_MS
    await bench.db
      .insertInto('pricing_plans')
      .values({
        tenant_id: bench.tenant.id,
        customer_id: null,
        kind: PLAN.kind,
        percent: PLAN.percent,
        effective_from: new Date('2000-01-01T00:00:00Z'),
      })
      .execute()

    console.log(
      `\nfill: ${fmt.int(options.events)} events, target ${TARGET} over ${new Date(monthStart).toISOString()} .. ${new Date(monthEnd).toISOString()}`,
    )
    const fill = await timed(() => fillDatabase(bench, { ...options, monthStart, monthEnd }))
    console.log(`fill total: ${fmt.s(fill.ms)}`)
    await checkAgainstIngest(bench, options.events)

    const from = new Date(monthStart + 17 * 60_000 + 23_456)
    const to = new Date(monthEnd - 41 * 60_000 - 12_345)
    const url = bench.database.url
    const direct = async (range: { from: Date; to: Date }): Promise<DirectTotals> => {
      // The events usageSummary reads raw: those in the partial hours planHours() picks (inside the
      // range, or the part of an end's hour outside it, taken away from the hour's rollup).
      const { raw } = planHours(range.from, range.to)
      const rawRanges = raw.length
        ? raw.map((r) => `(ts >= '${r.from.toISOString()}' and ts < '${r.to.toISOString()}')`).join(' or ')
        : 'false'
      const [row] = await psqlRows(
        url,
        `with e as (
           select * from usage_events
           where tenant_id = '${bench.tenant.id}' and customer_id = '${TARGET}'
             and ts >= '${new Date(Math.floor(range.from.getTime() / HOUR_MS) * HOUR_MS).toISOString()}'
             and ts < '${new Date(Math.ceil(range.to.getTime() / HOUR_MS) * HOUR_MS).toISOString()}')
         select count(*), coalesce(sum(cost), 0), coalesce(sum(amount), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
                (select count(*) from e where ${rawRanges})
         from e where ts >= '${range.from.toISOString()}' and ts < '${range.to.toISOString()}'`,
      )
      const [events, cost, amount, inputTokens, outputTokens, edgeEvents] = row!
      return {
        events: Number(events),
        cost: cost!,
        amount: amount!,
        inputTokens: Number(inputTokens),
        outputTokens: Number(outputTokens),
        edgeEvents: Number(edgeEvents),
      }
    }
    const edged = { from, to }
    // Informational: the same month on whole hours, so no raw edge is read.
    const aligned = {
      from: new Date(Math.ceil(from.getTime() / HOUR_MS) * HOUR_MS),
      to: new Date(Math.floor(to.getTime() / HOUR_MS) * HOUR_MS),
    }
    const totals = await direct(edged)
    const alignedTotals = await direct(aligned)
    console.log(`\nquery: usageSummary(customerId: "${TARGET}", from: ${from.toISOString()}, to: ${to.toISOString()})`)
    console.log(
      `  ${fmt.int(totals.events)} events in range; ${fmt.int(totals.edgeEvents)} read raw (partial hours: ${planHours(
        from,
        to,
      )
        .raw.map(
          (r) =>
            `${r.sign > 0 ? '+' : '-'}[${r.from.toISOString().slice(11, 19)}, ${r.to.toISOString().slice(11, 19)})`,
        )
        .join(' ')})`,
    )
    console.log(`  ${await rollupReadPlan(url, bench.tenant.id, aligned)}`)

    const variants: { groupBy: string[]; range: { from: Date; to: Date }; expected: DirectTotals; note: string }[] = [
      { groupBy: [], range: edged, expected: totals, note: '' },
      { groupBy: ['MODEL'], range: edged, expected: totals, note: '' },
      { groupBy: ['DAY'], range: edged, expected: totals, note: '' },
      { groupBy: ['MODEL', 'DAY'], range: edged, expected: totals, note: '' },
      { groupBy: ['FEATURE'], range: edged, expected: totals, note: ' (info: hourly rollups for whole hours)' },
      ...[[], ['MODEL'], ['MODEL', 'DAY']].map((groupBy) => ({
        groupBy,
        range: aligned,
        expected: alignedTotals,
        note: ' (info: hour-aligned from/to, nothing read raw)',
      })),
    ]
    const results: string[] = []
    let allMatch = true
    for (const { groupBy, range, expected, note } of variants) {
      const variables = { customerId: TARGET, from: range.from.toISOString(), to: range.to.toISOString(), groupBy }
      const run = () => graphql<{ usageSummary: SummaryResult }>(bench.app, bench.apiKey, SUMMARY_QUERY, variables)
      for (let i = 0; i < options.warmupRuns; i++) await run()
      const times: number[] = []
      let last: SummaryResult | null = null
      for (let i = 0; i < options.runs; i++) {
        const { value, ms } = await timed(run)
        times.push(ms)
        last = value.usageSummary
      }
      const d = distribution(times)
      const summary = last!
      const mismatches = compareTotals(summary, expected)
      if (mismatches.length) allMatch = false
      const label = `[${groupBy.join(', ')}]`
      console.log(
        `  groupBy ${label.padEnd(13)} ${String(summary.groups.length).padStart(4)} groups  p50 ${fmt.ms(d.p50).padStart(6)} ms  p95 ${fmt.ms(d.p95).padStart(6)} ms  max ${fmt.ms(d.max).padStart(6)} ms  ${mismatches.length ? `MISMATCH ${mismatches.join('; ')}` : 'totals match'}${note}`,
      )
      const name = label.replace(/[[\] ]/g, '') || 'none'
      results.push(`${range === aligned ? `aligned-${name}` : name}:p50=${fmt.ms(d.p50)},p95=${fmt.ms(d.p95)}`)
    }
    const baseline = distribution(
      await (async () => {
        const times: number[] = []
        for (let i = 0; i < options.warmupRuns + options.runs; i++)
          times.push((await timed(() => graphql(bench.app, bench.apiKey, '{ __typename }'))).ms)
        return times.slice(options.warmupRuns)
      })(),
    )
    console.log(
      `  baseline { __typename } through the same path: p50 ${fmt.ms(baseline.p50)} ms  p95 ${fmt.ms(baseline.p95)} ms (info: GraphQL + auth overhead)`,
    )
    const { events, cost, amount } = totals
    console.log(`  direct SQL: events ${events}, cost ${cost}, amount ${amount}`)
    if (!allMatch) throw new Error('usageSummary totals differ from the direct SUM over usage_events')
    console.log('totals match')
    console.log(`RESULT summary events=${options.events} fill_s=${(fill.ms / 1000).toFixed(1)} ${results.join(' ')}`)
  } finally {
    await bench.close()
  }
})

/**
 * How PostgreSQL reads the target's whole hours from usage_rollups (what usageSummary reads for
 * FEATURE and HOUR groupings; the others read whole days from the per-day rollups): scan node,
 * index, heap fetches, buffers, time. Info only; the SQL mirrors eventAggregates' hourly branch
 * with [MODEL, DAY].
 */
async function rollupReadPlan(url: string, tenantId: string, hours: { from: Date; to: Date }): Promise<string> {
  const json = await psql(
    url,
    `explain (analyze, buffers, format json)
     select date_bin(interval '24 hours', r.bucket, timestamptz '2000-01-01T00:00:00Z'), r.model, sum(r.events), sum(r.unpriced_events),
            sum(r.input_tokens), sum(r.output_tokens), sum(r.cost), sum(r.amount)
     from usage_rollups r
     where r.tenant_id = '${tenantId}' and r.customer_id = '${TARGET}'
       and r.bucket >= '${hours.from.toISOString()}'::timestamptz and r.bucket < '${hours.to.toISOString()}'::timestamptz
     group by 1, 2`,
  )
  interface PlanNode {
    'Node Type': string
    'Index Name'?: string
    'Heap Fetches'?: number
    'Actual Rows': number
    'Shared Hit Blocks': number
    'Shared Read Blocks': number
    Plans?: PlanNode[]
  }
  const [{ Plan: plan, 'Execution Time': ms }] = JSON.parse(json) as [{ Plan: PlanNode; 'Execution Time': number }]
  let scan = plan
  while (scan.Plans?.length && !/Scan/.test(scan['Node Type'])) scan = scan.Plans[0]!
  const index = scan['Index Name'] ? ` using ${scan['Index Name']}` : ''
  const heap = scan['Heap Fetches'] === undefined ? '' : `, ${fmt.int(scan['Heap Fetches'])} heap fetches`
  return (
    `rollup read of the whole hours ([MODEL, DAY], EXPLAIN ANALYZE, info): ${scan['Node Type']}${index}, ${fmt.int(scan['Actual Rows'])} rows${heap}, ` +
    `${fmt.int(plan['Shared Hit Blocks'] + plan['Shared Read Blocks'])} buffers, ${ms.toFixed(1)} ms`
  )
}

interface DirectTotals {
  events: number
  cost: string
  amount: string
  inputTokens: number
  outputTokens: number
  /** Of `events`, those in the partial hours at either end. */
  edgeEvents: number
}

/** Totals against the direct SQL sums, and (when grouped) the groups against the totals. */
function compareTotals(summary: SummaryResult, direct: DirectTotals): string[] {
  const problems: string[] = []
  const same = (name: string, a: number | string, b: number | string) => {
    if (!new Decimal(a).equals(new Decimal(b))) problems.push(`${name} ${a} != ${b}`)
  }
  same('events', summary.events, direct.events)
  same('cost', summary.cost, direct.cost)
  same('amount', summary.amount, direct.amount)
  same('inputTokens', summary.inputTokens, direct.inputTokens)
  same('outputTokens', summary.outputTokens, direct.outputTokens)
  if (summary.groups.length > 0) {
    const sum = (pick: (g: SummaryResult['groups'][number]) => number | string) =>
      summary.groups.reduce((acc, g) => acc.plus(pick(g)), new Decimal(0)).toFixed()
    same(
      'sum of group events',
      sum((g) => g.events),
      direct.events,
    )
    same(
      'sum of group amounts',
      sum((g) => g.amount),
      direct.amount,
    )
    same(
      'sum of group costs',
      sum((g) => g.cost),
      direct.cost,
    )
  }
  return problems
}
