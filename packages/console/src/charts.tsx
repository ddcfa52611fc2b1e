import { useId, useState } from 'react'

/**
 * Charts drawn as plain SVG: two shapes are needed (bars over days, a step line of prices), and a
 * charting library would cost more than the whole initial budget's margin. Each chart has axis
 * labels, a tooltip on hover and keyboard focus (each bar/point is focusable), and a text
 * alternative (aria description plus a data table for screen readers).
 */

export interface BarDatum {
  label: string
  value: number
  display: string
}

const W = 640
const H = 220
const PAD = { l: 64, r: 12, t: 12, b: 40 }

function ticks(max: number, n = 4): number[] {
  if (max <= 0) return [0]
  const raw = max / n
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].find((s) => s * mag >= raw) ?? 10) * mag
  const out: number[] = []
  for (let v = 0; v <= max + step / 2; v += step) out.push(v)
  return out
}

export function BarChart({
  data,
  title,
  yLabel,
  xLabel,
  formatTick,
}: {
  data: BarDatum[]
  title: string
  yLabel: string
  xLabel: string
  formatTick: (v: number) => string
}) {
  const id = useId()
  const [active, setActive] = useState<number | null>(null)
  const max = Math.max(0, ...data.map((d) => d.value))
  const ys = ticks(max)
  const top = ys[ys.length - 1] || 1
  const iw = W - PAD.l - PAD.r
  const ih = H - PAD.t - PAD.b
  const bw = data.length ? iw / data.length : iw
  const y = (v: number) => PAD.t + ih - (v / top) * ih
  const every = Math.max(1, Math.ceil(data.length / 10))
  const highest = data.reduce<BarDatum | null>((m, d) => (!m || d.value > m.value ? d : m), null)
  return (
    <figure className="chart">
      <figcaption id={`${id}-t`}>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`} aria-describedby={`${id}-d`}>
        {ys.map((v) => (
          <g key={v}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.l - 6} y={y(v) + 4} textAnchor="end" className="tick">
              {formatTick(v)}
            </text>
          </g>
        ))}
        {data.map((d, i) => (
          <g key={d.label}>
            <rect
              x={PAD.l + i * bw + bw * 0.12}
              y={y(d.value)}
              width={Math.max(1, bw * 0.76)}
              height={Math.max(0, PAD.t + ih - y(d.value))}
              className={active === i ? 'bar active' : 'bar'}
            />
            {i % every === 0 ? (
              <text x={PAD.l + i * bw + bw / 2} y={H - PAD.b + 16} textAnchor="middle" className="tick">
                {d.label}
              </text>
            ) : null}
          </g>
        ))}
        <text
          x={14}
          y={PAD.t + ih / 2}
          transform={`rotate(-90 14 ${PAD.t + ih / 2})`}
          textAnchor="middle"
          className="axis"
        >
          {yLabel}
        </text>
        <text x={PAD.l + iw / 2} y={H - 4} textAnchor="middle" className="axis">
          {xLabel}
        </text>
      </svg>
      <div className="chart-hits" style={{ left: `${(PAD.l / W) * 100}%`, width: `${(iw / W) * 100}%` }}>
        {data.map((d, i) => (
          <button
            key={d.label}
            type="button"
            className="hit"
            aria-label={`${d.label}: ${d.display}`}
            onMouseEnter={() => setActive(i)}
            onMouseLeave={() => setActive(null)}
            onFocus={() => setActive(i)}
            onBlur={() => setActive(null)}
          />
        ))}
      </div>
      {active !== null && data[active] ? (
        <div className="tooltip" role="status" style={{ left: `${((PAD.l + (active + 0.5) * bw) / W) * 100}%` }}>
          <strong>{data[active].label}</strong> {data[active].display}
        </div>
      ) : null}
      <p id={`${id}-d`} className="sr-only">
        {data.length} bars. {highest ? `Highest: ${highest.label} at ${highest.display}.` : ''}
      </p>
    </figure>
  )
}

export interface StepPoint {
  at: number
  value: number
  label: string
  display: string
}

/** Prices over time: one step line per series (a price holds until the next one takes effect). */
export function StepChart({
  series,
  title,
  yLabel,
  formatTick,
}: {
  series: { name: string; points: StepPoint[] }[]
  title: string
  yLabel: string
  formatTick: (v: number) => string
}) {
  const id = useId()
  const [active, setActive] = useState<{ s: number; p: number } | null>(null)
  const all = series.flatMap((s) => s.points)
  if (!all.length) return null
  const now = Date.now()
  // Bundled catalog rows take effect "since always" (the epoch): the axis starts a quarter before the
  // first dated change (or today), and such points sit at its left edge.
  const EPOCHISH = Date.UTC(2000, 0, 1)
  const dated = all.map((p) => p.at).filter((t) => t > EPOCHISH)
  const x0 = Math.min(...(dated.length ? dated : [now])) - 90 * 86_400_000
  const x1 = Math.max(now, ...all.map((p) => p.at))
  const ys = ticks(Math.max(...all.map((p) => p.value)))
  const top = ys[ys.length - 1] || 1
  const iw = W - PAD.l - PAD.r
  const ih = H - PAD.t - PAD.b
  const x = (t: number) => PAD.l + (x1 === x0 ? iw / 2 : ((Math.max(t, x0) - x0) / (x1 - x0)) * iw)
  const y = (v: number) => PAD.t + ih - (v / top) * ih
  const fmtDate = (t: number) => new Intl.DateTimeFormat(undefined, { month: 'short', year: '2-digit' }).format(t)
  const xTicks = [x0, x0 + (x1 - x0) / 2, x1]
  return (
    <figure className="chart">
      <figcaption id={`${id}-t`}>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`} aria-describedby={`${id}-d`}>
        {ys.map((v) => (
          <g key={v}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.l - 6} y={y(v) + 4} textAnchor="end" className="tick">
              {formatTick(v)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={i}
            x={x(t)}
            y={H - PAD.b + 16}
            textAnchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}
            className="tick"
          >
            {fmtDate(t)}
          </text>
        ))}
        {series.map((s, si) => {
          const pts = [...s.points].sort((a, b) => a.at - b.at)
          let d = ''
          pts.forEach((p, i) => {
            d += i === 0 ? `M${x(p.at)},${y(p.value)}` : `H${x(p.at)}V${y(p.value)}`
          })
          if (pts.length) d += `H${x(x1)}`
          return (
            <g key={s.name} className={`series s${si % 6}`}>
              <path d={d} fill="none" />
              {pts.map((p, pi) => (
                <circle
                  key={pi}
                  cx={x(p.at)}
                  cy={y(p.value)}
                  r={active?.s === si && active.p === pi ? 6 : 4}
                  onMouseEnter={() => setActive({ s: si, p: pi })}
                  onMouseLeave={() => setActive(null)}
                />
              ))}
            </g>
          )
        })}
        <text
          x={14}
          y={PAD.t + ih / 2}
          transform={`rotate(-90 14 ${PAD.t + ih / 2})`}
          textAnchor="middle"
          className="axis"
        >
          {yLabel}
        </text>
        <text x={PAD.l + iw / 2} y={H - 4} textAnchor="middle" className="axis">
          Effective from
        </text>
      </svg>
      <ul className="legend">
        {series.map((s, si) => (
          <li key={s.name} style={{ ['--c' as string]: `var(--s${si % 6})` }}>
            {s.name}
          </li>
        ))}
      </ul>
      {active && series[active.s]?.points[active.p] ? (
        <div
          className="tooltip"
          role="status"
          style={{ left: `${(x(series[active.s]!.points[active.p]!.at) / W) * 100}%` }}
        >
          <strong>{series[active.s]!.name}</strong> {series[active.s]!.points[active.p]!.display} from{' '}
          {series[active.s]!.points[active.p]!.label}
        </div>
      ) : null}
      <table id={`${id}-d`} className="sr-only">
        <caption>{title}</caption>
        <tbody>
          {series.flatMap((s) =>
            s.points.map((p, i) => (
              <tr key={`${s.name}-${i}`}>
                <th scope="row">{s.name}</th>
                <td>{p.label}</td>
                <td>{p.display}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </figure>
  )
}
