import { badInput } from '../shared/errors.ts'

/**
 * Budget periods as pure functions of an instant and an IANA time zone (Intl only, no tz data of
 * our own). A period runs [start, end): DAY from local midnight, WEEK from Monday's local midnight
 * (ISO weeks), MONTH from the 1st's local midnight. Across a DST change a day lasts 23 or 25 hours.
 */
export type BudgetPeriodName = 'DAY' | 'WEEK' | 'MONTH'

export interface PeriodBounds {
  start: Date
  end: Date
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone)
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
    formatters.set(timeZone, formatter)
  }
  return formatter
}

/** The IANA zone name as Intl knows it; BAD_USER_INPUT otherwise. */
export function checkTimeZone(timeZone: string, field = 'timeZone'): string {
  if (timeZone.length === 0 || timeZone.length > 64)
    throw badInput('timeZone must be an IANA time zone such as Europe/Paris', field)
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone
  } catch {
    throw badInput(`unknown time zone "${timeZone}"; use an IANA name such as Europe/Paris or UTC`, field)
  }
}

interface LocalTime {
  year: number
  month: number
  day: number
  hour: number
  minute: number
  second: number
}

function localTime(instantMs: number, timeZone: string): LocalTime {
  if (timeZone === 'UTC') {
    const d = new Date(instantMs)
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
    }
  }
  const parts: Record<string, number> = {}
  for (const part of formatterFor(timeZone).formatToParts(new Date(instantMs))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value)
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  }
}

/** The zone's offset from UTC at an instant, in ms (local = utc + offset). Whole seconds only. */
function offsetAt(instantMs: number, timeZone: string): number {
  const seconds = Math.floor(instantMs / 1000) * 1000
  const l = localTime(seconds, timeZone)
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second) - seconds
}

/**
 * The first instant of a local calendar day: local midnight, its first occurrence when clocks go
 * back over midnight, or the end of the gap when clocks skip midnight (e.g. America/Santiago).
 */
function startOfLocalDay(year: number, month: number, day: number, timeZone: string): Date {
  const wall = Date.UTC(year, month - 1, day)
  if (timeZone === 'UTC') return new Date(wall)
  const offsets = new Set([
    offsetAt(wall - 86_400_000, timeZone),
    offsetAt(wall, timeZone),
    offsetAt(wall + 86_400_000, timeZone),
  ])
  const valid = [...offsets].map((o) => wall - o).filter((t) => offsetAt(t, timeZone) === wall - t)
  if (valid.length > 0) return new Date(Math.min(...valid))
  // Midnight falls in a gap: the day starts at the first instant whose local time is past it.
  let lo = Math.min(...[...offsets].map((o) => wall - o))
  let hi = Math.max(...[...offsets].map((o) => wall - o))
  const past = (t: number) => t + offsetAt(t, timeZone) >= wall
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000
    if (past(mid)) hi = mid
    else lo = mid
  }
  return new Date(hi)
}

/** Calendar arithmetic on local dates, normalized through UTC (no time zone involved). */
function addDays(year: number, month: number, day: number, days: number): [number, number, number] {
  const d = new Date(Date.UTC(year, month - 1, day + days))
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()]
}

/** The period containing `at`, in `timeZone`. */
export function periodBounds(period: BudgetPeriodName, timeZone: string, at: Date): PeriodBounds {
  const l = localTime(at.getTime(), timeZone)
  let first: [number, number, number]
  let next: [number, number, number]
  if (period === 'DAY') {
    first = [l.year, l.month, l.day]
    next = addDays(l.year, l.month, l.day, 1)
  } else if (period === 'WEEK') {
    const mondayOffset = (new Date(Date.UTC(l.year, l.month - 1, l.day)).getUTCDay() + 6) % 7
    first = addDays(l.year, l.month, l.day, -mondayOffset)
    next = addDays(...first, 7)
  } else {
    first = [l.year, l.month, 1]
    next = l.month === 12 ? [l.year + 1, 1, 1] : [l.year, l.month + 1, 1]
  }
  const start = startOfLocalDay(...first, timeZone)
  const end = startOfLocalDay(...next, timeZone)
  // An instant inside a skipped or repeated hour can map back to a neighbouring day; keep [start, end) true.
  if (at.getTime() < start.getTime()) return periodBounds(period, timeZone, new Date(start.getTime() - 1))
  if (at.getTime() >= end.getTime()) return periodBounds(period, timeZone, end)
  return { start, end }
}
