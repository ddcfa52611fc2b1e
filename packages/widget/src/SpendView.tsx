import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import type { ReactNode } from 'react'
import { isExpired, type WidgetClient } from './client.ts'
import { compareDecimals, ratio } from './decimal.ts'
import {
  fillDays, formatDateTime, formatDay, formatMoney, formatNumber, formatPercent, formatUnitPrice, levelOf,
  monthOf, niceMax, periodLabel, pickBudget, planLabel, rankGroups, usageTypeLabel, type DayBar, type Ranked,
} from './format.ts'
import { ALERTS, BUDGETS, EVENTS, SUMMARY } from './queries.ts'
import type { Budget, BudgetAlert, SpendData, UsageEvent, UsageGroup } from './types.ts'

export type ThemeName = 'light' | 'dark' | 'auto'
/** Overrides of the CSS custom properties, without the `--br-` prefix: { accent: '#0f766e' }. */
export type ThemeVars = Partial<Record<'accent' | 'background' | 'surface' | 'text' | 'muted' | 'border' | 'warning' | 'danger' | 'success' | 'radius' | 'font-family' | 'focus', string>>

export interface SpendViewProps {
  client: WidgetClient
  locale?: string
  theme?: ThemeName | (ThemeVars & { mode?: ThemeName })
  /** Re-read spend this often (ms) while the page is visible; 0 turns polling off. Default 10 s. */
  refreshInterval?: number
  title?: string
}

type Status = { kind: 'loading' } | { kind: 'ready' } | { kind: 'error'; message: string } | { kind: 'expired' }
type Selection = ({ kind: 'day'; day: string } | { kind: 'model'; model: string }) & { label: string; amount: string; events: number }

interface BudgetsResult { budgets: Budget[]; budgetAlerts: BudgetAlert[] }
interface SummaryResult {
  total: { currency: string; events: number; unpricedEvents: number; amount: string }
  days: { groups: UsageGroup[] }
  models: { groups: UsageGroup[] }
  features: { groups: UsageGroup[] }
}
interface EventsResult { usageEvents: { edges: { node: UsageEvent }[]; pageInfo: { hasNextPage: boolean } } }

const DAY_MS = 86_400_000
// Events listed by "explain this charge" (the latest ones; the header gives the full count and amount).
const SHOWN = 25

async function loadSpend(client: WidgetClient): Promise<SpendData> {
  const { customerId } = await client.session()
  const b = await client.request<BudgetsResult>(BUDGETS, { c: customerId })
  const budget = pickBudget(b.budgets)
  const { from, to } = budget ? { from: budget.periodStart, to: budget.periodEnd } : monthOf(Date.now())
  const s = await client.request<SummaryResult>(SUMMARY, { c: customerId, from, to })
  return {
    customerId, currency: budget?.currency ?? s.total.currency, from, to, budget, alerts: b.budgetAlerts,
    events: s.total.events, unpricedEvents: s.total.unpricedEvents, amount: s.total.amount,
    days: s.days.groups, models: s.models.groups, features: s.features.groups, loadedAt: Date.now(),
  }
}

function useSystemDark(): boolean {
  const query = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null
  const [dark, setDark] = useState(!!query?.matches)
  useEffect(() => {
    if (!query) return
    const on = () => setDark(query.matches)
    query.addEventListener('change', on)
    return () => query.removeEventListener('change', on)
  }, [query])
  return dark
}

export function SpendView({ client, locale, theme = 'light', refreshInterval = 10_000, title }: SpendViewProps) {
  const [status, setStatus] = useState<Status>({ kind: 'loading' })
  const [data, setData] = useState<SpendData | null>(null)
  const [live, setLive] = useState<'connecting' | 'live' | 'offline'>('connecting')
  const [fresh, setFresh] = useState<Set<string>>(new Set())
  const [announce, setAnnounce] = useState('')
  const [selection, setSelection] = useState<Selection | null>(null)
  const loading = useRef<Promise<void> | null>(null)
  const again = useRef(false)

  // One load at a time; a request for another while one runs makes it run once more after.
  const reload = useCallback((): Promise<void> => {
    if (loading.current) {
      again.current = true
      return loading.current
    }
    const run = loadSpend(client).then(
      (d) => {
        setData(d)
        setStatus({ kind: 'ready' })
      },
      (e: unknown) => {
        setStatus(isExpired(e) ? { kind: 'expired' } : { kind: 'error', message: e instanceof Error ? e.message : String(e) })
      },
    )
    loading.current = run.finally(() => {
      loading.current = null
      if (again.current) {
        again.current = false
        void reload()
      }
    })
    return loading.current
  }, [client])

  useEffect(() => {
    setStatus({ kind: 'loading' })
    setData(null)
    void reload()
  }, [reload])

  useEffect(() => {
    if (!refreshInterval) return
    const timer = setInterval(() => {
      if (typeof document === 'undefined' || !document.hidden) void reload()
    }, refreshInterval)
    return () => clearInterval(timer)
  }, [reload, refreshInterval])

  useEffect(() => {
    if (!announce) return
    const timer = setTimeout(() => setAnnounce(''), 20_000)
    return () => clearTimeout(timer)
  }, [announce])

  const customerId = data?.customerId
  useEffect(() => {
    if (!customerId) return
    return client.subscribe<{ budgetAlerts: BudgetAlert }>(ALERTS, { c: customerId }, {
      next: ({ budgetAlerts: alert }) => {
        setData((d) => (d && !d.alerts.some((a) => a.id === alert.id) ? { ...d, alerts: [alert, ...d.alerts].slice(0, 5) } : d))
        setFresh((f) => new Set(f).add(alert.id))
        setAnnounce(alertText(alert, data?.currency ?? 'USD', locale))
        void reload()
      },
      // (Re)connected: whatever happened while disconnected is read again.
      connected: () => {
        setLive('live')
        void reload()
      },
      error: () => setLive('offline'),
    })
  }, [client, customerId])

  const systemDark = useSystemDark()
  const mode = typeof theme === 'string' ? theme : (theme.mode ?? 'light')
  const style = useMemo(() => {
    if (typeof theme === 'string') return undefined
    const vars: Record<string, string> = {}
    for (const [k, v] of Object.entries(theme)) if (k !== 'mode' && v) vars[`--br-${k}`] = v
    return vars
  }, [theme])
  const dark = mode === 'dark' || (mode === 'auto' && systemDark)

  const heading = title ?? 'Usage and spend'
  let body: ReactNode
  if (status.kind === 'loading' && !data) body = <Loading />
  else if (status.kind === 'expired') body = (
    <StateBox icon="clock" title="Your session has expired" action="Reconnect" onAction={() => { setStatus({ kind: 'loading' }); void reload() }}>
      Usage is hidden until the page gets a new session.
    </StateBox>
  )
  else if (status.kind === 'error' && !data) body = (
    <StateBox icon="alert" title="Usage could not be loaded" action="Try again" onAction={() => { setStatus({ kind: 'loading' }); void reload() }}>
      {status.message}
    </StateBox>
  )
  else if (data) body = <Dashboard data={data} locale={locale} fresh={fresh} selection={selection} onSelect={setSelection} client={client} stale={status.kind === 'error'} />

  return (
    <section className="br" data-theme={dark ? 'dark' : 'light'} style={style} aria-labelledby="br-title" aria-busy={status.kind === 'loading'} lang={locale}>
      <div className="hd">
        <div>
          <h2 id="br-title">{heading}</h2>
          {data && <div className="sub">{periodLabel(data.budget)} · {formatDay(data.from, locale)} – {formatDay(new Date(Date.parse(data.to) - 1).toISOString(), locale)}</div>}
        </div>
        {data && <span className="live" data-off={live === 'live' ? undefined : ''} title={live === 'live' ? 'Alerts arrive live' : 'Alerts will arrive once connected'}><i aria-hidden="true" />{live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}</span>}
      </div>
      <div className="toast" role="status" aria-live="polite">{announce}</div>
      {body}
    </section>
  )
}

function alertText(a: BudgetAlert, currency: string, locale?: string): string {
  if (a.kind === 'FORECAST') return `Projected to pass the budget: ${formatMoney(a.forecast ?? a.spent, currency, locale)} by period end (limit ${formatMoney(a.limit, currency, locale)}).`
  return `${a.threshold} % of the budget reached: ${formatMoney(a.spent, currency, locale)} of ${formatMoney(a.limit, currency, locale)}.`
}

function Loading() {
  return (
    <div role="status" aria-label="Loading usage">
      <span className="sr">Loading usage…</span>
      <div className="card" aria-hidden="true">
        <div className="sk" style={{ height: 28, width: '40%' }} />
        <div className="sk" style={{ height: 10, marginTop: 22 }} />
        <div className="sk" style={{ height: 32, marginTop: 14 }} />
      </div>
      <div className="sk" aria-hidden="true" style={{ height: 96 }} />
    </div>
  )
}

const ICONS = {
  clock: 'M12 7v5l3 2M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0Z',
  alert: 'M12 8v5m0 3h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z',
  empty: 'M4 19h16M7 16V9m5 7V5m5 11v-4',
}

function StateBox({ icon, title, children, action, onAction }: { icon: keyof typeof ICONS; title: string; children?: ReactNode; action?: string; onAction?: () => void }) {
  return (
    <div className="state" role={icon === 'alert' ? 'alert' : undefined}>
      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" aria-hidden="true"><path d={ICONS[icon]} /></svg>
      <strong>{title}</strong>
      {children && <p className="muted">{children}</p>}
      {action && <button type="button" className="btn" onClick={onAction}>{action}</button>}
    </div>
  )
}

interface DashboardProps {
  data: SpendData
  locale?: string
  fresh: Set<string>
  selection: Selection | null
  onSelect(s: Selection | null): void
  client: WidgetClient
  stale: boolean
}

function Dashboard({ data, locale, fresh, selection, onSelect, client, stale }: DashboardProps) {
  const money = (v: string) => formatMoney(v, data.currency, locale)
  const days = useMemo(() => fillDays(data.days, data.from, data.to, data.loadedAt), [data])
  const models = useMemo(() => rankGroups(data.models, 'model', data.amount, 6, 'Unknown model'), [data])
  const features = useMemo(() => rankGroups(data.features, 'feature', data.amount, 6, 'No feature'), [data])
  return (
    <>
      <BudgetCard data={data} money={money} locale={locale} />
      {data.events === 0 ? (
        <StateBox icon="empty" title="No usage yet this period">Spend appears here as soon as usage is recorded.</StateBox>
      ) : (
        <>
          <div className="card chart">
            <h3 id="br-days">Spend per day</h3>
            <DayChart days={days} money={money} locale={locale} selected={selection?.kind === 'day' ? selection.day : null}
              onPick={(d) => onSelect({ kind: 'day', day: d.day, label: formatDay(d.day, locale), amount: d.amount, events: d.events })} />
          </div>
          <div className="grid">
            <Breakdown title="By model" rows={models} money={money} locale={locale}
              selected={selection?.kind === 'model' ? selection.model : null}
              onPick={(r) => onSelect({ kind: 'model', model: r.key, label: r.label, amount: r.amount, events: r.events })} />
            <Breakdown title="By feature" rows={features} money={money} locale={locale} />
          </div>
          {selection && <Explain data={data} selection={selection} client={client} locale={locale} money={money} onClose={() => onSelect(null)} />}
        </>
      )}
      <Alerts alerts={data.alerts} fresh={fresh} money={money} locale={locale} currency={data.currency} />
      <div className="ft">
        <span>{data.unpricedEvents > 0 ? `${formatNumber(data.unpricedEvents, locale)} events not priced yet` : `${formatNumber(data.events, locale)} events`}</span>
        <span>{stale ? 'Could not refresh; showing the last figures' : `Updated ${formatDate(data.loadedAt, locale)}`}</span>
      </div>
    </>
  )
}

const formatDate = (t: number, locale?: string) => new Date(t).toLocaleTimeString(locale, { hour: 'numeric', minute: '2-digit', second: '2-digit' })

function BudgetCard({ data, money, locale }: { data: SpendData; money: (v: string) => string; locale?: string }) {
  const b = data.budget
  if (!b) {
    return (
      <div className="card">
        <div><span className="big" data-testid="spent">{money(data.amount)}</span><span className="of">spent, no budget set</span></div>
      </div>
    )
  }
  const used = ratio(b.spent, b.limit)
  const level = levelOf(b.spent, b.limit, b.thresholds)
  const forecastLevel = compareDecimals(b.forecast, b.limit) > 0 ? 'over' : undefined
  return (
    <div className="card">
      <div><span className="big" data-testid="spent">{money(b.spent)}</span><span className="of">of {money(b.limit)} budget</span></div>
      <div className="bar" data-level={level} role="progressbar" aria-label="Budget used" aria-valuemin={0} aria-valuemax={100}
        aria-valuenow={Math.round(used * 100)} aria-valuetext={`${formatPercent(used, locale)} of the budget used: ${money(b.spent)} of ${money(b.limit)}`}>
        <div className="fill" style={{ width: `${Math.min(used, 1) * 100}%` }} />
        {b.thresholds.filter((t) => t > 0 && t <= 100).map((t) => (
          <div key={t} className="tick" style={{ left: `${t}%` }} data-crossed={used * 100 >= t ? '' : undefined} aria-hidden="true"><span>{t}%</span></div>
        ))}
      </div>
      <dl className="stats">
        <div><dt>Used</dt><dd data-level={level === 'ok' ? undefined : level}>{formatPercent(used, locale)}</dd></div>
        <div><dt>Remaining</dt><dd data-testid="remaining">{money(b.remaining)}</dd></div>
        <div><dt>Forecast at period end</dt><dd data-testid="forecast" data-level={forecastLevel}>{money(b.forecast)}</dd></div>
        <div><dt>Resets</dt><dd>{formatDateTime(b.periodEnd, locale)}</dd></div>
      </dl>
    </div>
  )
}

function DayChart({ days, money, locale, selected, onPick }: { days: DayBar[]; money: (v: string) => string; locale?: string; selected: string | null; onPick(d: DayBar): void }) {
  const max = niceMax(Math.max(0, ...days.map((d) => Number(d.amount))))
  const width = 100 / Math.max(days.length, 1)
  const peak = days.reduce<DayBar | null>((p, d) => (!p || compareDecimals(d.amount, p.amount) > 0 ? d : p), null)
  return (
    <>
      <div className="plot">
        <svg viewBox="0 0 100 60" preserveAspectRatio="none" role="img" aria-labelledby="br-days" aria-describedby="br-days-desc">
          <line x1="0" x2="100" y1="60" y2="60" vectorEffect="non-scaling-stroke" />
          {days.map((d, i) => {
            const h = (Number(d.amount) / max) * 58
            return h > 0 ? (
              <rect key={d.day} className="b" data-sel={selected === d.day ? '' : undefined} x={i * width + width * 0.15} y={60 - Math.max(h, 0.8)} width={width * 0.7} height={Math.max(h, 0.8)} rx="0.6" />
            ) : null
          })}
        </svg>
        {/* Real buttons over the bars: pointer, keyboard and screen readers pick a day the same way. */}
        <div className="hits">
          {days.map((d, i) =>
            d.events ? (
              <button key={d.day} type="button" style={{ left: `${i * width}%`, width: `${width}%` }} aria-pressed={selected === d.day}
                title={`${formatDay(d.day, locale)}: ${money(d.amount)}`} aria-label={`${formatDay(d.day, locale)}: ${money(d.amount)}, ${d.events} events. Explain this charge`}
                onClick={() => onPick(d)} />
            ) : null,
          )}
        </div>
      </div>
      <div className="axis" aria-hidden="true"><span>{days[0] && formatDay(days[0].day, locale)}</span><span>max {money(String(max))}</span><span>{days.at(-1) && formatDay(days.at(-1)!.day, locale)}</span></div>
      <p id="br-days-desc" className="sr">
        {peak && Number(peak.amount) > 0 ? `Highest day ${formatDay(peak.day, locale)} at ${money(peak.amount)}. ` : ''}
        {days.filter((d) => d.events).map((d) => `${formatDay(d.day, locale)} ${money(d.amount)}`).join('; ')}
      </p>
    </>
  )
}

function Breakdown({ title, rows, money, locale, selected, onPick }: { title: string; rows: Ranked[]; money: (v: string) => string; locale?: string; selected?: string | null; onPick?(r: Ranked): void }) {
  return (
    <div className="card">
      <h3>{title}</h3>
      {rows.length === 0 ? <p className="muted">Nothing yet</p> : (
        <ul className="rows" aria-label={title}>
          {rows.map((r) => {
            const inner = (
              <>
                <span className="n" title={r.label}>{r.label}</span>
                <span className="a">{money(r.amount)}</span>
                <span className="m" aria-hidden="true"><i style={{ width: `${Math.min(Math.max(r.share, 0), 1) * 100}%` }} /></span>
              </>
            )
            const text = `${r.label}: ${money(r.amount)}, ${formatPercent(r.share, locale)} of spend, ${r.events} events`
            return (
              <li key={r.label}>
                {onPick && !r.other ? (
                  <button type="button" className="row" aria-pressed={selected === r.key} aria-label={`${text}. Explain this charge`} onClick={() => onPick(r)}>{inner}</button>
                ) : (
                  <div className="row" aria-label={text} role="group">{inner}</div>
                )}
              </li>
            )
          })}
        </ul>
      )}
    </div>
  )
}

function Alerts({ alerts, fresh, money, locale, currency }: { alerts: BudgetAlert[]; fresh: Set<string>; money: (v: string) => string; locale?: string; currency: string }) {
  void money
  return (
    <div className="card alerts" style={{ marginTop: 12, marginBottom: 0 }}>
      <h3 id="br-alerts">Recent alerts</h3>
      {alerts.length === 0 ? <p className="muted">No alerts this period.</p> : (
        <ul aria-labelledby="br-alerts">
          {alerts.map((a) => (
            <li key={a.id} data-new={fresh.has(a.id) ? '' : undefined} data-testid="alert">
              <span className="dot" data-level={a.threshold >= 100 && a.kind !== 'FORECAST' ? 'over' : undefined} aria-hidden="true" />
              <div>
                <div>{alertText(a, currency, locale)}</div>
                <div className="sub"><time dateTime={a.triggeredAt}>{formatDateTime(a.triggeredAt, locale)}</time></div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}

// details: the session may show unit prices and the plan (createWidgetSession priceDetails).
type ExplainState = { kind: 'loading' } | { kind: 'error'; message: string } | { kind: 'ready'; events: UsageEvent[]; more: boolean; details: boolean }

function Explain({ data, selection, client, locale, money: rounded, onClose }: { data: SpendData; selection: Selection; client: WidgetClient; locale?: string; money: (v: string) => string; onClose(): void }) {
  const [state, setState] = useState<ExplainState>({ kind: 'loading' })
  const money = (v: string) => formatMoney(v, data.currency, locale, true)
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    let cancelled = false
    setState({ kind: 'loading' })
    const day = selection.kind === 'day' ? Date.parse(selection.day) : 0
    const from = selection.kind === 'day' ? new Date(Math.max(day, Date.parse(data.from))).toISOString() : data.from
    const to = selection.kind === 'day' ? new Date(Math.min(day + DAY_MS, Date.parse(data.to))).toISOString() : data.to
    const first = selection.kind === 'day' ? SHOWN : 200
    client.priceDetails().then((details) =>
      client.request<EventsResult>(EVENTS, { c: data.customerId, from, to, first, details }).then((r) => ({ r, details })),
    ).then(
      ({ r, details }) => {
        if (cancelled) return
        let events = r.usageEvents.edges.map((e) => e.node)
        if (selection.kind === 'model') events = events.filter((e) => (e.canonicalModel ?? e.model) === selection.model || e.model === selection.model).slice(0, SHOWN)
        setState({ kind: 'ready', events, more: events.length < selection.events, details })
      },
      (e: unknown) => !cancelled && setState({ kind: 'error', message: e instanceof Error ? e.message : String(e) }),
    )
    heading.current?.focus()
    return () => {
      cancelled = true
    }
  }, [client, data.customerId, data.from, data.to, selection])

  const label = selection.kind === 'day' ? `Charges on ${selection.label}` : `Charges for ${selection.label}`
  return (
    <div className="explain" role="region" aria-labelledby="br-explain" data-testid="explain">
      <div className="hd">
        <h3 id="br-explain" ref={heading} tabIndex={-1} style={{ margin: 0 }}>{label}</h3>
        <button type="button" className="link" onClick={onClose} aria-label="Close the charge details">Close</button>
      </div>
      {state.kind === 'loading' && <p className="muted" role="status">Loading the events…</p>}
      {state.kind === 'error' && <p role="alert">The events could not be loaded: {state.message}</p>}
      {state.kind === 'ready' && state.events.length === 0 && <p className="muted">No events.</p>}
      <p className="sub" style={{ marginBottom: 8 }}>
        {formatNumber(selection.events, locale)} events, {rounded(selection.amount)} billed{state.kind === 'ready' && state.more ? ` · the latest ${state.events.length} below` : ''}
      </p>
      <div className="list" tabIndex={0} role="group" aria-label={`${label}: events and their priced lines`}>
      {state.kind === 'ready' && state.events.map((e) => (
        <div className="ev" key={e.id}>
          <div className="ev-h">
            <span><strong>{e.canonicalModel ?? e.model}</strong>{e.feature ? <span className="muted"> · {e.feature}</span> : null}<span className="muted"> · {formatDateTime(e.timestamp, locale)}</span></span>
            <strong>{e.amount === null ? 'not priced yet' : money(e.amount)}</strong>
          </div>
          {e.lines.length > 0 && (
            <table>
              <caption className="sr">Priced lines of {e.id}{state.details ? `, ${planLabel(e.pricingPlan ?? null, locale)}` : ''}</caption>
              <thead><tr><th scope="col">Usage</th><th scope="col">Quantity</th>{state.details && <th scope="col">Unit price</th>}<th scope="col">Billed</th></tr></thead>
              <tbody>
                {e.lines.map((l) => (
                  <tr key={l.usageType}>
                    <td>{usageTypeLabel(l.usageType)}</td>
                    <td>{formatNumber(l.quantity, locale)}</td>
                    {state.details && <td>{formatUnitPrice(l.unitPrice ?? '0', l.usageType, e.currency, locale)}</td>}
                    <td>{money(l.amount)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {state.details && <div className="sub">Provider rates, {planLabel(e.pricingPlan ?? null, locale)}</div>}
        </div>
      ))}
      </div>
    </div>
  )
}
