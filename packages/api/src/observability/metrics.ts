/**
 * Prometheus metrics of one app: a prom-client Registry created per app (never the global
 * default), counters and histograms fed by the request paths, and gauges read at scrape time
 * from the database and the pool.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Clock } from '../clock.ts'
import { poolStatsOf, type Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { RecordResult } from '../usage/service.ts'
import { readFigures } from './repository.ts'

export interface Metrics {
  registry: Registry
  /** One ingest call (recordUsage, recordUsageBatch, the gateway, OTLP) and its results. */
  ingested(results: readonly RecordResult[], seconds: number): void
  ingestFailed(seconds: number): void
  /** One OTLP export: spans by outcome, and the answer's status. */
  otlpExport(outcome: { accepted: number; rejected: number; ignored: number; status: number }): void
  graphqlOperation(operation: string, seconds: number, ok: boolean): void
  subscriptionOpened(): void
  subscriptionClosed(): void
  /** The Prometheus text exposition of every metric. */
  scrape(): Promise<string>
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function createMetrics({ db, clock, logger }: { db: Db; clock: Clock; logger: Logger }): Metrics {
  const registry = new Registry()
  const events = new Counter({
    name: 'burnrate_usage_events_ingested_total',
    help: 'Usage events through ingest, by result (RECORDED, DUPLICATE, REJECTED) and, when stored, status (PRICED, UNPRICED).',
    labelNames: ['result', 'status'] as const,
    registers: [registry],
  })
  const ingestSeconds = new Histogram({
    name: 'burnrate_ingest_duration_seconds',
    help: 'Time of one ingest call (a batch), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const otlpSpans = new Counter({
    name: 'burnrate_otlp_spans_total',
    help: 'Spans received on POST /v1/traces, by outcome (accepted, rejected, ignored: no GenAI usage).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  const otlpRequests = new Counter({
    name: 'burnrate_otlp_requests_total',
    help: 'POST /v1/traces requests past admission, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [registry],
  })
  const graphqlSeconds = new Histogram({
    name: 'burnrate_graphql_operation_duration_seconds',
    help: 'Execution time of GraphQL operations, by operation type and outcome.',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const subscriptions = new Gauge({
    name: 'burnrate_subscriptions_active',
    help: 'GraphQL subscriptions open in this process (WebSocket and SSE).',
    registers: [registry],
  })

  // Read at scrape time from the database: the same in every process.
  let figures: Awaited<ReturnType<typeof readFigures>> | null = null
  const unpriced = new Gauge({
    name: 'burnrate_usage_events_unpriced',
    help: 'Stored usage events waiting for a price (UNPRICED), all tenants.',
    registers: [registry],
  })
  const stripePushes = new Gauge({
    name: 'burnrate_stripe_pushes',
    help: 'Stripe meter events not delivered: PENDING (the push backlog) and FAILED.',
    labelNames: ['status'] as const,
    registers: [registry],
  })
  const webhookDeliveries = new Gauge({
    name: 'burnrate_webhook_deliveries',
    help: 'Webhook deliveries by event type (budget alerts: budget.*) and outcome (PENDING, SUCCEEDED, DEAD).',
    labelNames: ['type', 'status'] as const,
    registers: [registry],
  })
  const catalogAge = new Gauge({
    name: 'burnrate_catalog_sync_age_seconds',
    help: 'Seconds since the last completed sync of each price catalog source.',
    labelNames: ['source'] as const,
    registers: [registry],
  })
  const pool = new Gauge({
    name: 'burnrate_db_pool_connections',
    help: 'PostgreSQL pool connections of this process, by state (total, idle, waiting clients, max).',
    labelNames: ['state'] as const,
    registers: [registry],
  })
  const scrapeErrors = new Counter({
    name: 'burnrate_metrics_database_errors_total',
    help: 'Scrapes whose database figures could not be read.',
    registers: [registry],
  })

  async function refresh(): Promise<void> {
    try {
      figures = await readFigures(db)
    } catch (error) {
      scrapeErrors.inc()
      logger.warn('metrics: database figures unavailable', {
        error: error instanceof Error ? error.message : String(error),
      })
      return
    }
    unpriced.set(figures.unpricedEvents)
    stripePushes.reset()
    for (const status of ['PENDING', 'FAILED']) stripePushes.set({ status }, 0)
    for (const p of figures.stripePushes) stripePushes.set({ status: p.status }, p.count)
    webhookDeliveries.reset()
    for (const d of figures.webhookDeliveries) webhookDeliveries.set({ type: d.type, status: d.status }, d.count)
    catalogAge.reset()
    const now = clock.now().getTime()
    for (const s of figures.catalogLastSync)
      catalogAge.set({ source: s.source }, Math.max(0, (now - s.finishedAt.getTime()) / 1000))
    const stats = poolStatsOf(db)
    if (stats) for (const [state, value] of Object.entries(stats)) pool.set({ state }, value)
  }

  return {
    registry,
    ingested(results, seconds) {
      ingestSeconds.observe({ outcome: 'ok' }, seconds)
      const counts = new Map<string, number>()
      for (const r of results) {
        const key = `${r.status}\u0000${r.event?.status ?? ''}`
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      for (const [key, n] of counts) {
        const [result, status] = key.split('\u0000') as [string, string]
        events.inc({ result, status }, n)
      }
    },
    ingestFailed(seconds) {
      ingestSeconds.observe({ outcome: 'error' }, seconds)
    },
    otlpExport({ accepted, rejected, ignored, status }) {
      otlpRequests.inc({ status: String(status) })
      if (accepted) otlpSpans.inc({ outcome: 'accepted' }, accepted)
      if (rejected) otlpSpans.inc({ outcome: 'rejected' }, rejected)
      if (ignored) otlpSpans.inc({ outcome: 'ignored' }, ignored)
    },
    graphqlOperation(operation, seconds, ok) {
      graphqlSeconds.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds)
    },
    subscriptionOpened: () => subscriptions.inc(),
    subscriptionClosed: () => subscriptions.dec(),
    async scrape() {
      await refresh()
      return registry.metrics()
    },
  }
}
