/**
 * What `meter.record(...)` costs the host app: the enqueue only (no I/O happens on the caller's
 * path). Each call is timed on its own with the monotonic nanosecond clock; calls run in slices
 * of 1,000 with an event-loop turn between slices, so the meter's background sends (to an
 * in-process fake fetch) interleave with the calls as they would in a real app.
 *
 *   npx tsx bench/sdk-enqueue.ts [--calls 200000]
 *
 * Self-contained (no database, no network): only the SDK is measured. The spool scenarios write
 * their journal to a fresh directory under the OS temp dir (removed afterwards).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createMeter, openai, type UsageEvent } from '../packages/sdk/src/index.ts'

const { values } = parseArgs({ options: { calls: { type: 'string' } }, strict: true })
const CALLS = Number(values.calls ?? process.env.BENCH_CALLS ?? 200_000)
const SLICE = 1_000

/** Answers every recordUsageBatch at once with RECORDED for each event. */
const instantApi: typeof fetch = async (_url, init) => {
  const { variables } = JSON.parse(String(init?.body)) as { variables: { events: unknown[] } }
  const results = variables.events.map(() => ({ status: 'RECORDED', error: null }))
  return new Response(
    JSON.stringify({ data: { recordUsageBatch: { results, recorded: results.length, duplicates: 0, rejected: 0 } } }),
    {
      headers: { 'content-type': 'application/json' },
    },
  )
}
const downApi: typeof fetch = async () => {
  throw new TypeError('fetch failed')
}

const completion = JSON.parse(
  readFileSync(new URL('../packages/sdk/test/fixtures/openai-chat-completion.json', import.meta.url), 'utf8'),
)

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

async function scenario(
  name: string,
  fetchImpl: typeof fetch,
  makeEvent: (i: number) => UsageEvent,
  options: { signingSecret?: string; maxQueueSize?: number; spool?: 'batch' | 'sync' } = {},
) {
  const spoolDir = options.spool ? mkdtempSync(join(tmpdir(), 'burnrate-bench-spool-')) : null
  const meter = createMeter({
    url: 'http://burnrate.invalid',
    apiKey: 'br_sk_bench',
    fetch: fetchImpl,
    batchSize: 500,
    flushIntervalMs: 50,
    retryDelayMs: 50,
    maxQueueSize: options.maxQueueSize ?? 1_000_000,
    signingSecret: options.signingSecret,
    spool: spoolDir ? { dir: spoolDir, durability: options.spool } : undefined,
  })
  // Warm-up: JIT and the meter's steady state.
  for (let i = 0; i < 20_000; i++) meter.record(makeEvent(-i - 1))
  await nextTurn()
  const samples = new Float64Array(CALLS)
  let accepted = 0
  for (let start = 0; start < CALLS; start += SLICE) {
    const end = Math.min(CALLS, start + SLICE)
    for (let i = start; i < end; i++) {
      const event = makeEvent(i)
      const t0 = process.hrtime.bigint()
      const ok = meter.record(event)
      samples[i] = Number(process.hrtime.bigint() - t0) / 1000
      if (ok) accepted += 1
    }
    await nextTurn()
  }
  const closed = await meter.close({ timeoutMs: 100 })
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true })
  samples.sort()
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length
  const f = (n: number) => n.toFixed(2).padStart(7)
  console.log(
    `${name.padEnd(52)} p50 ${f(percentile(samples, 50))} µs  p99 ${f(percentile(samples, 99))} µs  p99.9 ${f(percentile(samples, 99.9))} µs  max ${f(samples[samples.length - 1]!)} µs  mean ${f(mean)} µs` +
      `  (accepted ${accepted}/${CALLS}, sent ${meter.stats.sent}, dropped ${meter.stats.dropped}, left ${closed.remaining})`,
  )
}

const plain = (i: number): UsageEvent => ({
  id: `evt-${i}`,
  customerId: 'acme',
  model: 'gpt-4o',
  timestamp: '2026-11-23T10:00:00.000Z',
  inputTokens: 1200,
  cacheReadTokens: 1000,
  outputTokens: 300,
  feature: 'chat',
})
const fromResponse = (i: number): UsageEvent => ({
  ...openai.chatCompletion({ ...completion, id: `chatcmpl-${i}` }),
  customerId: 'acme',
  feature: 'chat',
})

const [one, five] = loadavg()
console.log(`\n=== SDK enqueue cost: meter.record()`)
console.log(
  `date ${new Date().toISOString()}, node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model}), load average ${one!.toFixed(2)} / ${five!.toFixed(2)}`,
)
console.log(`settings ${JSON.stringify({ calls: CALLS, slice: SLICE, batchSize: 500, flushIntervalMs: 50 })}`)
await scenario('record(event), API answering', instantApi, plain)
await scenario('record(event), API answering, signing on', instantApi, plain, { signingSecret: 'whsec_bench' })
await scenario('record({...openai.chatCompletion(res)}), API answering', instantApi, fromResponse)
await scenario('record(event), API down (queue growing)', downApi, plain)
await scenario('record(event), API down, queue full (refused)', downApi, plain, { maxQueueSize: 10_000 })
await scenario("record(event), API answering, spool 'batch'", instantApi, plain, { spool: 'batch' })
await scenario("record(event), API down, spool 'batch'", downApi, plain, { spool: 'batch' })
await scenario("record(event), API answering, spool 'sync'", instantApi, plain, { spool: 'sync' })
process.exit(0)
