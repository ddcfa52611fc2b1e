/**
 * Synthetic usage events, shaped like the GraphQL UsageEventInput. Pure and deterministic for a
 * given seed, so the load client (a separate process) and the benchmarks agree on what was sent.
 */

import { seededRandom } from '../packages/api/src/shared/random.ts'

export interface BenchEvent {
  id: string
  customerId: string
  model: string
  /** ISO 8601, millisecond precision. */
  timestamp: string
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  feature: string | null
}

interface ModelProfile {
  model: string
  weight: number
  /** Share of calls that read from the prompt cache. */
  cacheReadShare: number
  /** Whether the provider bills cache writes (Anthropic does). */
  cacheWrites: boolean
}

/** A mix of providers and price shapes: plain, cache reads, cache reads + writes, tiered (Sonnet). */
export const BENCH_MODELS: readonly ModelProfile[] = [
  { model: 'gpt-4o', weight: 3, cacheReadShare: 0.3, cacheWrites: false },
  { model: 'gpt-4o-mini', weight: 4, cacheReadShare: 0.2, cacheWrites: false },
  { model: 'claude-sonnet-4-5', weight: 2, cacheReadShare: 0.5, cacheWrites: true },
  { model: 'gemini-2.5-flash', weight: 1, cacheReadShare: 0.2, cacheWrites: false },
]

export const BENCH_FEATURES: readonly (string | null)[] = ['chat', 'search', 'summarize', null]

/** mulberry32, shared with the demo's synthetic usage. */
export const prng = seededRandom

export function customerId(n: number): string {
  return `cust-${String(n).padStart(3, '0')}`
}

export interface EventSourceOptions {
  /** Prefix of every id; different runs never collide. */
  runId: string
  customers: number
  /** Timestamps fall in [end - spanMs, end). */
  endMs: number
  spanMs: number
  seed: number
}

/** Returns a function producing the i-th event; ids are `${runId}-${i}`, so unique per index. */
export function eventSource(options: EventSourceOptions): (index: number) => BenchEvent {
  const random = prng(options.seed)
  const totalWeight = BENCH_MODELS.reduce((sum, m) => sum + m.weight, 0)
  const pickModel = () => {
    let r = random() * totalWeight
    for (const m of BENCH_MODELS) {
      r -= m.weight
      if (r < 0) return m
    }
    return BENCH_MODELS[0]!
  }
  return (index) => {
    const profile = pickModel()
    const inputTokens = 200 + Math.floor(random() * 8_000)
    const outputTokens = 20 + Math.floor(random() * 1_500)
    const cached = random() < profile.cacheReadShare
    const cacheReadTokens = cached ? Math.floor(inputTokens * (0.3 + random() * 0.6)) : 0
    const cacheWriteTokens =
      profile.cacheWrites && !cached && random() < 0.3 ? Math.floor((inputTokens - cacheReadTokens) * 0.5) : 0
    return {
      id: `${options.runId}-${index}`,
      customerId: customerId(Math.floor(random() * options.customers)),
      model: profile.model,
      timestamp: new Date(options.endMs - 1 - Math.floor(random() * options.spanMs)).toISOString(),
      inputTokens,
      outputTokens,
      cacheReadTokens,
      cacheWriteTokens,
      feature: BENCH_FEATURES[Math.floor(random() * BENCH_FEATURES.length)] ?? null,
    }
  }
}
