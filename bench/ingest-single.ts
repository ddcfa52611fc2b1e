/**
 * One event per call over real HTTP: C concurrent clients send recordUsage for D seconds (or a
 * fixed count), after a warm-up. Prints requests/s and client-side latency percentiles, in one
 * run for each path side by side:
 *   - baseline: group commit off (INGEST_GROUP_COMMIT_MS=0): each call its own transaction;
 *   - group commit: concurrent calls coalesced (the default settings, or --wait/--max/--inflight);
 *   - batch: the same events through recordUsageBatch (--batch-events, 0 = skip), for reference.
 * Each path gets its own fresh database.
 *
 *   npx tsx bench/ingest-single.ts [--clients 32] [--seconds 15] [--requests 0] [--warmup 3] [--baseline 1] [--batchEvents 40000]
 */
import {
  describeCpu,
  distribution,
  fmt,
  main,
  numericOptions,
  printHeader,
  psqlValue,
  runLoad,
  setUpApp,
} from './lib.ts'

const HOUR_MS = 3_600_000

main(async () => {
  const options = numericOptions('ingest-single', {
    clients: { env: 'BENCH_CLIENTS', default: 32, help: 'concurrent HTTP clients' },
    seconds: { env: 'BENCH_SECONDS', default: 15, help: 'timed phase length' },
    requests: { env: 'BENCH_REQUESTS', default: 0, help: 'when > 0: send exactly this many requests instead' },
    warmup: { env: 'BENCH_WARMUP_SECONDS', default: 3, help: 'warm-up seconds (not timed)' },
    customers: { env: 'BENCH_CUSTOMERS', default: 50, help: 'distinct customers' },
    days: { env: 'BENCH_DAYS', default: 3, help: 'timestamps spread over the last N days' },
    pool: { env: 'DB_POOL_SIZE', default: 10, help: 'API database pool size' },
    baseline: { env: 'BENCH_BASELINE', default: 1, help: '1: also run with group commit off, 0: skip' },
    wait: { env: 'INGEST_GROUP_COMMIT_MS', default: 1, help: 'group commit window (ms)' },
    max: { env: 'INGEST_GROUP_COMMIT_MAX', default: 256, help: 'group commit: at most this many per group' },
    inflight: { env: 'INGEST_GROUP_COMMIT_CONCURRENCY', default: 4, help: 'group commit: groups in flight' },
    batchEvents: {
      env: 'BENCH_BATCH_EVENTS',
      default: 40_000,
      help: 'events for the recordUsageBatch reference (4 clients × 500); 0 = skip',
    },
  })
  printHeader('ingest-single: recordUsage (one event per call) over HTTP', options)

  const rows: string[] = []
  if (options.baseline) rows.push(await single('baseline (group commit off)', { INGEST_GROUP_COMMIT_MS: 0 }))
  rows.push(
    await single(`group commit (${options.wait} ms / ${options.max} / ${options.inflight} in flight)`, {
      INGEST_GROUP_COMMIT_MS: options.wait,
      INGEST_GROUP_COMMIT_MAX: options.max,
      INGEST_GROUP_COMMIT_CONCURRENCY: options.inflight,
    }),
  )
  if (options.batchEvents > 0) rows.push(await batch())
  console.log('\nside by side (same run):')
  for (const row of rows) console.log(`  ${row}`)

  async function single(label: string, config: Record<string, number>): Promise<string> {
    console.log(`\n--- ${label}`)
    const bench = await setUpApp('ingest_single', { poolSize: options.pool, config })
    try {
      const server = await bench.listen()
      const { result, cpu } = await runLoad({
        kind: 'single',
        url: server.url,
        apiKey: bench.apiKey,
        clients: options.clients,
        warmupMs: options.warmup * 1000,
        durationMs: options.seconds * 1000,
        maxRequests: options.requests,
        source: {
          runId: `s${process.pid}`,
          customers: options.customers,
          endMs: Date.now() - 60_000,
          spanMs: options.days * 24 * HOUR_MS,
          seed: 7,
        },
      })
      await server.close()
      const { warmup, measured } = result
      for (const phase of [warmup, measured]) {
        if (phase.failures > 0 || phase.rejected > 0 || phase.duplicates > 0) {
          throw new Error(
            `ingest failed: ${phase.failures} failed requests, ${phase.rejected} rejected, ${phase.duplicates} duplicates; first: ${phase.firstFailure}`,
          )
        }
      }
      const rate = measured.requests / (measured.elapsedMs / 1000)
      const latency = distribution(measured.latenciesMs)
      console.log(
        `${fmt.int(measured.requests)} requests in ${fmt.s(measured.elapsedMs)} with ${options.clients} clients`,
      )
      console.log(`  => ${fmt.int(rate)} req/s (= events/s)`)
      console.log(
        `  latency ms: p50 ${fmt.ms(latency.p50)}, p95 ${fmt.ms(latency.p95)}, p99 ${fmt.ms(latency.p99)}, max ${fmt.ms(latency.max)} (mean ${fmt.ms(latency.mean)})`,
      )
      console.log(describeCpu(cpu, result.clientCpuMs, measured.recorded))

      const expected = warmup.recorded + measured.recorded
      const url = bench.database.url
      const [stored, rolledUp] = [
        Number(await psqlValue(url, `select count(*) from usage_events where tenant_id = '${bench.tenant.id}'`)),
        Number(
          await psqlValue(
            url,
            `select coalesce(sum(events), 0) from usage_rollups where tenant_id = '${bench.tenant.id}'`,
          ),
        ),
      ]
      console.log(
        `verify: expected ${fmt.int(expected)} events (warm-up ${fmt.int(warmup.recorded)} + timed ${fmt.int(measured.recorded)}); usage_events holds ${fmt.int(stored)}, usage_rollups count ${fmt.int(rolledUp)}`,
      )
      if (stored !== expected || rolledUp !== expected)
        throw new Error('stored event count does not match what was recorded')
      console.log('  counts match')
      const line = `${label}: ${fmt.int(rate)} req/s, p50 ${fmt.ms(latency.p50)} ms, p99 ${fmt.ms(latency.p99)} ms, API ${((cpu.serverMs * 1000) / measured.recorded).toFixed(0)} µs + postgres ${((cpu.postgresMs * 1000) / measured.recorded).toFixed(0)} µs CPU/event`
      console.log(
        `RESULT ingest-single path="${label}" req_per_s=${Math.round(rate)} p50_ms=${fmt.ms(latency.p50)} p95_ms=${fmt.ms(latency.p95)} p99_ms=${fmt.ms(latency.p99)} stored=${stored}`,
      )
      return line
    } finally {
      await bench.close()
    }
  }

  async function batch(): Promise<string> {
    console.log(`\n--- recordUsageBatch reference (4 clients × 500 events)`)
    const bench = await setUpApp('ingest_single_batch', { poolSize: options.pool })
    try {
      const server = await bench.listen()
      const { result, cpu } = await runLoad({
        kind: 'batch',
        url: server.url,
        apiKey: bench.apiKey,
        clients: 4,
        batchSize: 500,
        warmupEvents: 5_000,
        events: options.batchEvents,
        source: {
          runId: `sb${process.pid}`,
          customers: options.customers,
          endMs: Date.now() - 60_000,
          spanMs: options.days * 24 * HOUR_MS,
          seed: 42,
        },
      })
      await server.close()
      const { measured } = result
      if (measured.failures > 0 || measured.rejected > 0)
        throw new Error(`batch ingest failed: ${measured.firstFailure}`)
      const rate = measured.recorded / (measured.elapsedMs / 1000)
      const latency = distribution(measured.latenciesMs)
      console.log(`  => ${fmt.int(rate)} events/s, call p50 ${fmt.ms(latency.p50)} ms, p99 ${fmt.ms(latency.p99)} ms`)
      console.log(describeCpu(cpu, result.clientCpuMs, measured.recorded))
      return `recordUsageBatch (500 a call, 4 clients): ${fmt.int(rate)} events/s, call p50 ${fmt.ms(latency.p50)} ms, p99 ${fmt.ms(latency.p99)} ms, API ${((cpu.serverMs * 1000) / measured.recorded).toFixed(0)} µs + postgres ${((cpu.postgresMs * 1000) / measured.recorded).toFixed(0)} µs CPU/event`
    } finally {
      await bench.close()
    }
  }
})
