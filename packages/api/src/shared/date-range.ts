/** Time ranges and UTC hours: what usage summaries and budgets use to read the ledger. */

export const HOUR_MS = 3_600_000
export const DAY_MS = 24 * HOUR_MS

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
