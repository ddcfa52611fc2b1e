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

/** Raw events of a range, added to a sum (sign 1) or taken away from it (sign -1). */
export interface SignedRange extends TimeRange {
  sign: 1 | -1
}

/**
 * How to read [from, to) from whole-hour rollups and raw events, reading as few raw events as it
 * can: a partial hour at either end is read either as its part inside the range (added) or as the
 * whole hour's rollup less its part outside the range (taken away), whichever is the shorter time
 * — at most half an hour of raw events per end, and none at all for an end that is "now" late in
 * the hour (nothing lies after it yet). Exact either way: an hour's rollup is the sum of its
 * events. `hours` are the whole hours to read from the rollups; together they and `raw` add up to
 * [from, to) exactly.
 */
export function planHours(from: Date, to: Date): { hours: TimeRange | null; raw: SignedRange[] } {
  const f = from.getTime()
  const t = to.getTime()
  const fFloor = Math.floor(f / HOUR_MS) * HOUR_MS
  const fCeil = Math.ceil(f / HOUR_MS) * HOUR_MS
  const tFloor = Math.floor(t / HOUR_MS) * HOUR_MS
  const tCeil = Math.ceil(t / HOUR_MS) * HOUR_MS
  // An hour past the last DateTime is never read: its end would not round-trip.
  const canWiden = tCeil <= DATE_TIME_RANGE.latest.getTime()
  const range = (a: number, b: number, sign: 1 | -1): SignedRange => ({ from: new Date(a), to: new Date(b), sign })
  const hoursOf = (a: number, b: number) => (a < b ? { from: new Date(a), to: new Date(b) } : null)

  if (fCeil > tFloor) {
    // Both ends inside one hour: [from, to) itself, or that hour less what lies before and after.
    const outside = f - fFloor + (tCeil - t)
    if (!canWiden || t - f <= outside) return { hours: null, raw: [range(f, t, 1)] }
    return {
      hours: hoursOf(fFloor, tCeil),
      raw: [range(fFloor, f, -1), range(t, tCeil, -1)].filter((r) => r.from < r.to),
    }
  }
  const raw: SignedRange[] = []
  let start = fCeil
  if (f < fCeil) {
    if (fCeil - f <= f - fFloor) raw.push(range(f, fCeil, 1))
    else {
      start = fFloor
      raw.push(range(fFloor, f, -1))
    }
  }
  let end = tFloor
  if (tFloor < t) {
    if (!canWiden || t - tFloor <= tCeil - t) raw.push(range(tFloor, t, 1))
    else {
      end = tCeil
      raw.push(range(t, tCeil, -1))
    }
  }
  return { hours: hoursOf(start, end), raw }
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
