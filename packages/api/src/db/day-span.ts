import { sql } from 'kysely'
import type { DaySpan, TimeRange } from '../shared/date-range.ts'

/** `column` within one of the half-open ranges (false for none). */
function within(column: string, ranges: readonly TimeRange[]) {
  if (ranges.length === 0) return sql<boolean>`false`
  const ref = sql.ref(column)
  return sql<boolean>`(${sql.join(
    ranges.map((r) => sql`(${ref} >= ${r.from} and ${ref} < ${r.to})`),
    sql` or `,
  )})`
}

/** Rows of a per-day read model (or of usage_day_deltas) on the span's whole days. */
export const onDays = (span: DaySpan) => within('day', span.days ? [span.days] : [])

/** usage_rollups rows on the span's edge hours. */
export const onEdgeHours = (span: DaySpan) => within('bucket', span.hours)

/** Groups whose figures all net to zero (rows emptied by a delete) are left out, as if never written. */
export const NOT_EMPTY = sql`having sum(events) <> 0 or sum(unpriced_events) <> 0 or sum(cost) <> 0 or sum(amount) <> 0`
