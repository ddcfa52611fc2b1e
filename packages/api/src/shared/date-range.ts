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
 * Splits [from, to) into the whole units (UTC hours or days) inside it and the partial-unit edges.
 * Together they cover [from, to) exactly, without overlap.
 */
function splitWhole(from: Date, to: Date, unitMs: number): { whole: TimeRange | null; edges: TimeRange[] } {
  const first = Math.ceil(from.getTime() / unitMs) * unitMs
  const last = Math.floor(to.getTime() / unitMs) * unitMs
  if (first >= last) return { whole: null, edges: [{ from, to }] }
  const edges: TimeRange[] = []
  if (from.getTime() < first) edges.push({ from, to: new Date(first) })
  if (last < to.getTime()) edges.push({ from: new Date(last), to })
  return { whole: { from: new Date(first), to: new Date(last) }, edges }
}

/** The whole UTC hours inside [from, to) (read from rollups) and the partial-hour edges (read from raw events). */
export function splitRange(from: Date, to: Date): { hours: TimeRange | null; edges: TimeRange[] } {
  const { whole, edges } = splitWhole(from, to, HOUR_MS)
  return { hours: whole, edges }
}

/** A range of whole hours as the per-day rollups serve it: its whole UTC days and the hours at its edges. */
export interface DaySpan {
  days: TimeRange | null
  hours: TimeRange[]
}

/**
 * The whole UTC days inside a range of whole hours (read from the per-day rollups) and the hours
 * left at its edges (read from the hourly rollups).
 */
export function splitDays(range: TimeRange): DaySpan {
  const { whole, edges } = splitWhole(range.from, range.to, DAY_MS)
  return { days: whole, hours: edges }
}

/** [from, to) widened to whole UTC hours, the end kept within what a DateTime can show. */
export function wholeHours(range: TimeRange): { start: Date; end: Date } {
  const end = Math.min(Math.ceil(range.to.getTime() / HOUR_MS) * HOUR_MS, DATE_TIME_RANGE.latest.getTime())
  return { start: new Date(Math.floor(range.from.getTime() / HOUR_MS) * HOUR_MS), end: new Date(end) }
}
