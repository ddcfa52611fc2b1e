import type { MeteredUsage } from '../types.ts'

/** A non-negative integer from a provider field, 0 when absent or malformed. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}

export function isoFromUnixSeconds(value: unknown, fallback: () => Date = () => new Date()): string {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
    ? new Date(value * 1000).toISOString()
    : fallback().toISOString()
}

/**
 * Anthropic and Gemini responses carry no time, so the mapper stamps the time it first saw the
 * response object, and the same object mapped again gets the same stamp: metering one response twice
 * is then the same event (DUPLICATE), not a changed one (IDEMPOTENCY_CONFLICT). A WeakMap keeps no
 * response alive. A response re-created from JSON elsewhere is a new object: pass `timestamp` there.
 */
const firstSeen = new WeakMap<object, Date>()
export function stampOnce(response: object, explicit?: Date): string {
  if (explicit) return explicit.toISOString()
  let at = firstSeen.get(response)
  if (!at) {
    at = new Date()
    firstSeen.set(response, at)
  }
  return at.toISOString()
}

/**
 * Usage the event's token fields cannot say (a modality, a cache TTL, a tool call count) as
 * `units`, under the names the API prices (packages/catalog-sync/src/units.ts, after
 * @pydantic/genai-prices). Zero counts stay out; no units, no key.
 */
export function unitsOf(counts: Record<string, number>): { units?: { unit: string; quantity: string }[] } {
  const units = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([unit, n]) => ({ unit, quantity: String(n) }))
  return units.length > 0 ? { units } : {}
}

export function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {}
}

/** Thrown when a response carries no usage numbers (e.g. an OpenAI stream without include_usage). */
export class MissingUsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MissingUsageError'
  }
}

/**
 * Follows a stream chunk by chunk and answers the usage seen so far. Collectors never throw on a
 * chunk they do not understand: metering must not break the host app's stream.
 */
export interface UsageCollector<Chunk> {
  push(chunk: Chunk): void
  /** The usage seen so far, or null when the stream has not reported any yet. */
  usage(): MeteredUsage | null
}
