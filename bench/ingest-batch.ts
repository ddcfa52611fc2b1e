/**
 * Batched ingest over real HTTP: C concurrent clients POST recordUsageBatch (500 events a call)
 * until N events are recorded, and the same through POST /v1/usage/batch (plain JSON, no GraphQL)
 * on the same database, alternating, then the same stored rows are loaded with raw COPY into a bare
 * table (no indexes, no constraints) to put the ingest rate against what PostgreSQL can take in.
 *
 * Two profiles, each on its own database, side by side: "spread" (timestamps over the last 3 days:
 * many hour buckets, as in a backfill) and "live" (the last 10 minutes: few hour buckets, as live
 * traffic). The API process's RSS is sampled every second through the load.
 *
 *   npx tsx bench/ingest-batch.ts [--clients 4] [--events 200000] [--batch 500] [--warmup 10000] [--liveMinutes 10] [--http 1] [--rounds 2]
 */
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { distribution, fmt, main, numericOptions, printHeader, psql, psqlRows, runLoad, setUpApp } from './lib.ts'

const HOUR_MS = 3_600_000

main(async () => {
  const options = numericOptions('ingest-batch', {
    clients: { env: 'BENCH_CLIENTS', default: 4, help: 'concurrent HTTP clients' },
    events: { env: 'BENCH_EVENTS', default: 200_000, help: 'events in the timed phase (per profile)' },
    batch: { env: 'BENCH_BATCH', default: 500, help: 'events per recordUsageBatch call' },
    warmup: { env: 'BENCH_WARMUP', default: 10_000, help: 'events sent before timing' },
    customers: { env: 'BENCH_CUSTOMERS', default: 50, help: 'distinct customers' },
    days: { env: 'BENCH_DAYS', default: 3, help: 'profile "spread": timestamps over the last N days' },
    liveMinutes: {
      env: 'BENCH_LIVE_MINUTES',
      default: 10,
      help: 'profile "live": timestamps over the last N minutes (0 = skip the profile)',
    },
    copyRuns: { env: 'BENCH_COPY_RUNS', default: 3, help: 'raw COPY repetitions (median reported)' },
    pool: { env: 'DB_POOL_SIZE', default: 10, help: 'API database pool size' },
    http: {
      env: 'BENCH_HTTP',
      default: 1,
      help: 'also run POST /v1/usage/batch beside recordUsageBatch (0 = GraphQL only)',
    },
    rounds: {
      env: 'BENCH_ROUNDS',
      default: 2,
      help: 'rounds per profile; transports alternate ABBA, --events split across rounds',
    },
  })
  printHeader('ingest-batch: recordUsageBatch (GraphQL) and POST /v1/usage/batch over HTTP vs raw COPY', options)

  const rows = [await profile(`spread (${options.days} days)`, options.days * 24 * HOUR_MS, 42)]
  if (options.liveMinutes > 0)
    rows.push(await profile(`live (last ${options.liveMinutes} min)`, options.liveMinutes * 60_000, 43))
  console.log('\nside by side (same run):')
  for (const row of rows) console.log(`  ${row}`)

  async function profile(label: string, spanMs: number, seed: number): Promise<string> {
    console.log(`\n--- profile ${label}`)
    const bench = await setUpApp('ingest_batch', { poolSize: options.pool })
    try {
      const server = await bench.listen()
      // GraphQL and the plain-HTTP path alternate (ABBA over two rounds) so that neither always
      // runs on the smaller tables or the quieter minute; each gets its own warm-up first.
      const transports: Transport[] = options.http ? ['graphql', 'http'] : ['graphql']
      const order: Transport[] = []
      for (let round = 0; round < options.rounds; round++)
        order.push(...(round % 2 === 0 ? transports : [...transports].reverse()))
      const totals = new Map<Transport, Totals>()
      const rss: number[] = []
      const rssBefore = process.memoryUsage().rss
      let recordedAll = 0
      for (const [i, transport] of order.entries()) {
        const seen = totals.get(transport)
        // The API server runs in this process: its resident memory, sampled through the whole load.
        const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 1000)
        let run
        try {
          run = await runLoad(
            {
              kind: 'batch',
              transport,
              url: server.url,
              apiKey: bench.apiKey,
              clients: options.clients,
              batchSize: options.batch,
              warmupEvents: seen ? 0 : options.warmup,
              events: Math.ceil(options.events / options.rounds),
              source: {
                runId: `b${process.pid}s${seed}r${i}`,
                customers: options.customers,
                endMs: Date.now() - 60_000,
                spanMs,
                seed: seed * 100 + i,
              },
            },
            bench.database.name,
          )
        } finally {
          clearInterval(sampler)
        }
        const { result, cpu } = run
        for (const phase of [result.warmup, result.measured]) {
          if (phase.failures > 0 || phase.rejected > 0 || phase.duplicates > 0) {
            throw new Error(
              `ingest failed (${transport}): ${phase.failures} failed requests, ${phase.rejected} rejected, ${phase.duplicates} duplicates; first: ${phase.firstFailure}`,
            )
          }
        }
        recordedAll += result.warmup.recorded + result.measured.recorded
        const t = seen ?? {
          recorded: 0,
          elapsedMs: 0,
          requests: 0,
          latenciesMs: [],
          serverMs: 0,
          postgresMs: 0,
          databaseMs: 0,
          statements: 0,
          clientMs: 0,
        }
        t.recorded += result.measured.recorded
        t.elapsedMs += result.measured.elapsedMs
        t.requests += result.measured.requests
        t.latenciesMs.push(...result.measured.latenciesMs)
        t.serverMs += cpu.serverMs
        t.postgresMs += cpu.postgresMs
        t.databaseMs += cpu.databaseMs
        t.statements += cpu.statements
        t.clientMs += result.clientCpuMs
        totals.set(transport, t)
        console.log(
          `  run ${i + 1} (${TRANSPORT_LABEL[transport]}): ${fmt.int(result.measured.recorded / (result.measured.elapsedMs / 1000))} events/s, API ${((cpu.serverMs * 1000) / result.measured.recorded).toFixed(0)} µs/event, this database's backends ${((cpu.databaseMs * 1000) / result.measured.recorded).toFixed(0)} µs/event`,
        )
      }
      await server.close()

      const url = bench.database.url
      const [stored, rolledUp, rollupRows, lineRollupRows] = (
        await psqlRows(
          url,
          `select (select count(*) from usage_events where tenant_id = '${bench.tenant.id}'),
                  (select coalesce(sum(events), 0) from usage_rollups where tenant_id = '${bench.tenant.id}'),
                  (select count(*) from usage_rollups), (select count(*) from usage_line_rollups)`,
        )
      )[0]!.map(Number)
      console.log(
        `verify: expected ${fmt.int(recordedAll)} events (warm-ups + timed, every run); usage_events holds ${fmt.int(stored!)}, usage_rollups count ${fmt.int(rolledUp!)}`,
      )
      if (stored !== recordedAll || rolledUp !== recordedAll)
        throw new Error('stored event count does not match what was recorded')
      console.log('  counts match')
      console.log(
        `  rollup rows: usage_rollups ${fmt.int(rollupRows!)}, usage_line_rollups ${fmt.int(lineRollupRows!)} (${((rollupRows! + lineRollupRows!) / stored!).toFixed(2)} rollup rows per event)`,
      )
      const mb = (bytes: number) => `${Math.round(bytes / 1048576)} MB`
      const rssMax = Math.max(...rss, rssBefore)
      const tenths = [0.1, 0.25, 0.5, 0.75, 1].map((f) => rss[Math.min(rss.length - 1, Math.floor(f * rss.length))])
      console.log(
        `  API process RSS: before ${mb(rssBefore)}; during load (at 10/25/50/75/100 % of the samples) ${tenths
          .filter((x) => x !== undefined)
          .map((x) => mb(x!))
          .join(' / ')}; max ${mb(rssMax)}`,
      )

      const copy = await measureCopy(url, options.copyRuns)
      console.log(`raw COPY (psql \\copy FROM a CSV of the stored rows, all usage_events columns):`)
      console.log(
        `  bare table (no indexes, no constraints): ${fmt.int(copy.rows)} rows, median ${fmt.ms(copy.bareMedianMs)} ms of [${copy.bareMs.map(fmt.ms).join(', ')}] => ${fmt.int(copy.bareRate)} rows/s`,
      )
      console.log(
        `  same table with usage_events' indexes and checks: ${fmt.ms(copy.indexedMs)} ms => ${fmt.int(copy.indexedRate)} rows/s`,
      )

      const lines: string[] = []
      const rates = new Map<Transport, number>()
      for (const transport of transports) {
        const t = totals.get(transport)!
        const rate = t.recorded / (t.elapsedMs / 1000)
        rates.set(transport, rate)
        const latency = distribution(t.latenciesMs)
        const perEvent = (ms: number) => ((ms * 1000) / t.recorded).toFixed(0)
        console.log(
          `\n${TRANSPORT_LABEL[transport]}: ${fmt.int(t.recorded)} events in ${fmt.s(t.elapsedMs)} (${t.requests} calls, ${options.clients} clients)`,
        )
        console.log(
          `  => ${fmt.int(rate)} events/s; ingest / raw COPY = ${fmt.pct(rate / copy.bareRate)} (ingest / indexed COPY = ${fmt.pct(rate / copy.indexedRate)})`,
        )
        console.log(
          `  call latency ms: p50 ${fmt.ms(latency.p50)}, p95 ${fmt.ms(latency.p95)}, p99 ${fmt.ms(latency.p99)}, max ${fmt.ms(latency.max)}`,
        )
        console.log(
          `  CPU per event: API ${perEvent(t.serverMs)} µs, postgres (all on host) ${perEvent(t.postgresMs)} µs, this database's backends ${perEvent(t.databaseMs)} µs, load client ${perEvent(t.clientMs)} µs; ${(t.statements / (t.recorded / options.batch)).toFixed(1)} statements/batch`,
        )
        console.log(
          `RESULT ingest-batch profile="${label}" transport=${transport} events_per_s=${Math.round(rate)} copy_rows_per_s=${Math.round(copy.bareRate)} ratio=${((rate / copy.bareRate) * 100).toFixed(1)}% p50_ms=${fmt.ms(latency.p50)} p95_ms=${fmt.ms(latency.p95)} api_us=${perEvent(t.serverMs)} pg_db_us=${perEvent(t.databaseMs)} stored=${stored} rss_max_mb=${Math.round(rssMax / 1048576)}`,
        )
        lines.push(
          `${label}, ${TRANSPORT_LABEL[transport]}: ${fmt.int(rate)} events/s = ${fmt.pct(rate / copy.bareRate)} of raw COPY (${fmt.int(copy.bareRate)} rows/s), call p50 ${fmt.ms(latency.p50)} / p95 ${fmt.ms(latency.p95)} ms, API ${perEvent(t.serverMs)} µs + this database's postgres ${perEvent(t.databaseMs)} µs CPU/event, ${(t.statements / (t.recorded / options.batch)).toFixed(1)} statements/batch`,
        )
      }
      if (rates.has('http')) {
        const ratio = rates.get('http')! / rates.get('graphql')!
        const api = (x: Transport) => totals.get(x)!.serverMs / totals.get(x)!.recorded
        console.log(
          `\nPOST /v1/usage/batch / recordUsageBatch: ${ratio.toFixed(2)}× the events/s, ${(api('http') / api('graphql')).toFixed(2)}× the API CPU per event`,
        )
        lines.push(
          `${label}: /v1/usage/batch ÷ GraphQL = ${ratio.toFixed(2)}× events/s, ${(api('http') / api('graphql')).toFixed(2)}× API CPU/event`,
        )
      }
      lines.push(
        `${label}: ${((rollupRows! + lineRollupRows!) / stored!).toFixed(2)} rollup rows/event, RSS max ${mb(rssMax)}`,
      )
      return lines.join('\n  ')
    } finally {
      await bench.close()
    }
  }
})

type Transport = 'graphql' | 'http'
const TRANSPORT_LABEL: Record<Transport, string> = {
  graphql: 'recordUsageBatch (GraphQL)',
  http: 'POST /v1/usage/batch',
}
interface Totals {
  recorded: number
  elapsedMs: number
  requests: number
  latenciesMs: number[]
  serverMs: number
  postgresMs: number
  databaseMs: number
  statements: number
  clientMs: number
}

/**
 * Exports the stored rows to CSV, then times `\copy … FROM` it into a bare copy of usage_events
 * (`LIKE` without INCLUDING: columns and NOT NULLs only) a few times, and once into a copy that
 * has usage_events' indexes and checks. psql's \timing measures each \copy inside one session.
 */
async function measureCopy(url: string, runs: number) {
  const file = join(tmpdir(), `burnrate-bench-copy-${process.pid}.csv`)
  try {
    await psql(url, `\\copy (select * from usage_events) to '${file}' with (format csv)`)
    await psql(url, 'create table bare (like usage_events); create table indexed (like usage_events including all);')
    const script = [
      ...Array.from({ length: Math.max(1, runs) }, () => [
        `truncate bare;`,
        `checkpoint;`,
        `\\timing on`,
        `\\copy bare from '${file}' with (format csv)`,
        `\\timing off`,
      ]).flat(),
      `checkpoint;`,
      `\\timing on`,
      `\\copy indexed from '${file}' with (format csv)`,
      `\\timing off`,
    ].join('\n')
    const out = await psql(url, script, { tuplesOnly: false })
    const timings = [...out.matchAll(/^COPY (\d+)\s*\nTime: ([\d.]+) ms/gm)].map((m) => ({
      rows: Number(m[1]),
      ms: Number(m[2]),
    }))
    if (timings.length !== Math.max(1, runs) + 1)
      throw new Error(`could not read COPY timings from psql output:\n${out}`)
    const indexed = timings.pop()!
    const bareMs = timings.map((t) => t.ms)
    const bareMedianMs = [...bareMs].sort((a, b) => a - b)[Math.floor(bareMs.length / 2)]!
    const rows = indexed.rows
    return {
      rows,
      bareMs,
      bareMedianMs,
      bareRate: rows / (bareMedianMs / 1000),
      indexedMs: indexed.ms,
      indexedRate: rows / (indexed.ms / 1000),
    }
  } finally {
    rmSync(file, { force: true })
  }
}
