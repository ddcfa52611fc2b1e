/**
 * Ingest with 1, 2, 4 … API processes on one PostgreSQL (issue 15: API processes are stateless).
 * For each count P: a fresh database, P real API processes (`packages/api/src/main.ts`), and one
 * load client per process (C clients each, recordUsageBatch of B events) all started at once; the
 * timed phase's aggregate rate is every recorded event over the longest client's timed phase.
 * Then the totals are checked exactly: stored events = distinct ids sent = sum of `recorded`, a
 * replay of every batch of process 0 through another process is all `duplicates`, and
 * usageSummary (through the last process) equals the count and the amount sum of the stored rows.
 *
 *   npx tsx bench/ingest-processes.ts [--maxProcesses 4] [--events 40000] [--clients 2] [--batch 500]
 */
import { loadavg } from 'node:os'
import { Decimal } from '../packages/api/src/money/decimal.ts'
import { startApiProcess, type ApiProcess } from '../test/support/api-process.ts'
import { eventSource } from './events.ts'
import { RECORD_BATCH } from './load-client.ts'
import { fmt, main, numericOptions, printHeader, psqlRows, runLoad, setUpApp } from './lib.ts'

const HOUR_MS = 3_600_000

main(async () => {
  const options = numericOptions('ingest-processes', {
    maxProcesses: { env: 'BENCH_MAX_PROCESSES', default: 4, help: 'runs with 1, 2, 4 … up to this many API processes' },
    events: { env: 'BENCH_EVENTS', default: 40_000, help: 'events in the timed phase, over all processes' },
    warmup: { env: 'BENCH_WARMUP', default: 2_000, help: 'events each process gets before timing' },
    clients: { env: 'BENCH_CLIENTS', default: 2, help: 'concurrent HTTP clients per API process' },
    batch: { env: 'BENCH_BATCH', default: 500, help: 'events per recordUsageBatch call' },
    customers: { env: 'BENCH_CUSTOMERS', default: 50, help: 'distinct customers' },
    pool: { env: 'DB_POOL_SIZE', default: 5, help: 'database pool size of each API process' },
  })
  printHeader('ingest-processes: recordUsageBatch over HTTP, P API processes on one PostgreSQL', options)
  const counts: number[] = []
  for (let p = 1; p <= options.maxProcesses; p *= 2) counts.push(p)
  if (counts.at(-1) !== options.maxProcesses) counts.push(options.maxProcesses)
  const lines: string[] = []
  for (const processes of counts) lines.push(await run(processes))
  console.log('\nside by side (same run):')
  for (const line of lines) console.log(`  ${line}`)

  async function run(processes: number): Promise<string> {
    console.log(`\n--- ${processes} API process${processes > 1 ? 'es' : ''}`)
    // Migrations, the bundled catalog and the tenant, from this process; the API processes only serve.
    const bench = await setUpApp(`processes_${processes}`)
    const apis: ApiProcess[] = []
    try {
      apis.push(
        ...(await Promise.all(
          Array.from({ length: processes }, () =>
            startApiProcess(
              {
                DATABASE_URL: bench.database.url,
                DB_POOL_SIZE: String(options.pool),
                DEV_TENANT: 'false',
                GRAPHIQL: 'false',
                CATALOG_SYNC_ON_START: 'false',
                LOG_LEVEL: 'warn',
              },
              180_000,
            ),
          ),
        )),
      )
      const endMs = Date.now() - 60_000
      const perProcess = Math.ceil(options.events / processes / options.batch) * options.batch
      const source = (i: number) => ({
        runId: `p${processes}x${i}`,
        customers: options.customers,
        endMs,
        spanMs: 24 * HOUR_MS,
        seed: 100 + i,
      })
      const load0 = [loadavg()[0]!]
      const sampler = setInterval(() => load0.push(loadavg()[0]!), 1000)
      let runs
      try {
        runs = await Promise.all(
          apis.map((api, i) =>
            runLoad({
              kind: 'batch',
              url: api.url.replace(/\/graphql$/, ''),
              apiKey: bench.apiKey,
              clients: options.clients,
              batchSize: options.batch,
              warmupEvents: options.warmup,
              events: perProcess,
              source: source(i),
            }),
          ),
        )
      } finally {
        clearInterval(sampler)
      }
      const measured = runs.map((r) => r.result.measured)
      const warm = runs.map((r) => r.result.warmup)
      for (const phase of [...measured, ...warm])
        if (phase.failures > 0 || phase.rejected > 0 || phase.duplicates > 0)
          throw new Error(`load failed: ${JSON.stringify({ ...phase, latenciesMs: undefined })}`)
      const recorded = [...measured, ...warm].reduce((n, p) => n + p.recorded, 0)
      const timedEvents = measured.reduce((n, p) => n + p.recorded, 0)
      const wallMs = Math.max(...measured.map((p) => p.elapsedMs))
      const rate = (timedEvents / wallMs) * 1000

      // Exact totals. Every id was distinct (runId per process), so stored = sent = recorded.
      const [[storedText, amountText]] = (await psqlRows(
        bench.database.url,
        `select count(*), coalesce(sum(amount), 0) from usage_events where tenant_id = '${bench.tenant.id}'`,
      )) as [[string, string]]
      const stored = Number(storedText)
      const sent = processes * (Math.ceil(options.warmup / options.batch) * options.batch + perProcess)
      // A replay of process 0's first batches (up to 10) through the last process: nothing new.
      const make = eventSource(source(0))
      const replayBatches = Math.min(10, sent / processes / options.batch)
      let replayDuplicates = 0
      let replayRecorded = 0
      for (let b = 0; b < replayBatches; b++) {
        const events = Array.from({ length: options.batch }, (_, k) => make(b * options.batch + k))
        const reply = await post(apis.at(-1)!.url, bench.apiKey, RECORD_BATCH, { events })
        replayDuplicates += reply.data.recordUsageBatch.duplicates
        replayRecorded += reply.data.recordUsageBatch.recorded
      }
      const summary = await post(
        apis.at(-1)!.url,
        bench.apiKey,
        'query ($from: DateTime!, $to: DateTime!) { usageSummary(from: $from, to: $to) { events amount } }',
        { from: new Date(endMs - 25 * HOUR_MS).toISOString(), to: new Date(endMs + HOUR_MS).toISOString() },
      )
      const exact =
        stored === sent &&
        recorded === sent &&
        replayRecorded === 0 &&
        replayDuplicates === replayBatches * options.batch &&
        summary.data.usageSummary.events === stored &&
        new Decimal(summary.data.usageSummary.amount).eq(amountText)
      console.log(
        `timed: ${fmt.int(timedEvents)} events in ${fmt.s(wallMs)} (longest client) → ${fmt.int(rate)} events/s; ` +
          `per process ${measured.map((p) => fmt.int((p.recorded / p.elapsedMs) * 1000)).join(' / ')} events/s`,
      )
      console.log(
        `totals: sent ${fmt.int(sent)}, recorded ${fmt.int(recorded)}, stored ${fmt.int(stored)}, ` +
          `replay ${fmt.int(replayDuplicates)} duplicates / ${replayRecorded} recorded, ` +
          `usageSummary ${summary.data.usageSummary.events} events ${summary.data.usageSummary.amount} = stored amount ${amountText} → ${exact ? 'EXACT' : 'MISMATCH'}`,
      )
      const avgLoad = load0.reduce((a, b) => a + b, 0) / load0.length
      console.log(`load average (1 min) during the load: ${avgLoad.toFixed(2)}`)
      if (!exact) throw new Error('totals do not match')
      return `${processes} process${processes > 1 ? 'es' : ''}: ${fmt.int(rate).padStart(7)} events/s, totals exact, load ${avgLoad.toFixed(1)}`
    } finally {
      await Promise.allSettled(apis.map((api) => api.stop()))
      await bench.close()
    }
  }
})

async function post(url: string, key: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  })
  const json = (await response.json()) as { data?: any; errors?: unknown[] }
  if (json.errors?.length || !json.data) throw new Error(`GraphQL error: ${JSON.stringify(json.errors).slice(0, 500)}`)
  return json as { data: any }
}
