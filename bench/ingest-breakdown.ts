/**
 * Diagnostic, not a target benchmark: where a 500-event batch spends its time. One batch at a
 * time (no concurrency), three levels, each on new events:
 *
 *   graphql   recordUsageBatch through yoga.fetch in process (GraphQL + service + SQL, no socket)
 *   http      POST /v1/usage/batch's work in process: the JSON body parsed and coerced
 *             (parseBatchBody), then usage.record() (no socket)
 *   service   usage.record() directly (validation, pricing, the ingest transaction)
 *   sql       the ingest transaction's statements alone, through the repository functions, on
 *             already priced rows: customers upsert, the events insert with both rollup upserts
 *             (one statement, deltas summed in SQL), commit
 *
 *   npx tsx bench/ingest-breakdown.ts [--batches 40] [--batch 500]
 */
import { performance } from 'node:perf_hooks'
import type { UsageEventRow } from '../packages/api/src/db/types.ts'
import { parseBatchBody } from '../packages/api/src/http/usage-batch-input.ts'
import * as repo from '../packages/api/src/usage/repository.ts'
import { rollupDeltas } from '../packages/api/src/usage/rollups.ts'
import type { UsageEventInput } from '../packages/api/src/usage/validation.ts'
import { eventSource, type BenchEvent } from './events.ts'
import { RECORD_BATCH } from './load-client.ts'
import { distribution, fmt, graphql, main, numericOptions, printHeader, setUpApp } from './lib.ts'

const HOUR_MS = 3_600_000

type PricedRow = repo.NewEvent

main(async () => {
  const options = numericOptions('ingest-breakdown', {
    batches: { env: 'BENCH_BATCHES', default: 40, help: 'timed batches per level' },
    warmup: { env: 'BENCH_WARMUP_BATCHES', default: 5, help: 'untimed batches per level' },
    batch: { env: 'BENCH_BATCH', default: 500, help: 'events per batch' },
    customers: { env: 'BENCH_CUSTOMERS', default: 50, help: 'distinct customers' },
  })
  printHeader('ingest-breakdown: one batch at a time, by layer', options)
  const bench = await setUpApp('ingest_breakdown')
  try {
    const next = eventSource({
      runId: `d${process.pid}`,
      customers: options.customers,
      endMs: Date.now() - 60_000,
      spanMs: 3 * 24 * HOUR_MS,
      seed: 42,
    })
    let index = 0
    const batch = (): BenchEvent[] => Array.from({ length: options.batch }, () => next(index++))
    const asInput = (e: BenchEvent): UsageEventInput => ({ ...e, timestamp: new Date(e.timestamp) })

    const rows: string[] = []
    const level = async (name: string, run: () => Promise<Record<string, number> | void>) => {
      for (let i = 0; i < options.warmup; i++) await run()
      const walls: number[] = []
      const stages = new Map<string, number[]>()
      const cpu0 = process.cpuUsage()
      for (let i = 0; i < options.batches; i++) {
        const t0 = performance.now()
        const parts = await run()
        walls.push(performance.now() - t0)
        for (const [stage, ms] of Object.entries(parts ?? {})) stages.set(stage, [...(stages.get(stage) ?? []), ms])
      }
      const cpu = process.cpuUsage(cpu0)
      const events = options.batches * options.batch
      const wall = distribution(walls)
      rows.push(
        `${name.padEnd(8)} median ${fmt.ms(wall.p50).padStart(7)} ms/batch = ${((wall.p50 * 1000) / options.batch).toFixed(0).padStart(4)} µs/event wall; ` +
          `node CPU ${((cpu.user + cpu.system) / events).toFixed(0).padStart(4)} µs/event`,
      )
      for (const [stage, values] of stages) {
        const d = distribution(values)
        rows.push(
          `           ${stage.padEnd(22)} median ${fmt.ms(d.p50).padStart(7)} ms/batch = ${((d.p50 * 1000) / options.batch).toFixed(0).padStart(4)} µs/event`,
        )
      }
    }

    await level('graphql', async () => {
      const data = await graphql<{ recordUsageBatch: { recorded: number } }>(bench.app, bench.apiKey, RECORD_BATCH, {
        events: batch(),
      })
      if (data.recordUsageBatch.recorded !== options.batch) throw new Error('batch not fully recorded')
    })
    await level('http', async () => {
      const parsed = parseBatchBody(JSON.stringify({ events: batch() }), 'json')
      if (!parsed.ok) throw new Error(parsed.error.message)
      const results = await bench.app.services.usage.record(bench.tenant, parsed.events)
      if (results.some((r) => r.status !== 'RECORDED')) throw new Error('batch not fully recorded')
    })
    await level('service', async () => {
      const results = await bench.app.services.usage.record(bench.tenant, batch().map(asInput))
      if (results.some((r) => r.status !== 'RECORDED')) throw new Error('batch not fully recorded')
    })

    // The two transports alternating batch by batch, so that JIT warm-up, table growth and the
    // machine's load fall on both alike (the levels above run one after the other).
    const paired = { graphql: [] as number[], http: [] as number[] }
    const cpuOf = async (run: () => Promise<void>) => {
      const c0 = process.cpuUsage()
      await run()
      const c = process.cpuUsage(c0)
      return (c.user + c.system) / options.batch
    }
    const viaGraphql = async () => {
      const data = await graphql<{ recordUsageBatch: { recorded: number } }>(bench.app, bench.apiKey, RECORD_BATCH, {
        events: batch(),
      })
      if (data.recordUsageBatch.recorded !== options.batch) throw new Error('batch not fully recorded')
    }
    const viaHttp = async () => {
      const parsed = parseBatchBody(JSON.stringify({ events: batch() }), 'json')
      if (!parsed.ok) throw new Error(parsed.error.message)
      const results = await bench.app.services.usage.record(bench.tenant, parsed.events)
      if (results.some((r) => r.status !== 'RECORDED')) throw new Error('batch not fully recorded')
    }
    for (let i = 0; i < options.batches; i++) {
      const [first, second] = i % 2 === 0 ? (['graphql', 'http'] as const) : (['http', 'graphql'] as const)
      for (const which of [first, second]) paired[which].push(await cpuOf(which === 'graphql' ? viaGraphql : viaHttp))
    }
    const med = (xs: number[]) => distribution(xs).p50
    rows.push(
      `paired   graphql vs http alternating (${options.batches} batches each): node CPU median ${med(paired.graphql).toFixed(0)} vs ${med(paired.http).toFixed(0)} µs/event (http = ${(med(paired.http) / med(paired.graphql)).toFixed(2)}×)`,
    )

    // Priced rows as ingest builds them: stored rows read back, given new ids.
    const stored = await bench.db
      .selectFrom('usage_events')
      .selectAll()
      .where('tenant_id', '=', bench.tenant.id)
      .orderBy('seq')
      .limit(options.batch)
      .execute()
    let copies = 0
    let rollupRows = 0
    let lineRollupRows = 0
    const priced = (): PricedRow[] => {
      copies += 1
      return stored.map((row: UsageEventRow) => {
        const { seq: _seq, ...rest } = row
        return {
          row: { ...rest, id: `${row.id}-copy${copies}` },
          json: {
            units: row.units ? JSON.stringify(row.units) : null,
            metadata: row.metadata ? JSON.stringify(row.metadata) : null,
            lines: JSON.stringify(row.lines),
            unpricedReason: row.unpriced_reason ? JSON.stringify(row.unpriced_reason) : null,
          },
        }
      })
    }
    await level('sql', async () => {
      const rows = priced()
      const parts: Record<string, number> = {}
      let t = performance.now()
      const lap = (stage: string) => {
        const now = performance.now()
        parts[stage] = now - t
        t = now
      }
      await bench.db.transaction().execute(async (trx) => {
        lap('begin')
        await repo.ensureCustomers(
          trx,
          bench.tenant.id,
          rows.map((r) => r.row.customer_id),
        )
        lap('customers upsert')
        const inserted = await repo.insertNewEventsWithRollups(trx, rows)
        lap('events + rollups')
        if (inserted.size !== rows.length) throw new Error('rows not inserted')
        // Counted for the summary line below, outside the timed laps (its CPU is in this level's node CPU figure).
        const { rollups, lineRollups } = rollupDeltas(
          bench.tenant.id,
          rows.map((r) => r.row),
          (row) => row.lines,
        )
        rollupRows += rollups.length
        lineRollupRows += lineRollups.length
        t = performance.now()
      })
      lap('commit')
      return parts
    })

    const sqlBatches = options.warmup + options.batches
    console.log('')
    for (const row of rows) console.log(row)
    console.log(
      `(sql level: ${fmt.int(rollupRows / sqlBatches)} usage_rollups rows and ${fmt.int(lineRollupRows / sqlBatches)} usage_line_rollups rows upserted per ${options.batch}-event batch)`,
    )
  } finally {
    await bench.close()
  }
})
