import { useMemo, useState } from 'react'

/** Date ranges: [from, to) in UTC, as the API takes them. */
export type RangeKey = '7d' | '30d' | 'month' | '90d'
const LABELS: Record<RangeKey, string> = {
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  month: 'This month',
  '90d': 'Last 90 days',
}

export function rangeOf(key: RangeKey, now = new Date()): { from: string; to: string } {
  const dayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  const to = new Date(dayStart + 86_400_000)
  const from =
    key === 'month'
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
      : new Date(to.getTime() - { '7d': 7, '30d': 30, '90d': 90 }[key] * 86_400_000)
  return { from: from.toISOString(), to: to.toISOString() }
}

export function useRange(initial: RangeKey = '30d') {
  const [key, setKey] = useState<RangeKey>(initial)
  const range = useMemo(() => rangeOf(key), [key])
  const picker = (
    <label className="row">
      <span>Range</span>
      <select value={key} onChange={(e) => setKey(e.target.value as RangeKey)}>
        {(Object.keys(LABELS) as RangeKey[]).map((k) => (
          <option key={k} value={k}>
            {LABELS[k]}
          </option>
        ))}
      </select>
    </label>
  )
  return { key, ...range, picker }
}
