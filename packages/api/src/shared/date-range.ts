/** Time ranges and UTC hours: what usage summaries and budgets use to read the ledger. */

export const HOUR_MS = 3_600_000
export const DAY_MS = 24 * HOUR_MS

/**
 * What both engines and every layer in between represent alike: JavaScript dates reach ±275760,
 * PostgreSQL has no year 0 and four-digit ISO years are all the drivers round-trip. Nothing billed
 * predates the Unix epoch.
 */
export const DATE_TIME_RANGE = {
  earliest: new Date('1970-01-01T00:00:00.000Z'),
  latest: new Date('9999-12-31T23:59:59.999Z'),
}

/** Half-open [from, to). */
export interface TimeRange {
  from: Date
  to: Date
}

/**
 * Splits [from, to) into the whole UTC hours inside it (read from rollups) and the partial-hour
 * edges (read from raw events). Together they cover [from, to) exactly, without overlap.
 */
export function splitRange(from: Date, to: Date): { hours: TimeRange | null; edges: TimeRange[] } {
  const firstHour = Math.ceil(from.getTime() / HOUR_MS) * HOUR_MS
  const lastHour = Math.floor(to.getTime() / HOUR_MS) * HOUR_MS
  if (firstHour >= lastHour) return { hours: null, edges: [{ from, to }] }
  const edges: TimeRange[] = []
  if (from.getTime() < firstHour) edges.push({ from, to: new Date(firstHour) })
  if (lastHour < to.getTime()) edges.push({ from: new Date(lastHour), to })
  return { hours: { from: new Date(firstHour), to: new Date(lastHour) }, edges }
}

/** [from, to) widened to whole UTC hours, the end kept within what a DateTime can show. */
export function wholeHours(range: TimeRange): { start: Date; end: Date } {
  const end = Math.min(Math.ceil(range.to.getTime() / HOUR_MS) * HOUR_MS, DATE_TIME_RANGE.latest.getTime())
  return { start: new Date(Math.floor(range.from.getTime() / HOUR_MS) * HOUR_MS), end: new Date(end) }
}
