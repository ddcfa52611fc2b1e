import { seededRandom } from '../shared/random.ts'
import type { UsageEventInput } from '../usage/validation.ts'

export const DEMO_CUSTOMER = { id: 'demo-lumen', name: 'Lumen Notes (demo customer)' }

const MODELS = [
  { model: 'gpt-4o-2024-08-06', weight: 4, input: [6_000, 40_000], output: [300, 2_500], cache: 0.5 },
  { model: 'gpt-4o-mini', weight: 5, input: [2_000, 30_000], output: [200, 1_500], cache: 0.3 },
  { model: 'claude-3-5-sonnet-20241022', weight: 3, input: [8_000, 60_000], output: [500, 3_000], cache: 0 },
  { model: 'gemini-1.5-flash', weight: 2, input: [4_000, 50_000], output: [200, 2_000], cache: 0 },
] as const
const FEATURES = ['chat', 'chat', 'summarize', 'agent-run', 'search'] as const

function pick<T extends { weight: number }>(items: readonly T[], r: number): T {
  const total = items.reduce((n, i) => n + i.weight, 0)
  let x = r * total
  for (const item of items) if ((x -= item.weight) < 0) return item
  return items[items.length - 1]!
}

/** One synthetic model call at `at`, its id derived from `key` (replays are duplicates, never double counts). */
export function syntheticEvent(key: string, at: Date, rand: () => number, scale = 1): UsageEventInput {
  const m = pick(MODELS, rand())
  const between = ([lo, hi]: readonly [number, number]) => Math.round((lo + (hi - lo) * rand()) * scale)
  const inputTokens = between(m.input)
  const cacheReadTokens = m.cache ? Math.floor(inputTokens * m.cache * rand()) : 0
  return {
    id: `demo-${key}`,
    customerId: DEMO_CUSTOMER.id,
    model: m.model,
    timestamp: at,
    inputTokens,
    outputTokens: between(m.output),
    ...(cacheReadTokens ? { cacheReadTokens } : {}),
    feature: FEATURES[Math.floor(rand() * FEATURES.length)]!,
    metadata: { demo: true },
  }
}

const DAY_MS = 86_400_000

/** A few calls per UTC day from `from` until `now` (today's only up to now), stable across restarts. */
export function backfillEvents(from: Date, now: Date): UsageEventInput[] {
  const events: UsageEventInput[] = []
  for (let day = Math.floor(from.getTime() / DAY_MS) * DAY_MS; day <= now.getTime(); day += DAY_MS) {
    const rand = seededRandom(day / DAY_MS)
    const count = 4 + Math.floor(rand() * 6)
    for (let i = 0; i < count; i++) {
      // Working hours, UTC: 08:00-20:00.
      const at = new Date(day + 8 * 3_600_000 + Math.floor(rand() * 12 * 3_600_000))
      const event = syntheticEvent(`${new Date(day).toISOString().slice(0, 10)}-${i}`, at, rand)
      if (at.getTime() <= now.getTime() && at.getTime() >= from.getTime()) events.push(event)
    }
  }
  return events
}
