/**
 * One event per call over real HTTP: C concurrent clients send recordUsage for D seconds (or a
 * fixed count), after a warm-up. Prints requests/s and client-side latency percentiles.
 *
 *   npx tsx bench/ingest-single.ts [--clients 8] [--seconds 15] [--requests 0] [--warmup 3]
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
    clients: { env: 'BENCH_CLIENTS', default: 8, help: 'concurrent HTTP clients' },
    seconds: { env: 'BENCH_SECONDS', default: 15, help: 'timed phase length' },
    requests: { env: 'BENCH_REQUESTS', default: 0, help: 'when > 0: send exactly this many requests instead' },
    warmup: { env: 'BENCH_WARMUP_SECONDS', default: 3, help: 'warm-up seconds (not timed)' },
    customers: { env: 'BENCH_CUSTOMERS', default: 50, help: 'distinct customers' },
    days: { env: 'BENCH_DAYS', default: 3, help: 'timestamps spread over the last N days' },
    pool: { env: 'DB_POOL_SIZE', default: 10, help: 'API database pool size' },
  })
  printHeader('ingest-single: recordUsage (one event per call) over HTTP', options)

  const bench = await setUpApp('ingest_single', { poolSize: options.pool })
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
      `\n${fmt.int(measured.requests)} requests in ${fmt.s(measured.elapsedMs)} with ${options.clients} clients`,
    )
    console.log(`  => ${fmt.int(rate)} req/s (= events/s)`)
    console.log(
      `  latency ms: p50 ${fmt.ms(latency.p50)}, p95 ${fmt.ms(latency.p95)}, p99 ${fmt.ms(latency.p99)}, max ${fmt.ms(latency.max)} (mean ${fmt.ms(latency.mean)})`,
    )
    console.log(describeCpu(cpu, result.clientCpuMs, measured.recorded))

    const expected = warmup.recorded + measured.recorded
    const stored = Number(
      await psqlValue(bench.database.url, `select count(*) from usage_events where tenant_id = '${bench.tenant.id}'`),
    )
    console.log(
      `\nverify: expected ${fmt.int(expected)} events (warm-up ${fmt.int(warmup.recorded)} + timed ${fmt.int(measured.recorded)}); usage_events holds ${fmt.int(stored)}`,
    )
    if (stored !== expected) throw new Error('stored event count does not match what was recorded')
    console.log('  counts match')
    console.log(
      `RESULT ingest-single req_per_s=${Math.round(rate)} p50_ms=${fmt.ms(latency.p50)} p95_ms=${fmt.ms(latency.p95)} p99_ms=${fmt.ms(latency.p99)} stored=${stored}`,
    )
  } finally {
    await bench.close()
  }
})
