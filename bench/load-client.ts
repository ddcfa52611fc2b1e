/**
 * The load generator, run as its own process (forked by lib.ts `runLoad`) so that building and
 * sending requests does not share the server's event loop. It talks to the real HTTP server with
 * fetch (keep-alive), C concurrent clients each with one request in flight.
 *
 * Protocol: the parent sends one LoadRequest; the client answers { kind: 'measuring' } when the
 * warm-up is over and the timed phase starts, then { kind: 'done', result }.
 */
import { performance } from 'node:perf_hooks'
import { eventSource, type BenchEvent, type EventSourceOptions } from './events.ts'

export const RECORD_BATCH =
  'mutation($events:[UsageEventInput!]!){ recordUsageBatch(events:$events){ recorded duplicates rejected } }'
export const RECORD_ONE =
  'mutation($event:UsageEventInput!){ recordUsage(event:$event){ status error { code message } } }'

interface Common {
  url: string
  apiKey: string
  clients: number
  source: EventSourceOptions
}

export interface BatchLoad extends Common {
  kind: 'batch'
  /** `graphql`: recordUsageBatch on /graphql; `http`: the same events as JSON to POST /v1/usage/batch. */
  transport?: 'graphql' | 'http'
  batchSize: number
  /** Events sent before timing starts (rounded up to whole batches). */
  warmupEvents: number
  /** Events sent in the timed phase (rounded up to whole batches). */
  events: number
}

export interface SingleLoad extends Common {
  kind: 'single'
  warmupMs: number
  /** Timed phase length; ignored when maxRequests > 0. */
  durationMs: number
  /** When > 0, the timed phase sends exactly this many requests instead of running for durationMs. */
  maxRequests: number
}

export type LoadRequest = BatchLoad | SingleLoad

export interface PhaseResult {
  elapsedMs: number
  requests: number
  /** Events the server answered RECORDED. */
  recorded: number
  duplicates: number
  rejected: number
  failures: number
  firstFailure: string | null
  latenciesMs: number[]
}

export interface LoadResult {
  warmup: PhaseResult
  measured: PhaseResult
  /** CPU time this client process used during the timed phase (user + system). */
  clientCpuMs: number
}

export type LoadMessage =
  { kind: 'measuring' } | { kind: 'done'; result: LoadResult } | { kind: 'failed'; error: string }

interface Outcome {
  recorded: number
  duplicates: number
  rejected: number
  failure: string | null
}

type Send = () => Promise<Outcome>

async function post(request: Common, body: string, path = '/graphql'): Promise<unknown> {
  const response = await fetch(`${request.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${request.apiKey}` },
    body,
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text) as unknown
}

function graphqlFailure(json: unknown): string | null {
  const errors = (json as { errors?: { message: string }[] }).errors
  return errors?.length ? JSON.stringify(errors).slice(0, 500) : null
}

/** `clients` loops, each sending the next request as soon as its previous one is answered. */
async function runPhase(clients: number, next: () => Send | null): Promise<PhaseResult> {
  const result: PhaseResult = {
    elapsedMs: 0,
    requests: 0,
    recorded: 0,
    duplicates: 0,
    rejected: 0,
    failures: 0,
    firstFailure: null,
    latenciesMs: [],
  }
  const started = performance.now()
  const loop = async () => {
    for (let send = next(); send; send = next()) {
      const t0 = performance.now()
      let outcome: Outcome
      try {
        outcome = await send()
      } catch (error) {
        outcome = { recorded: 0, duplicates: 0, rejected: 0, failure: String(error) }
      }
      result.latenciesMs.push(performance.now() - t0)
      result.requests += 1
      result.recorded += outcome.recorded
      result.duplicates += outcome.duplicates
      result.rejected += outcome.rejected
      if (outcome.failure) {
        result.failures += 1
        result.firstFailure ??= outcome.failure
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, loop))
  result.elapsedMs = performance.now() - started
  return result
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

async function batchLoad(request: BatchLoad, measuring: () => void): Promise<LoadResult> {
  const event = eventSource(request.source)
  const http = request.transport === 'http'
  let index = 0
  // Bodies are serialized before timing starts: the timed phase measures the server, not JSON.stringify.
  const bodies = (events: number) =>
    Array.from({ length: Math.ceil(events / request.batchSize) }, () => {
      const batch: BenchEvent[] = []
      for (let i = 0; i < request.batchSize; i++) batch.push(event(index++))
      return http
        ? JSON.stringify({ events: batch })
        : JSON.stringify({ query: RECORD_BATCH, variables: { events: batch } })
    })
  const sender = (list: string[]) => {
    let position = 0
    return (): Send | null => {
      const body = list[position++]
      if (body === undefined) return null
      return async () => {
        if (http) {
          const counts = (await post(request, body, '/v1/usage/batch')) as {
            recorded: number
            duplicates: number
            rejected: number
          }
          return { recorded: counts.recorded, duplicates: counts.duplicates, rejected: counts.rejected, failure: null }
        }
        const json = await post(request, body)
        const failure = graphqlFailure(json)
        const data = (
          json as { data?: { recordUsageBatch?: { recorded: number; duplicates: number; rejected: number } } }
        ).data?.recordUsageBatch
        if (failure || !data) return { recorded: 0, duplicates: 0, rejected: 0, failure: failure ?? 'no data' }
        return { ...data, failure: null }
      }
    }
  }
  const warmupBodies = bodies(request.warmupEvents)
  const measuredBodies = bodies(request.events)
  const warmup = await runPhase(request.clients, sender(warmupBodies))
  measuring()
  const cpuBefore = cpuMs()
  const measured = await runPhase(request.clients, sender(measuredBodies))
  return { warmup, measured, clientCpuMs: cpuMs() - cpuBefore }
}

async function singleLoad(request: SingleLoad, measuring: () => void): Promise<LoadResult> {
  const event = eventSource(request.source)
  let index = 0
  const send: Send = async () => {
    const body = JSON.stringify({ query: RECORD_ONE, variables: { event: event(index++) } })
    const json = await post(request, body)
    const failure = graphqlFailure(json)
    const data = (
      json as { data?: { recordUsage?: { status: string; error: { code: string; message: string } | null } } }
    ).data?.recordUsage
    if (failure || !data) return { recorded: 0, duplicates: 0, rejected: 0, failure: failure ?? 'no data' }
    return {
      recorded: data.status === 'RECORDED' ? 1 : 0,
      duplicates: data.status === 'DUPLICATE' ? 1 : 0,
      rejected: data.status === 'REJECTED' ? 1 : 0,
      failure: data.error ? `${data.error.code}: ${data.error.message}` : null,
    }
  }
  const until = (ms: number) => {
    const deadline = performance.now() + ms
    return () => (performance.now() < deadline ? send : null)
  }
  const count = (n: number) => {
    let left = n
    return () => (left-- > 0 ? send : null)
  }
  const warmup = await runPhase(request.clients, until(request.warmupMs))
  measuring()
  const cpuBefore = cpuMs()
  const measured = await runPhase(
    request.clients,
    request.maxRequests > 0 ? count(request.maxRequests) : until(request.durationMs),
  )
  return { warmup, measured, clientCpuMs: cpuMs() - cpuBefore }
}

function reply(message: LoadMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()))
}

if (process.send) {
  process.once('message', (request: LoadRequest) => {
    const measuring = () => void reply({ kind: 'measuring' })
    const run = request.kind === 'batch' ? batchLoad(request, measuring) : singleLoad(request, measuring)
    run
      .then((result) => reply({ kind: 'done', result }))
      .catch((error: unknown) =>
        reply({ kind: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      )
      .finally(() => process.disconnect())
  })
}
