import type { MeteredUsage } from '../types.ts'

/** A non-negative integer from a provider field, 0 when absent or malformed. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}

export function isoFromUnixSeconds(value: unknown, fallback: () => Date = () => new Date()): string {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? new Date(value * 1000).toISOString() : fallback().toISOString()
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
