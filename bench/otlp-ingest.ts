/**
 * OTLP ingest against recordUsageBatch, in the same run on the same server: C concurrent clients
 * POST /v1/traces (protobuf, then JSON: 500 GenAI spans a request, as BatchSpanProcessor's
 * default 512) and POST /graphql recordUsageBatch (500 events a call) with the same usage, in
 * alternating rounds so machine load falls on every mode alike. Bodies are built before timing;
 * the clients run in this process (fetch, keep-alive), so the CPU figure covers client and server.
 *
 *   npx tsx bench/otlp-ingest.ts [--clients 4] [--events 20000] [--rounds 3] [--batch 500]
 */
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { encodeProtobufRequest } from '../packages/api/src/otlp/proto.ts'
import type { OtlpAttributeValue, OtlpResourceSpans } from '../packages/api/src/otlp/types.ts'
import { fmt, main, numericOptions, printHeader, psqlValue, setUpApp } from './lib.ts'

const MODELS = [
  { model: 'gpt-4o-mini-2024-07-18', provider: 'openai' },
  { model: 'gpt-4o-2024-08-06', provider: 'openai' },
  { model: 'claude-sonnet-4-5-20250929', provider: 'anthropic' },
]

interface Usage {
  customerId: string
  model: string
  provider: string
  endMs: number
  input: number
  cacheRead: number
  output: number
  feature: string
}

function usageAt(i: number, endMs: number): Usage {
  const m = MODELS[i % MODELS.length]!
  return {
    customerId: `c${i % 50}`,
    model: m.model,
    provider: m.provider,
    endMs: endMs - (i % 86_400) * 1_000,
    input: 800 + (i % 400),
    cacheRead: i % 3 === 0 ? 512 : 0,
    output: 100 + (i % 200),
    feature: ['chat', 'search', 'agent', 'summary'][i % 4]!,
  }
}

/** The OTLP span of a usage, shaped like @opentelemetry/instrumentation-openai's chat span. */
function spanOf(u: Usage) {
  const attributes = new Map<string, OtlpAttributeValue>([
    ['gen_ai.operation.name', 'chat'],
    ['gen_ai.request.model', u.model],
    ['gen_ai.system', u.provider],
    ['server.address', 'api.example.com'],
    ['server.port', 443],
    ['gen_ai.response.finish_reasons', ['stop']],
    ['gen_ai.response.id', `resp-${randomBytes(8).toString('hex')}`],
    ['gen_ai.response.model', u.model],
    ['gen_ai.usage.input_tokens', u.input],
    ['gen_ai.usage.output_tokens', u.output],
    ...(u.cacheRead ? ([['gen_ai.usage.cache_read.input_tokens', u.cacheRead]] as const) : []),
    ['burnrate.customer_id', u.customerId],
    ['burnrate.feature', u.feature],
  ])
  const end = BigInt(u.endMs) * 1_000_000n
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: `chat ${u.model}`,
    startTimeUnixNano: (end - 1_500_000_000n).toString(),
    endTimeUnixNano: end.toString(),
    attributes,
  }
}

const resource = new Map<string, OtlpAttributeValue>([
  ['service.name', 'bench-app'],
  ['telemetry.sdk.language', 'nodejs'],
])

function otlpJson(request: OtlpResourceSpans[]): string {
  const value = (v: OtlpAttributeValue): unknown =>
    typeof v === 'string'
      ? { stringValue: v }
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? { intValue: String(v) }
          : { doubleValue: v }
        : typeof v === 'boolean'
          ? { boolValue: v }
          : Array.isArray(v)
            ? { arrayValue: { values: v.map(value) } }
            : {}
  const kvs = (m: Map<string, OtlpAttributeValue>) => [...m].map(([key, v]) => ({ key, value: value(v) }))
  return JSON.stringify({
    resourceSpans: request.map((rs) => ({
      resource: { attributes: kvs(rs.resource) },
      scopeSpans: rs.scopes.map((s) => ({
        scope: { name: s.name },
        spans: s.spans.map((span) => ({ ...span, kind: 3, attributes: kvs(span.attributes) })),
      })),
    })),
  })
}

const RECORD = `mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded rejected } }`

main(async () => {
  const options = numericOptions('otlp-ingest', {
    clients: { env: 'BENCH_CLIENTS', default: 4, help: 'concurrent HTTP clients' },
    events: { env: 'BENCH_EVENTS', default: 20_000, help: 'events (spans) per mode per round' },
    rounds: { env: 'BENCH_ROUNDS', default: 3, help: 'alternating rounds (median reported)' },
    batch: { env: 'BENCH_BATCH', default: 500, help: 'spans per export / events per recordUsageBatch' },
    warmup: { env: 'BENCH_WARMUP', default: 2_000, help: 'events per mode before timing' },
  })
  printHeader('otlp-ingest: POST /v1/traces (protobuf, JSON) vs recordUsageBatch', options)
  const bench = await setUpApp('otlp_ingest')
  try {
    const server = await bench.listen()
    const endMs = Date.now() - 60_000
    let next = 0
    let retries = 0
    type Mode = 'otlp-protobuf' | 'otlp-json' | 'recordUsageBatch'
    const bodies = (mode: Mode, events: number) => {
      const out: { body: string | Uint8Array; type: string; path: string }[] = []
      for (let done = 0; done < events; done += options.batch) {
        const usages = Array.from({ length: Math.min(options.batch, events - done) }, () => usageAt(next++, endMs))
        if (mode === 'recordUsageBatch') {
          const e = usages.map((u, k) => ({
            id: `gql-${next}-${k}-${randomBytes(6).toString('hex')}`,
            customerId: u.customerId,
            model: u.model,
            provider: u.provider,
            timestamp: new Date(u.endMs).toISOString(),
            inputTokens: u.input,
            cacheReadTokens: u.cacheRead,
            outputTokens: u.output,
            feature: u.feature,
          }))
          out.push({
            body: JSON.stringify({ query: RECORD, variables: { e } }),
            type: 'application/json',
            path: '/graphql',
          })
        } else {
          const request = [{ resource, scopes: [{ name: 'bench', spans: usages.map(spanOf) }] }]
          out.push(
            mode === 'otlp-protobuf'
              ? { body: encodeProtobufRequest(request), type: 'application/x-protobuf', path: '/v1/traces' }
              : { body: otlpJson(request), type: 'application/json', path: '/v1/traces' },
          )
        }
      }
      return out
    }
    const send = async (requests: ReturnType<typeof bodies>) => {
      let i = 0
      const client = async () => {
        while (i < requests.length) {
          const r = requests[i++]!
          // Idempotent requests: a connection the server closed as idle is retried (counted below).
          let res: Response | undefined
          for (let attempt = 0; !res; attempt++) {
            try {
              res = await fetch(`${server.url}${r.path}`, {
                method: 'POST',
                headers: { 'content-type': r.type, authorization: `Bearer ${bench.apiKey}` },
                body: r.body as string,
              })
            } catch (error) {
              if (attempt >= 3) throw error
              retries += 1
            }
          }
          const text = await res.text()
          if (res.status !== 200 || text.includes('rejected') || text.includes('"errors"'))
            if (!/"rejected":0/.test(text)) throw new Error(`${r.path} ${res.status}: ${text.slice(0, 300)}`)
        }
      }
      await Promise.all(Array.from({ length: options.clients }, client))
    }
    const modes: Mode[] = ['otlp-protobuf', 'otlp-json', 'recordUsageBatch']
    for (const mode of modes) await send(bodies(mode, options.warmup))
    const rates = new Map<Mode, { perS: number; cpuUsPerEvent: number }[]>(modes.map((m) => [m, []]))
    for (let round = 0; round < options.rounds; round++) {
      for (const mode of modes) {
        const requests = bodies(mode, options.events)
        const cpu = process.cpuUsage()
        const started = performance.now()
        await send(requests)
        const ms = performance.now() - started
        const used = process.cpuUsage(cpu)
        const perS = (options.events / ms) * 1000
        const cpuUsPerEvent = (used.user + used.system) / options.events
        rates.get(mode)!.push({ perS, cpuUsPerEvent })
        console.log(
          `round ${round + 1} ${mode.padEnd(17)} ${fmt.int(perS)}/s  ${cpuUsPerEvent.toFixed(0)} µs node CPU per event  load ${loadavg()[0]!.toFixed(2)}`,
        )
      }
    }
    const stored = Number(await psqlValue(bench.database.url, 'select count(*) from usage_events'))
    const expected = (options.warmup + options.events * options.rounds) * modes.length
    if (stored !== expected) throw new Error(`stored ${stored} events, expected ${expected}`)
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const summary = modes.map((m) => {
      const r = rates.get(m)!
      return `${m}=${Math.round(median(r.map((x) => x.perS)))}/s,${Math.round(median(r.map((x) => x.cpuUsPerEvent)))}us_cpu`
    })
    console.log(
      `RESULT otlp-ingest ${summary.join(' ')} stored=${stored} retried_requests=${retries} load=${loadavg()[0]!.toFixed(2)}`,
    )
  } finally {
    await bench.close()
  }
})
