/**
 * setPriceOverride latency with and without ingest load. One real API server (node:http, yoga) on
 * a fresh PostgreSQL database. Each measured override gives the tenant a negotiated price for a
 * model that `--unpriced` stored events are waiting for (UNPRICED), so every call also runs the
 * late-pricing sweep it triggers; then it alternates the tenant's gpt-4o input price. First a
 * baseline with the server otherwise idle, then the same under batched ingest: `--clients`
 * clients over HTTP (fetch, keep-alive), each with one recordUsageBatch of `--batch` events in
 * flight, for as long as the overrides run. They run in this process, beside the server, so the
 * ingest shares its event loop as it would in a single API process. Every recordUsageBatch must
 * succeed (a deadlock would show as a failed request).
 *
 *   npx tsx bench/override-under-load.ts [--overrides 20] [--unpriced 200] [--clients 4] [--batch 200]
 */
import { performance } from 'node:perf_hooks'
import { eventSource } from './events.ts'
import { RECORD_BATCH } from './load-client.ts'
import {
  distribution,
  fmt,
  graphql,
  main,
  numericOptions,
  printHeader,
  setUpApp,
  type BenchApp,
  type Distribution,
} from './lib.ts'

const options = numericOptions('override-under-load', {
  overrides: { env: 'BENCH_OVERRIDES', default: 20, help: 'overrides measured in each phase' },
  unpriced: { env: 'BENCH_UNPRICED', default: 200, help: 'UNPRICED events waiting for each override' },
  clients: { env: 'BENCH_CLIENTS', default: 4, help: 'concurrent ingest clients during the loaded phase' },
  batch: { env: 'BENCH_BATCH', default: 200, help: 'events per recordUsageBatch' },
})

const OVERRIDE = `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`
const HOUR = 3_600_000

/** Stores `options.unpriced` events of a model no source prices yet, for the override of phase/round to price. */
async function storeUnpriced(bench: BenchApp, model: string): Promise<void> {
  const events = Array.from({ length: options.unpriced }, (_, i) => ({
    id: `${model}-${i}`,
    customerId: `cust-${i % 50}`,
    provider: 'acme',
    model,
    timestamp: new Date(Date.now() - HOUR - i * 1000).toISOString(),
    inputTokens: 1000 + i,
    outputTokens: 100,
  }))
  for (let i = 0; i < events.length; i += 500) {
    const data = await graphql(bench.app, bench.apiKey, RECORD_BATCH, { events: events.slice(i, i + 500) })
    if (data.recordUsageBatch.recorded !== Math.min(500, events.length - i))
      throw new Error(`seeding ${model}: ${JSON.stringify(data)}`)
  }
}

/** One measured call: the override that prices `model`'s waiting events (both usage types in one mutation each). */
async function overrideRound(url: string, apiKey: string, model: string, round: number): Promise<number[]> {
  const from = new Date(Date.now() - 3 * 24 * HOUR).toISOString()
  const inputs = [
    { provider: 'acme', model, usageType: 'input', unitPrice: '0.000001', effectiveFrom: from },
    { provider: 'acme', model, usageType: 'output', unitPrice: '0.000004', effectiveFrom: from },
    {
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      unitPrice: `0.00000${21 + (round % 5)}`,
      effectiveFrom: from,
    },
  ]
  const latencies: number[] = []
  for (const input of inputs) {
    const started = performance.now()
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query: OVERRIDE, variables: { i: input } }),
    })
    const body = (await response.json()) as { errors?: unknown[] }
    latencies.push(performance.now() - started)
    if (body.errors) throw new Error(`setPriceOverride failed: ${JSON.stringify(body.errors)}`)
  }
  return latencies
}

async function unpricedLeft(bench: BenchApp, models: readonly string[]): Promise<number> {
  const row = await bench.db
    .selectFrom('usage_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('status', '=', 'UNPRICED')
    .where('model', 'in', models)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

const line = (name: string, d: Distribution) =>
  `${name.padEnd(24)} n ${String(d.count).padStart(4)}   p50 ${fmt.ms(d.p50).padStart(8)} ms   p95 ${fmt.ms(d.p95).padStart(8)} ms   max ${fmt.ms(d.max).padStart(8)} ms`

main(async () => {
  printHeader('setPriceOverride latency, idle and under ingest load', options)
  const bench = await setUpApp('override_under_load')
  try {
    const server = await bench.listen()
    const url = `${server.url}/graphql`
    const models = (phase: string) => Array.from({ length: options.overrides }, (_, i) => `rocket-${phase}-${i}`)
    for (const model of [...models('idle'), ...models('load')]) await storeUnpriced(bench, model)

    const idle: number[] = []
    for (const [round, model] of models('idle').entries())
      idle.push(...(await overrideRound(url, bench.apiKey, model, round)))

    let stop = false
    const ingest = { batches: 0, recorded: 0, failures: 0, firstFailure: null as string | null }
    const next = eventSource({
      runId: `load-${process.pid}`,
      customers: 50,
      endMs: Date.now(),
      spanMs: 3 * 24 * HOUR,
      seed: 7,
    })
    let index = 0
    const client = async () => {
      while (!stop) {
        const events = Array.from({ length: options.batch }, () => next(index++))
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${bench.apiKey}` },
            body: JSON.stringify({ query: RECORD_BATCH, variables: { events } }),
          })
          const body = (await response.json()) as {
            data?: { recordUsageBatch: { recorded: number } }
            errors?: unknown[]
          }
          ingest.batches += 1
          ingest.recorded += body.data?.recordUsageBatch.recorded ?? 0
          if (body.errors || body.data?.recordUsageBatch.recorded !== options.batch)
            throw new Error(JSON.stringify(body).slice(0, 300))
        } catch (error) {
          ingest.failures += 1
          ingest.firstFailure ??= String(error)
        }
      }
    }
    const clients = Array.from({ length: options.clients }, client)
    // Let ingest get going before measuring.
    while (ingest.batches < options.clients * 2) await new Promise((resolve) => setTimeout(resolve, 50))
    const loaded: number[] = []
    const started = performance.now()
    for (const [round, model] of models('load').entries())
      loaded.push(...(await overrideRound(url, bench.apiKey, model, round)))
    const loadedMs = performance.now() - started
    stop = true
    await Promise.all(clients)
    await server.close()
    const left = await unpricedLeft(bench, [...models('idle'), ...models('load')])

    console.log(line('idle', distribution(idle)))
    console.log(line('under ingest load', distribution(loaded)))
    console.log(
      `ingest during the loaded phase: ${fmt.int(ingest.recorded)} events in ${ingest.batches} batches, ${ingest.failures} failed requests${ingest.firstFailure ? ` (first: ${ingest.firstFailure})` : ''}`,
    )
    console.log(`overrides under load took ${fmt.s(loadedMs)}; UNPRICED events of the overridden models left: ${left}`)
    const l = distribution(loaded)
    const i = distribution(idle)
    console.log(
      `RESULT override-under-load idle p50 ${fmt.ms(i.p50)} ms p95 ${fmt.ms(i.p95)} ms max ${fmt.ms(i.max)} ms; under load p50 ${fmt.ms(l.p50)} ms p95 ${fmt.ms(l.p95)} ms max ${fmt.ms(l.max)} ms; unpriced left ${left}; ingest ${fmt.int(ingest.recorded)} events, ${ingest.failures} failed`,
    )
  } finally {
    await bench.close()
  }
})
