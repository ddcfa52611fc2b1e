/** A monthly partition of usage_events: rows with month <= ts < end (UTC). */
export interface MonthPartition {
  name: string
  month: Date
  end: Date
}

export function monthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1))
}

export function monthEnd(month: Date): Date {
  return new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1))
}

export function addMonths(month: Date, n: number): Date {
  return new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + n, 1))
}

/** `usage_events_p2026_12`: the partition of December 2026 (UTC). */
export function partitionName(month: Date): string {
  return `usage_events_p${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`
}
