/**
 * A large usage history without ingest, for the benchmarks that read it (bench/summary.ts,
 * bench/console-render.ts): ~100 template events are recorded through the real ingest service (so
 * prices, lines, plan and amounts are what ingest writes), then generate_series copies them with new
 * ids, customers and timestamps (content_hash recomputed in SQL), and the rollup tables are built
 * with INSERT … SELECT … GROUP BY from the events, keyed as rollups.ts keys them.
 * checkAgainstIngest re-records a few generated rows through ingest under a second tenant and
 * compares them column by column with the generated ones.
 *
 * One customer (TARGET) holds 1/3 of the events and uses every template; `customers` others
 * ('cust-001' …) share the rest, each drawing from a handful of templates.
 */
import type { UsageEventInput } from '../packages/api/src/usage/validation.ts'
import { canonicalEventString, contentHash } from '../packages/api/src/usage/signing.ts'
import { eventSource } from './events.ts'
import { fmt, psql, psqlRows, psqlValue, timed, type BenchApp } from './lib.ts'

const HOUR_MS = 3_600_000
export const TARGET = 'cust-target'
/** The tenant's plan: a 20 % markup on cost (insert it before filling). */
export const PLAN = { kind: 'MARKUP' as const, percent: '20' }
const FILLED_TABLES = ['usage_events', 'usage_rollups', 'usage_line_rollups'] as const
/** Templates each non-target customer draws from. */
const OTHER_CUSTOMER_TEMPLATES = 6

interface FillOptions {
  events: number
  customers: number
  templates: number
  monthStart: number
  monthEnd: number
}

/** Runs scripts concurrently, one psql session each (the machine has two cores); prints each one's time. */
async function lanes(url: string, scripts: string[]): Promise<string> {
  const times = await Promise.all(scripts.map((s) => timed(() => psql(url, s))))
  return times.length > 1 ? `(sessions ${times.map((t) => fmt.s(t.ms)).join(', ')})` : ''
}

/** Runs the scripts in order on `sessions` concurrent psql sessions, each taking the next when done. */
async function queue(url: string, scripts: string[], sessions: number): Promise<string> {
  let next = 0
  const busy = Array.from({ length: sessions }, () => 0)
  await Promise.all(
    busy.map(async (_, session) => {
      for (let script = scripts[next++]; script !== undefined; script = scripts[next++]) {
        busy[session]! += (await timed(() => psql(url, script))).ms
      }
    }),
  )
  return `(sessions busy ${busy.map((ms) => fmt.s(ms)).join(', ')})`
}

/** Times one fill step; a string result (the sessions' times) is printed after the total. */
async function step(label: string, fn: () => Promise<unknown>): Promise<void> {
  const { value, ms } = await timed(fn)
  console.log(`  ${label.padEnd(60)} ${fmt.s(ms).padStart(8)} ${typeof value === 'string' ? value : ''}`)
}

export async function fillDatabase(bench: BenchApp, options: FillOptions): Promise<void> {
  const url = bench.database.url
  const tenantId = bench.tenant.id

  await step(`record ${options.templates} template events through ingest`, async () => {
    // Priced at a time inside the month; the check below makes sure no price changes within it.
    const source = eventSource({
      runId: 'template',
      customers: 1,
      endMs: options.monthStart + 2 * HOUR_MS,
      spanMs: HOUR_MS,
      seed: 1234,
    })
    const inputs: UsageEventInput[] = Array.from({ length: options.templates }, (_, i) => {
      const e = source(i)
      return { ...e, customerId: 'bench-template', timestamp: new Date(e.timestamp) }
    })
    const results = await bench.app.services.usage.record(bench.tenant, inputs)
    const bad = results.filter((r) => r.status !== 'RECORDED' || r.event.status !== 'PRICED')
    if (bad.length) throw new Error(`template events not recorded and priced: ${JSON.stringify(bad.slice(0, 3))}`)
  })

  const unstable = await psqlValue(
    url,
    `select count(*) from price_catalog c
     where (c.provider, c.model) in (select distinct canonical_provider, canonical_model from usage_events)
       and (c.time_window is not null
            or c.effective_from > '${new Date(options.monthStart).toISOString()}' and c.effective_from < '${new Date(options.monthEnd).toISOString()}'
            or c.effective_to > '${new Date(options.monthStart).toISOString()}' and c.effective_to < '${new Date(options.monthEnd).toISOString()}')`,
  )
  if (Number(unstable) !== 0)
    throw new Error('a template model has a price change or time window inside the month: templates would misprice')

  // Templates keep everything ingest computed; generated rows vary id, customer, ts and hash only.
  await psql(
    url,
    `create table bench_template as
       select (row_number() over (order by id))::int - 1 as k, * from usage_events where tenant_id = '${tenantId}';
     do $$ begin
       if exists (select 1 from bench_template where units is not null or metadata is not null or provider is not null) then
         raise exception 'templates must have no units, metadata or provider (the SQL content hash assumes so)';
       end if;
     end $$;
     delete from usage_line_rollups; delete from usage_rollups; delete from usage_events;
     delete from customers where id = 'bench-template';
     insert into customers (tenant_id, id) values ('${tenantId}', '${TARGET}');
     insert into customers (tenant_id, id)
       select '${tenantId}', 'cust-' || lpad(n::text, 3, '0') from generate_series(1, ${options.customers}) n;`,
  )

  // Bulk load without indexes and keys, then rebuild them from their own definitions: keys as
  // unique indexes first (CREATE INDEX locks allow two builds at once), attached as constraints after.
  // usage_events is partitioned by month (its keys cannot be re-attached with USING INDEX): it is
  // loaded with its indexes in place.
  const tables = FILLED_TABLES.map((t) => `'${t}'::regclass`).join(', ')
  const keys = await psqlRows(
    url,
    `select conrelid::regclass, conname, contype, pg_get_constraintdef(oid), coalesce(pg_get_indexdef(conindid), '')
     from pg_constraint where conrelid in (${tables}) and contype in ('p', 'u', 'f')
       and (select relkind from pg_class where oid = conrelid) <> 'p'`,
  )
  const indexes = await psqlRows(
    url,
    `select indexrelid::regclass, indrelid::regclass, pg_get_indexdef(indexrelid) from pg_index
     where indrelid in (${tables}) and (select relkind from pg_class where oid = indrelid) <> 'p' and not exists (select 1 from pg_constraint c where c.conindid = indexrelid and c.conrelid = indrelid)`,
  )
  const foreignKeys = keys.filter(([, , type]) => type === 'f')
  const uniqueKeys = keys.filter(([, , type]) => type !== 'f')
  await psql(
    url,
    [
      ...foreignKeys.map(([table, name]) => `alter table ${table} drop constraint ${name};`),
      ...uniqueKeys.map(([table, name]) => `alter table ${table} drop constraint ${name};`),
      ...indexes.map(([index]) => `drop index ${index};`),
    ].join('\n'),
  )

  const span = options.monthEnd - options.monthStart
  const randomOf = (salt: number) => `(hashint8extended(i, ${salt}) & 9223372036854775807)`
  // Every column comes from the template except those that make an event distinct; columns added
  // by later migrations follow the template too.
  const distinct: Record<string, string> = {
    id: 'g.id',
    customer_id: 'g.customer_id',
    ts: 'g.ts',
    received_at: `g.ts + interval '1.5 seconds'`,
    // contentHash(canonicalEventString(event)) of signing.ts, for events without provider, units or metadata
    content_hash: `rtrim(translate(encode(sha256(convert_to(
        '["burnrate.usage.v1",' || to_json(g.id)::text || ',' || to_json(g.customer_id)::text || ',' || to_json(t.model)::text || ',null,"'
        || to_char(g.ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '",'
        || t.input_tokens || ',' || t.output_tokens || ',' || t.cache_read_tokens || ',' || t.cache_write_tokens || ',' || t.reasoning_tokens
        || ',[],' || coalesce(to_json(t.feature)::text, 'null') || ',null]', 'UTF8')), 'base64'), '+/', '-_'), '=')`,
  }
  const columns = (
    await psqlRows(
      url,
      `select column_name from information_schema.columns where table_schema = current_schema() and table_name = 'usage_events' and is_generated = 'NEVER' and is_identity = 'NO' order by ordinal_position`,
    )
  ).map(([name]) => name!)
  // The target uses every template; each other customer a handful (its product calls a few models
  // for a few features), which is also what keeps the rollup tables smaller than the events.
  const insert = (lo: number, hi: number) => `
    set synchronous_commit = off;
    insert into usage_events (${columns.join(', ')})
    select ${columns.map((c) => distinct[c] ?? `t.${c}`).join(',\n      ')}
    from (
      select 'evt-' || c.i as id,
        case when c.n = 0 then '${TARGET}' else 'cust-' || lpad(c.n::text, 3, '0') end as customer_id,
        timestamptz '${new Date(options.monthStart).toISOString()}' + (c.r_ts % ${span}) * interval '1 millisecond' as ts,
        (case when c.n = 0 then c.r_k % ${options.templates} else (c.n * 37 + c.r_k % ${OTHER_CUSTOMER_TEMPLATES}) % ${options.templates} end)::int as k
      from (
        select i, case when i % 3 = 0 then 0 else 1 + ${randomOf(1)} % ${options.customers} end as n, ${randomOf(2)} as r_ts, ${randomOf(3)} as r_k
        from generate_series(${lo}, ${hi}) i
      ) c
    ) g join bench_template t on t.k = g.k;`
  const half = Math.floor(options.events / 2)
  await step(`insert ${fmt.int(options.events)} events (generate_series, 2 sessions)`, () =>
    lanes(url, [insert(0, half - 1), insert(half, options.events - 1)]),
  )

  // Hash aggregation, no JIT: the planner overestimates jsonb_array_elements and would sort.
  const session = `set work_mem = '1GB'; set jit = off; set enable_sort = off; set max_parallel_workers_per_gather = 0; set synchronous_commit = off;`
  const bucket = `date_trunc('hour', e.ts, 'UTC')`
  const dims = `coalesce(e.canonical_provider, e.provider, ''), coalesce(e.canonical_model, e.model), coalesce(e.feature, '')`
  // Two sessions, split by the parity of the hour: rollup keys include the hour, so no group spans both.
  const rollups = (parity: number) => `${session}
    insert into usage_rollups (tenant_id, customer_id, bucket, provider, model, feature, events, unpriced_events, input_tokens, output_tokens, cost, amount)
    select e.tenant_id, e.customer_id, ${bucket}, ${dims}, count(*), count(*) filter (where e.status = 'UNPRICED'),
           sum(e.input_tokens), sum(e.output_tokens), coalesce(sum(e.cost), 0), coalesce(sum(e.amount), 0)
    from usage_events e where extract(hour from e.ts at time zone 'UTC')::int % 2 = ${parity} group by 1, 2, 3, 4, 5, 6;
    insert into usage_line_rollups (tenant_id, customer_id, bucket, provider, model, feature, usage_type, events, quantity, cost, amount)
    select e.tenant_id, e.customer_id, ${bucket}, ${dims}, line.value ->> 'usageType', count(*),
           sum((line.value ->> 'quantity')::numeric), sum((line.value ->> 'cost')::numeric), sum((line.value ->> 'amount')::numeric)
    from usage_events e cross join lateral jsonb_array_elements(e.lines) as line(value)
    where extract(hour from e.ts at time zone 'UTC')::int % 2 = ${parity} group by 1, 2, 3, 4, 5, 6, 7;`
  // Rollups and index builds from one queue, two sessions pulling from it. Index builds on usage_events
  // only read it, like the rollup queries; a build on a rollup table waits (lock) for its insert.
  const builds = [...uniqueKeys, ...indexes.map(([name, table, def]) => [table, name, 'i', '', def])].map(
    ([table, , , , indexDef]) => ({
      table: table!,
      sql: `${indexDef};`,
    }),
  )
  const buildSettings = `set maintenance_work_mem = '1GB'; set max_parallel_maintenance_workers = 0;`
  const tasks = [
    rollups(0),
    rollups(1),
    ...builds.filter((b) => b.table === 'usage_events').map((b) => `${buildSettings} ${b.sql}`),
    ...builds.filter((b) => b.table !== 'usage_events').map((b) => `${buildSettings} ${b.sql}`),
  ]
  await step(`rollups (INSERT … SELECT … GROUP BY) and ${builds.length} index builds, 2 sessions`, () =>
    queue(url, tasks, 2),
  )
  await step('keys: primary keys attached, foreign keys validated', () =>
    psql(
      url,
      [
        ...uniqueKeys.map(
          ([table, name, type]) =>
            `alter table ${table} add constraint ${name} ${type === 'p' ? 'primary key' : 'unique'} using index ${name};`,
        ),
        ...foreignKeys.map(([table, name, , def]) => `alter table ${table} add constraint ${name} ${def};`),
      ].join('\n'),
    ),
  )
  // What the API's compactor (every 5 s) would have done by the time anyone reads: the per-day
  // rollups' deltas, written by the triggers on usage_rollups during the fill, moved into them.
  await step(
    'per-day rollups: deltas compacted',
    async () => `${fmt.int(await bench.app.services.overview.compactDayRollups())} delta rows`,
  )
  // A long-lived table is vacuumed and analyzed; without this, autovacuum would run during the timing.
  await step('vacuum (analyze) the three tables', () =>
    lanes(
      url,
      FILLED_TABLES.map((t) => `vacuum (analyze) ${t};`),
    ),
  )

  const [rows, rollupRows, lineRows, size] = (
    await psqlRows(
      url,
      `select (select count(*) from usage_events), (select count(*) from usage_rollups), (select count(*) from usage_line_rollups),
              pg_size_pretty(pg_database_size(current_database()))`,
    )
  )[0]!
  console.log(
    `  => usage_events ${fmt.int(Number(rows))} rows, usage_rollups ${fmt.int(Number(rollupRows))}, usage_line_rollups ${fmt.int(Number(lineRows))}; database ${size}`,
  )
  if (Number(rows) !== options.events) throw new Error(`expected ${options.events} events, found ${rows}`)
}

/**
 * Re-records a few generated events through the ingest service under a second tenant (same plan)
 * and compares what ingest stored with what the fill generated: prices, lines, amounts, hash.
 */
export async function checkAgainstIngest(bench: BenchApp, events: number): Promise<void> {
  const url = bench.database.url
  const { tenant: other } = await bench.app.services.tenants.create({ name: 'bench summary check' })
  await bench.db
    .insertInto('pricing_plans')
    .values({
      tenant_id: other.id,
      customer_id: null,
      kind: PLAN.kind,
      percent: PLAN.percent,
      effective_from: new Date('2000-01-01T00:00:00Z'),
    })
    .execute()
  const ids = [0, 1, 2, 3, 4, 5, Math.floor(events / 2), events - 1].map((i) => `'evt-${i}'`).join(', ')
  const columns = `id, customer_id, model, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, coalesce(feature, ''), status, cost, amount, lines::text, content_hash, canonical_provider, canonical_model, plan_kind, plan_percent`
  const generated = await psqlRows(
    url,
    `select ${columns} from usage_events where tenant_id = '${bench.tenant.id}' and id in (${ids}) order by id`,
  )
  const inputs: UsageEventInput[] = generated.map(
    ([id, customerId, model, ts, input, output, cacheRead, cacheWrite, feature]) => ({
      id: id!,
      customerId: customerId!,
      model: model!,
      timestamp: new Date(ts!),
      inputTokens: Number(input),
      outputTokens: Number(output),
      cacheReadTokens: Number(cacheRead),
      cacheWriteTokens: Number(cacheWrite),
      feature: feature || null,
    }),
  )
  for (const [i, input] of inputs.entries()) {
    if (contentHash(canonicalEventString(input)) !== generated[i]![13])
      throw new Error(`content_hash of generated ${input.id} differs from signing.ts`)
  }
  const results = await bench.app.services.usage.record(other, inputs)
  if (results.some((r) => r.status !== 'RECORDED'))
    throw new Error(
      `re-recording generated events failed: ${JSON.stringify(results.find((r) => r.status !== 'RECORDED'))}`,
    )
  const ingested = await psqlRows(
    url,
    `select ${columns} from usage_events where tenant_id = '${other.id}' and id in (${ids}) order by id`,
  )
  if (JSON.stringify(ingested) !== JSON.stringify(generated)) {
    throw new Error(
      `generated rows differ from what ingest stores:\n${JSON.stringify(generated[0])}\n${JSON.stringify(ingested[0])}`,
    )
  }
  console.log(
    `  checked: ${generated.length} generated rows equal what ingest stores for the same events (prices, lines, plan, amount, content_hash)`,
  )
}
