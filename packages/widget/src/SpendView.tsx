import { createContext, useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import type { ReactNode, RefObject } from 'react'
import { problemOf, type Problem, type WidgetClient } from './client.ts'
import { addDecimals, compareDecimals, fromUnits, ratio, toUnits } from './decimal.ts'
import {
  daysPerBar,
  fillDays,
  formatDateTime,
  formatDay,
  formatMoney,
  formatNumber,
  formatPercent,
  formatUnitPrice,
  groupDays,
  levelOf,
  monthOf,
  niceMax,
  periodLabel,
  pickBudget,
  planLabel,
  rankGroups,
  remainingOf,
  usageTypeLabel,
  type DayBar,
  type Ranked,
} from './format.ts'
import { languageFor, type Language, type MessageOverrides, type Translate } from './messages.ts'
import { ALERTS, BUDGETS, EVENTS, PREVIEW, SUMMARY, USAGE } from './queries.ts'
import type { Budget, BudgetAlert, Credits, InvoicePreview, SpendData, UsageEvent, UsageGroup } from './types.ts'

export type ThemeName = 'light' | 'dark' | 'auto'
/** Overrides of the CSS custom properties, without the `--br-` prefix: { accent: '#0f766e' }. */
export type ThemeVars = Partial<
  Record<
    | 'accent'
    | 'background'
    | 'surface'
    | 'text'
    | 'muted'
    | 'border'
    | 'warning'
    | 'danger'
    | 'success'
    | 'radius'
    | 'font-family'
    | 'focus',
    string
  >
>

export interface SpendViewProps {
  client: WidgetClient
  locale?: string
  theme?: ThemeName | (ThemeVars & { mode?: ThemeName })
  /**
   * While the live streams are down, re-read spend this often (ms) when the page is visible; 0 turns
   * polling off. Default 10 s. While they are up, spend and alerts arrive as they happen.
   */
  refreshInterval?: number
  title?: string
  /** Override or add UI words by language tag: { de: { title: 'KI-Nutzung' }, nl: { … } }. */
  messages?: MessageOverrides
}

// Problems the end customer can act on (or at least understand); developer detail goes to the console.
type Status = { kind: 'loading' } | { kind: 'ready' } | { kind: 'error' } | { kind: Exclude<Problem, 'error'> }
type Selection = ({ kind: 'day'; day: string; days: number } | { kind: 'model'; model: string }) & {
  label: string
  amount: string
  events: number
}

const I18n = createContext<Language>(languageFor('en'))
const useT = (): Translate => useContext(I18n).t

interface BudgetsResult {
  budgets: Budget[]
  budgetAlerts: BudgetAlert[]
  creditBalance: Credits & { grants: { id: string }[] }
}
interface PreviewResult {
  invoicePreview: InvoicePreview
}
interface SummaryResult {
  total: { currency: string; events: number; unpricedEvents: number; amount: string }
  days: { groups: UsageGroup[] }
  models: { groups: UsageGroup[] }
  features: { groups: UsageGroup[] }
}
interface EventsResult {
  usageEvents: { edges: { node: UsageEvent }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }
}

const DAY_MS = 86_400_000
// Events "explain this charge" lists a page at a time (newest first; "Show more" reads the next).
const SHOWN = 25

async function loadSpend(client: WidgetClient): Promise<SpendData> {
  const { customerId } = await client.session()
  const b = await client.request<BudgetsResult>(BUDGETS, { c: customerId })
  const budget = pickBudget(b.budgets)
  const { from, to } = budget ? { from: budget.periodStart, to: budget.periodEnd } : monthOf(Date.now())
  const [s, invoice] = await Promise.all([
    client.request<SummaryResult>(SUMMARY, { c: customerId, from, to }),
    // The invoice so far; an API without invoicePreview (or a failure of it alone) hides the card.
    client
      .priceDetails()
      .then((details) => client.request<PreviewResult>(PREVIEW, { c: customerId, details }))
      .then((r) => r.invoicePreview)
      .catch(() => null),
  ])
  return {
    customerId,
    currency: budget?.currency ?? s.total.currency,
    from,
    to,
    budget,
    alerts: b.budgetAlerts,
    credits:
      b.creditBalance.grants.length === 0
        ? null
        : {
            currency: b.creditBalance.currency,
            balance: b.creditBalance.balance,
            available: b.creditBalance.available,
            topUpUrl: b.creditBalance.topUpUrl,
          },
    invoice,
    events: s.total.events,
    unpricedEvents: s.total.unpricedEvents,
    amount: s.total.amount,
    days: s.days.groups,
    models: s.models.groups,
    features: s.features.groups,
    loadedAt: Date.now(),
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

export function SpendView({
  client,
  locale,
  theme = 'auto',
  refreshInterval = 10_000,
  title,
  messages,
}: SpendViewProps) {
  const language = useMemo(() => languageFor(locale, messages), [locale, messages])
  const { t } = language
  const [status, setStatus] = useState<Status>({ kind: 'loading' })
  const [data, setData] = useState<SpendData | null>(null)
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
        const problem = problemOf(e)
        if (problem === 'error') console.warn('Burnrate widget: usage could not be loaded', e)
        setStatus({ kind: problem })
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

  // Both live streams up: spend and alerts arrive as they happen, and polling rests.
  const [streams, setStreams] = useState<Record<'alerts' | 'usage', 'connecting' | 'live' | 'offline'>>({
    alerts: 'connecting',
    usage: 'connecting',
  })
  const live =
    streams.alerts === 'live' && streams.usage === 'live'
      ? 'live'
      : streams.alerts === 'offline' || streams.usage === 'offline'
        ? 'offline'
        : 'connecting'
  useEffect(() => {
    if (!refreshInterval || live === 'live') return
    const timer = setInterval(() => {
      if (typeof document === 'undefined' || !document.hidden) void reload()
    }, refreshInterval)
    return () => clearInterval(timer)
  }, [reload, refreshInterval, live])

  useEffect(() => {
    if (!announce) return
    const timer = setTimeout(() => setAnnounce(''), 20_000)
    return () => clearTimeout(timer)
  }, [announce])

  const customerId = data?.customerId
  useEffect(() => {
    if (!customerId) return
    return client.subscribe<{ budgetAlerts: BudgetAlert }>(
      ALERTS,
      { c: customerId },
      {
        next: ({ budgetAlerts: alert }) => {
          setData((d) =>
            d && !d.alerts.some((a) => a.id === alert.id) ? { ...d, alerts: [alert, ...d.alerts].slice(0, 5) } : d,
          )
          setFresh((f) => new Set(f).add(alert.id))
          setAnnounce(alertText(alert, data?.currency ?? 'USD', locale, t))
          void reload()
        },
        // (Re)connected: whatever happened while disconnected is read again.
        connected: () => {
          setStreams((st) => ({ ...st, alerts: 'live' }))
          void reload()
        },
        error: () => setStreams((st) => ({ ...st, alerts: 'offline' })),
      },
    )
  }, [client, customerId, t])

  useEffect(() => {
    if (!customerId) return
    // Any change to this customer's usage (coalesced by the API): read the figures again.
    return client.subscribe<{ usageUpdates: { events: number } }>(
      USAGE,
      { c: customerId },
      {
        next: () => void reload(),
        connected: () => {
          setStreams((st) => ({ ...st, usage: 'live' }))
          void reload()
        },
        error: () => setStreams((st) => ({ ...st, usage: 'offline' })),
      },
    )
  }, [client, customerId, reload])

  const systemDark = useSystemDark()
  const mode = typeof theme === 'string' ? theme : (theme.mode ?? 'light')
  const style = useMemo(() => {
    if (typeof theme === 'string') return undefined
    const vars: Record<string, string> = {}
    for (const [k, v] of Object.entries(theme)) if (k !== 'mode' && v) vars[`--br-${k}`] = v
    return vars
  }, [theme])
  const dark = mode === 'dark' || (mode === 'auto' && systemDark)

  const heading = title ?? t('title')
  const retry = () => {
    setStatus({ kind: 'loading' })
    void reload()
  }
  let body: ReactNode
  if (status.kind === 'loading' && !data) body = <Loading />
  else if (status.kind === 'expired')
    body = (
      <StateBox icon="clock" title={t('expiredTitle')} action={t('reconnect')} onAction={retry}>
        {t('expiredBody')}
      </StateBox>
    )
  else if (status.kind === 'invalid')
    body = (
      <StateBox icon="alert" title={t('invalidTitle')} action={t('tryAgain')} onAction={retry}>
        {t('invalidBody')}
      </StateBox>
    )
  else if (status.kind === 'origin')
    body = (
      <StateBox icon="alert" title={t('originTitle')}>
        {t('originBody')}
      </StateBox>
    )
  else if (status.kind === 'error' && !data)
    body = (
      <StateBox icon="alert" title={t('errorTitle')} action={t('tryAgain')} onAction={retry}>
        {t('errorBody')}
      </StateBox>
    )
  else if (data)
    body = (
      <Dashboard
        data={data}
        locale={locale}
        fresh={fresh}
        selection={selection}
        onSelect={setSelection}
        client={client}
        stale={status.kind === 'error'}
      />
    )

  return (
    <I18n.Provider value={language}>
      <section
        className="br"
        data-theme={dark ? 'dark' : 'light'}
        style={style}
        aria-labelledby="br-title"
        aria-busy={status.kind === 'loading'}
        lang={language.lang}
      >
        <div className="hd">
          <div>
            <h2 id="br-title">{heading}</h2>
            {data && (
              <div className="sub">
                {periodLabel(data.budget, t)} · {formatDay(data.from, locale)} –{' '}
                {formatDay(new Date(Date.parse(data.to) - 1).toISOString(), locale)}
              </div>
            )}
          </div>
          {data && (
            <span
              className="live"
              data-off={live === 'live' ? undefined : ''}
              title={live === 'live' ? t('liveTitle') : t('offlineTitle')}
            >
              <i aria-hidden="true" />
              {live === 'live' ? t('live') : live === 'connecting' ? t('connecting') : t('reconnecting')}
            </span>
          )}
        </div>
        <div className="toast" role="status" aria-live="polite">
          {announce}
        </div>
        {body}
      </section>
    </I18n.Provider>
  )
}

function alertText(a: BudgetAlert, currency: string, locale: string | undefined, t: Translate): string {
  const limit = formatMoney(a.limit, currency, locale)
  if (a.kind === 'FORECAST')
    return t('alertForecast', { forecast: formatMoney(a.forecast ?? a.spent, currency, locale), limit })
  return t('alertThreshold', {
    threshold: formatPercent(a.threshold / 100, locale),
    spent: formatMoney(a.spent, currency, locale),
    limit,
  })
}

function Loading() {
  const t = useT()
  return (
    <div role="status" aria-label={t('loading')}>
      <span className="sr">{t('loading')}</span>
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

function StateBox({
  icon,
  title,
  children,
  action,
  onAction,
}: {
  icon: keyof typeof ICONS
  title: string
  children?: ReactNode
  action?: string
  onAction?: () => void
}) {
  return (
    <div className="state" role={icon === 'alert' ? 'alert' : undefined}>
      <svg
        viewBox="0 0 24 24"
        fill="none"
        stroke="currentColor"
        strokeWidth="1.8"
        strokeLinecap="round"
        strokeLinejoin="round"
        aria-hidden="true"
      >
        <path d={ICONS[icon]} />
      </svg>
      <strong>{title}</strong>
      {children && <p className="muted">{children}</p>}
      {action && (
        <button type="button" className="btn" onClick={onAction}>
          {action}
        </button>
      )}
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
  const t = useT()
  const money = (v: string) => formatMoney(v, data.currency, locale)
  const days = useMemo(() => fillDays(data.days, data.from, data.to, data.loadedAt), [data])
  const models = useMemo(() => rankGroups(data.models, 'model', data.amount, 6, t('unknownModel'), t), [data, t])
  const features = useMemo(() => rankGroups(data.features, 'feature', data.amount, 6, t('noFeature'), t), [data, t])
  // The control that opened "explain this charge" gets focus back when it closes.
  const opener = useRef<HTMLElement | null>(null)
  const open = (s: Selection, from: HTMLElement) => {
    opener.current = from
    onSelect(s)
  }
  const close = () => {
    onSelect(null)
    const back = opener.current
    opener.current = null
    requestAnimationFrame(() => back?.isConnected && back.focus())
  }
  return (
    <>
      <BudgetCard data={data} money={money} locale={locale} />
      {data.credits && <CreditCard credits={data.credits} money={money} />}
      {data.invoice && <InvoiceCard invoice={data.invoice} locale={locale} />}
      {data.events === 0 ? (
        <StateBox icon="empty" title={t('noUsageTitle')}>
          {t('noUsageBody')}
        </StateBox>
      ) : (
        <>
          <p className="hint">{t('hint')}</p>
          <div className="card chart">
            <h3 id="br-days">{t('perDay')}</h3>
            <DayChart
              days={days}
              money={money}
              locale={locale}
              selected={selection?.kind === 'day' ? selection.day : null}
              onPick={(d, label, from) =>
                open({ kind: 'day', day: d.day, days: d.days, label, amount: d.amount, events: d.events }, from)
              }
            />
          </div>
          <div className="grid">
            <Breakdown
              title={t('byModel')}
              rows={models}
              money={money}
              locale={locale}
              selected={selection?.kind === 'model' ? selection.model : null}
              onPick={(r, from) =>
                open({ kind: 'model', model: r.key, label: r.label, amount: r.amount, events: r.events }, from)
              }
            />
            <Breakdown title={t('byFeature')} rows={features} money={money} locale={locale} />
          </div>
          {selection && (
            <Explain data={data} selection={selection} client={client} locale={locale} money={money} onClose={close} />
          )}
        </>
      )}
      <Alerts alerts={data.alerts} fresh={fresh} locale={locale} currency={data.currency} />
      <div className="ft">
        <span>
          {data.unpricedEvents > 0
            ? t('unpriced', { count: data.unpricedEvents })
            : t('events', { count: data.events })}
        </span>
        <span>{stale ? t('stale') : t('updated', { time: formatTime(data.loadedAt, locale) })}</span>
      </div>
    </>
  )
}

const formatTime = (t: number, locale?: string) =>
  new Date(t).toLocaleTimeString(locale, { hour: 'numeric', minute: '2-digit', second: '2-digit' })

const TIER_KINDS = new Set(['TOKEN_TIERS', 'AMOUNT_TIERS'])

/**
 * The period's invoice so far, live: each token allowance's tokens left (a progress bar when the
 * plan is visible), the current tier of each tiered rule, then usage and fees, credits applied and
 * the total due.
 */
function InvoiceCard({ invoice, locale }: { invoice: InvoicePreview; locale?: string }) {
  const t = useT()
  const money = (v: string) => formatMoney(v, invoice.currency, locale)
  const rules = invoice.plan?.rules ?? []
  const usedBy = (ruleId: string) =>
    addDecimals(invoice.lines.filter((l) => l.ruleId === ruleId && l.quantity !== null).map((l) => l.quantity!))
  // Allowances: the plan's (used or not) when visible, else those the invoice has lines for.
  const allowances = rules.length
    ? rules
        .filter((r) => r.type === 'TOKEN_ALLOWANCE')
        .map((r) => ({ id: r.id, usageType: r.usageType, included: r.quantity, used: usedBy(r.id) }))
    : [...new Set(invoice.lines.filter((l) => l.kind === 'TOKEN_ALLOWANCE').map((l) => l.ruleId ?? ''))].map((id) => ({
        id,
        usageType: invoice.lines.find((l) => l.ruleId === id)?.usageType ?? null,
        included: null as string | null,
        used: usedBy(id),
      }))
  const tiers = new Map<string, number>()
  for (const l of invoice.lines)
    if (TIER_KINDS.has(l.kind) && l.tier !== null && l.ruleId !== null)
      tiers.set(l.ruleId, Math.max(tiers.get(l.ruleId) ?? 0, l.tier))
  const usage = (u: string | null) => (u && u !== '*' ? usageTypeLabel(u, t) : t('colUsage'))
  const credited = compareDecimals(invoice.creditsApplied, '0') > 0
  return (
    <section className="card invoice" aria-labelledby="br-invoice" data-testid="invoice">
      <h3 id="br-invoice">{t('invoiceTitle')}</h3>
      {allowances.map((a) => {
        const left =
          a.included === null ? null : compareDecimals(a.used, a.included) >= 0 ? '0' : subtract(a.included, a.used)
        const text =
          a.included === null || left === null
            ? t('allowanceUsed', { usage: usage(a.usageType), used: formatNumber(a.used, locale) })
            : t('allowanceLeft', {
                usage: usage(a.usageType),
                left: formatNumber(left, locale),
                included: formatNumber(a.included, locale),
              })
        const share = a.included === null ? null : Math.min(1, ratio(a.used, a.included))
        return (
          <div key={a.id} className="allowance" data-testid="allowance">
            <span className="of">{t('allowance')}</span>
            <span data-testid="allowance-left">{text}</span>
            {share !== null && (
              <div
                className="abar"
                role="progressbar"
                aria-label={t('allowanceLabel')}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={Math.round(share * 100)}
                aria-valuetext={text}
              >
                <div className="afill" style={{ width: `${share * 100}%` }} />
              </div>
            )}
          </div>
        )
      })}
      <dl className="stats">
        {[...tiers].map(([ruleId, tier]) => {
          const count = rules.find((r) => r.id === ruleId)?.tiers?.length
          return (
            <div key={ruleId} data-testid="tier">
              <dt>{t('tier')}</dt>
              <dd>{count ? t('tierOf', { tier, tiers: count }) : t('tierOnly', { tier })}</dd>
            </div>
          )
        })}
        <div>
          <dt>{t('invoiceSubtotal')}</dt>
          <dd data-testid="invoice-subtotal">{money(invoice.subtotal)}</dd>
        </div>
        {credited && (
          <div>
            <dt>{t('invoiceCredits')}</dt>
            <dd data-testid="invoice-credits">−{money(invoice.creditsApplied)}</dd>
          </div>
        )}
        <div>
          <dt>{t('invoiceTotal')}</dt>
          <dd data-testid="invoice-total">{money(invoice.total)}</dd>
        </div>
      </dl>
      <p className="ends">{t('invoiceBy', { date: formatDay(invoice.periodEnd, locale) })}</p>
    </section>
  )
}

/** a − b for decimal strings (exact, through the widget's fixed-point units). */
const subtract = (a: string, b: string) => fromUnits(toUnits(a) - toUnits(b))

/** Prepaid credits: what is left (less reservations), and the tenant's top-up link. */
function CreditCard({ credits, money }: { credits: Credits; money: (v: string) => string }) {
  const t = useT()
  const empty = compareDecimals(credits.available, '0') <= 0
  return (
    <div className="card" data-testid="credits">
      <div>
        <span className="of">{t('credits')}</span>{' '}
        <span className="big" data-testid="credits-left" data-level={empty ? 'over' : undefined}>
          {t('creditsLeft', { amount: money(credits.available) })}
        </span>
        {credits.topUpUrl && (
          <>
            {' '}
            <a href={credits.topUpUrl} target="_blank" rel="noopener noreferrer" data-testid="top-up">
              {t('topUp')}
            </a>
          </>
        )}
      </div>
      {empty && <p className="hint">{t('creditsRunOut')}</p>}
    </div>
  )
}

function BudgetCard({ data, money, locale }: { data: SpendData; money: (v: string) => string; locale?: string }) {
  const t = useT()
  const b = data.budget
  if (!b) {
    return (
      <div className="card">
        <div>
          <span className="big" data-testid="spent">
            {money(data.amount)}
          </span>
          <span className="of">{t('spentNoBudget')}</span>
        </div>
      </div>
    )
  }
  const used = ratio(b.spent, b.limit)
  const level = levelOf(b.spent, b.limit, b.thresholds)
  const forecastLevel = compareDecimals(b.forecast, b.limit) > 0 ? 'over' : undefined
  const left = remainingOf(b.spent, b.limit)
  return (
    <div className="card">
      <div>
        <span className="big" data-testid="spent">
          {money(b.spent)}
        </span>
        <span className="of">{t('ofBudget', { limit: money(b.limit) })}</span>
      </div>
      <div
        className="bar"
        data-level={level}
        role="progressbar"
        aria-label={t('budgetUsed')}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(used * 100)}
        aria-valuetext={t('budgetUsedText', {
          percent: formatPercent(used, locale),
          spent: money(b.spent),
          limit: money(b.limit),
        })}
      >
        <div className="fill" style={{ width: `${Math.min(used, 1) * 100}%` }} />
        {b.thresholds
          .filter((th) => th > 0 && th <= 100)
          .map((th) => (
            <div
              key={th}
              className="tick"
              style={{ left: `${th}%` }}
              data-edge={th >= 90 ? 'end' : th <= 10 ? 'start' : undefined}
              data-crossed={used * 100 >= th ? '' : undefined}
              aria-hidden="true"
            >
              <span>{formatPercent(th / 100, locale)}</span>
            </div>
          ))}
      </div>
      <dl className="stats">
        <div>
          <dt>{t('used')}</dt>
          <dd data-level={level === 'ok' ? undefined : level}>{formatPercent(used, locale)}</dd>
        </div>
        {left.over ? (
          <div>
            <dt>{t('overBy')}</dt>
            <dd data-testid="over-by" data-level="over">
              {money(left.amount)}
            </dd>
          </div>
        ) : (
          <div>
            <dt>{t('remaining')}</dt>
            <dd data-testid="remaining">{money(b.remaining)}</dd>
          </div>
        )}
        <div>
          <dt>{t('forecast')}</dt>
          <dd data-testid="forecast" data-level={forecastLevel}>
            {money(b.forecast)}
          </dd>
        </div>
        <div>
          <dt>{t('resets')}</dt>
          <dd>{formatDateTime(b.periodEnd, locale)}</dd>
        </div>
      </dl>
    </div>
  )
}

/** The width of an element, followed as it changes (a phone turned, a resized column). */
function useWidth<T extends HTMLElement>(): [RefObject<T>, number] {
  const ref = useRef<T>(null)
  const [width, setWidth] = useState(0)
  useLayoutEffect(() => {
    const el = ref.current
    if (!el) return
    setWidth(el.clientWidth)
    if (typeof ResizeObserver === 'undefined') return
    const observer = new ResizeObserver(() => setWidth(el.clientWidth))
    observer.observe(el)
    return () => observer.disconnect()
  }, [])
  return [ref, width]
}

function DayChart({
  days: daily,
  money,
  locale,
  selected,
  onPick,
}: {
  days: DayBar[]
  money: (v: string) => string
  locale?: string
  selected: string | null
  onPick(d: DayBar, label: string, from: HTMLElement): void
}) {
  const t = useT()
  const [plot, width] = useWidth<HTMLDivElement>()
  // Too narrow for a 24 px bar a day (a phone, a month): a bar holds several days.
  const days = useMemo(() => groupDays(daily, daysPerBar(daily.length, width)), [daily, width])
  const [focused, setFocused] = useState<DayBar | null>(null)
  const max = niceMax(Math.max(0, ...days.map((d) => Number(d.amount))))
  const share = 100 / Math.max(days.length, 1)
  const peak = days.reduce<DayBar | null>((p, d) => (!p || compareDecimals(d.amount, p.amount) > 0 ? d : p), null)
  const label = (d: DayBar) =>
    d.days > 1
      ? `${formatDay(d.day, locale)} – ${formatDay(new Date(Date.parse(d.day) + (d.days - 1) * DAY_MS).toISOString(), locale)}`
      : formatDay(d.day, locale)
  const shown = focused ?? days.find((d) => d.day === selected) ?? null
  return (
    <>
      <div className="plot" ref={plot}>
        <svg
          viewBox="0 0 100 60"
          preserveAspectRatio="none"
          role="img"
          aria-labelledby="br-days"
          aria-describedby="br-days-desc"
        >
          <line x1="0" x2="100" y1="60" y2="60" vectorEffect="non-scaling-stroke" />
          {days.map((d, i) => {
            const h = (Number(d.amount) / max) * 58
            return h > 0 ? (
              <rect
                key={d.day}
                className="b"
                data-sel={selected === d.day ? '' : undefined}
                x={i * share + share * 0.15}
                y={60 - Math.max(h, 0.8)}
                width={share * 0.7}
                height={Math.max(h, 0.8)}
                rx="0.6"
              />
            ) : null
          })}
        </svg>
        {/* Real buttons over the bars: pointer, keyboard and screen readers pick a day the same way. */}
        <div className="hits">
          {days.map((d, i) =>
            d.events ? (
              <button
                key={d.day}
                type="button"
                style={{ left: `${i * share}%`, width: `${share}%` }}
                aria-pressed={selected === d.day}
                aria-label={t('dayLabel', {
                  day: label(d),
                  amount: money(d.amount),
                  events: t('events', { count: d.events }),
                })}
                onFocus={() => setFocused(d)}
                onBlur={() => setFocused(null)}
                onMouseEnter={() => setFocused(d)}
                onMouseLeave={() => setFocused(null)}
                onClick={(e) => onPick(d, label(d), e.currentTarget)}
              />
            ) : null,
          )}
        </div>
      </div>
      {/* The focused or hovered bar's figures, on screen (not only for screen readers). */}
      <div className="axis" aria-hidden="true">
        {shown ? (
          <span className="pick" data-testid="bar-value">
            {label(shown)}: {money(shown.amount)} · {t('events', { count: shown.events })}
          </span>
        ) : (
          <>
            <span>{days[0] && label(days[0])}</span>
            <span>{t('axisMax', { amount: money(String(max)) })}</span>
            <span>{days.at(-1) && label(days.at(-1)!)}</span>
          </>
        )}
      </div>
      <p id="br-days-desc" className="sr">
        {peak && Number(peak.amount) > 0 ? `${t('highestDay', { day: label(peak), amount: money(peak.amount) })} ` : ''}
        {days
          .filter((d) => d.events)
          .map((d) => `${label(d)} ${money(d.amount)}`)
          .join('; ')}
      </p>
    </>
  )
}

function Breakdown({
  title,
  rows,
  money,
  locale,
  selected,
  onPick,
}: {
  title: string
  rows: Ranked[]
  money: (v: string) => string
  locale?: string
  selected?: string | null
  onPick?(r: Ranked, from: HTMLElement): void
}) {
  const t = useT()
  return (
    <div className="card">
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <p className="muted">{t('nothingYet')}</p>
      ) : (
        <ul className="rows" aria-label={title}>
          {rows.map((r) => {
            const inner = (
              <>
                <span className="n" title={r.label}>
                  {r.label}
                </span>
                <span className="a">{money(r.amount)}</span>
                <span className="m" aria-hidden="true">
                  <i style={{ width: `${Math.min(Math.max(r.share, 0), 1) * 100}%` }} />
                </span>
              </>
            )
            // The accessible name starts with the visible words (WCAG 2.5.3); the rest is for screen readers.
            const more = t('rowMore', {
              percent: formatPercent(r.share, locale),
              events: t('events', { count: r.events }),
            })
            return (
              <li key={r.label}>
                {onPick && !r.other ? (
                  <button
                    type="button"
                    className="row"
                    aria-pressed={selected === r.key}
                    onClick={(e) => onPick(r, e.currentTarget)}
                  >
                    {inner}
                    <span className="sr">
                      {more}. {t('explainThis')}
                    </span>
                  </button>
                ) : (
                  <div className="row" role="group">
                    {inner}
                    <span className="sr">{more}</span>
                  </div>
                )}
              </li>
            )
          })}
        </ul>
      )}
    </div>
  )
}

function Alerts({
  alerts,
  fresh,
  locale,
  currency,
}: {
  alerts: BudgetAlert[]
  fresh: Set<string>
  locale?: string
  currency: string
}) {
  const t = useT()
  return (
    <div className="card alerts" style={{ marginTop: 12, marginBottom: 0 }}>
      <h3 id="br-alerts">{t('alertsTitle')}</h3>
      {alerts.length === 0 ? (
        <p className="muted">{t('noAlerts')}</p>
      ) : (
        <ul aria-labelledby="br-alerts">
          {alerts.map((a) => (
            <li key={a.id} data-new={fresh.has(a.id) ? '' : undefined} data-testid="alert">
              <span
                className="dot"
                data-level={a.threshold >= 100 && a.kind !== 'FORECAST' ? 'over' : undefined}
                aria-hidden="true"
              />
              <div>
                <div>{alertText(a, currency, locale, t)}</div>
                <div className="sub">
                  <time dateTime={a.triggeredAt}>{formatDateTime(a.triggeredAt, locale)}</time>
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}

// details: the session may show unit prices and the plan (createWidgetSession priceDetails).
type ExplainState =
  | { kind: 'loading' }
  | { kind: 'error' }
  | { kind: 'ready'; events: UsageEvent[]; next: string | null; details: boolean; more: 'idle' | 'loading' | 'error' }

function Explain({
  data,
  selection,
  client,
  locale,
  money: rounded,
  onClose,
}: {
  data: SpendData
  selection: Selection
  client: WidgetClient
  locale?: string
  money: (v: string) => string
  onClose(): void
}) {
  const t = useT()
  const [state, setState] = useState<ExplainState>({ kind: 'loading' })
  const money = (v: string) => formatMoney(v, data.currency, locale, true)
  const heading = useRef<HTMLHeadingElement>(null)
  const request = useMemo(() => {
    const day = selection.kind === 'day' ? Date.parse(selection.day) : 0
    return {
      c: data.customerId,
      from: selection.kind === 'day' ? new Date(Math.max(day, Date.parse(data.from))).toISOString() : data.from,
      to:
        selection.kind === 'day'
          ? new Date(Math.min(day + selection.days * DAY_MS, Date.parse(data.to))).toISOString()
          : data.to,
      model: selection.kind === 'model' ? selection.model : null,
      first: SHOWN,
    }
  }, [data.customerId, data.from, data.to, selection])
  const page = useCallback(
    (after: string | null) =>
      client
        .priceDetails()
        .then((details) =>
          client.request<EventsResult>(EVENTS, { ...request, after, details }).then((r) => ({ r, details })),
        ),
    [client, request],
  )
  useEffect(() => {
    let cancelled = false
    setState({ kind: 'loading' })
    page(null).then(
      ({ r, details }) => {
        if (cancelled) return
        const { edges, pageInfo } = r.usageEvents
        setState({
          kind: 'ready',
          events: edges.map((e) => e.node),
          next: pageInfo.hasNextPage ? pageInfo.endCursor : null,
          details,
          more: 'idle',
        })
      },
      (e: unknown) => {
        if (cancelled) return
        console.warn('Burnrate widget: the events could not be loaded', e)
        setState({ kind: 'error' })
      },
    )
    heading.current?.focus()
    return () => {
      cancelled = true
    }
  }, [page])
  const showMore = () => {
    if (state.kind !== 'ready' || !state.next) return
    setState({ ...state, more: 'loading' })
    page(state.next).then(
      ({ r }) =>
        setState((s) =>
          s.kind === 'ready'
            ? {
                ...s,
                events: [...s.events, ...r.usageEvents.edges.map((e) => e.node)],
                next: r.usageEvents.pageInfo.hasNextPage ? r.usageEvents.pageInfo.endCursor : null,
                more: 'idle',
              }
            : s,
        ),
      (e: unknown) => {
        console.warn('Burnrate widget: more events could not be loaded', e)
        setState((s) => (s.kind === 'ready' ? { ...s, more: 'error' } : s))
      },
    )
  }

  const label =
    selection.kind === 'day'
      ? t('chargesOnDay', { label: selection.label })
      : t('chargesForModel', { label: selection.label })
  return (
    <div
      className="explain"
      role="region"
      aria-labelledby="br-explain"
      data-testid="explain"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.stopPropagation()
          onClose()
        }
      }}
    >
      <div className="hd">
        <h3 id="br-explain" ref={heading} tabIndex={-1} style={{ margin: 0 }}>
          {label}
        </h3>
        <button type="button" className="link" onClick={onClose} aria-label={t('closeLabel')}>
          {t('close')}
        </button>
      </div>
      {state.kind === 'loading' && (
        <p className="muted" role="status">
          {t('loadingEvents')}
        </p>
      )}
      {state.kind === 'error' && <p role="alert">{t('eventsError')}</p>}
      {state.kind === 'ready' && state.events.length === 0 && <p className="muted">{t('noEvents')}</p>}
      <p className="sub" style={{ marginBottom: 8 }}>
        {t('eventsBilled', { events: t('events', { count: selection.events }), amount: rounded(selection.amount) })}
        {state.kind === 'ready' && state.next
          ? ` · ${t('shownOf', { shown: formatNumber(state.events.length, locale) })}`
          : ''}
      </p>
      <div className="list" tabIndex={0} role="group" aria-label={t('listLabel', { label })}>
        {state.kind === 'ready' &&
          state.events.map((e) => (
            <div className="ev" key={e.id}>
              <div className="ev-h">
                <span>
                  <strong>{e.canonicalModel ?? e.model}</strong>
                  {e.feature ? <span className="muted"> · {e.feature}</span> : null}
                  <span className="muted"> · {formatDateTime(e.timestamp, locale)}</span>
                </span>
                <strong>{e.amount === null ? t('notPriced') : money(e.amount)}</strong>
              </div>
              {e.lines.length > 0 && (
                <table>
                  <caption className="sr">
                    {t('linesOf', { id: e.id })}
                    {state.details ? `, ${planLabel(e.pricingPlan ?? null, locale, t)}` : ''}
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">{t('colUsage')}</th>
                      <th scope="col">{t('colQuantity')}</th>
                      {state.details && <th scope="col">{t('colUnitPrice')}</th>}
                      <th scope="col">{t('colBilled')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {e.lines.map((l) => (
                      <tr key={l.usageType}>
                        <td>{usageTypeLabel(l.usageType, t)}</td>
                        <td>{formatNumber(l.quantity, locale)}</td>
                        {state.details && (
                          <td className="u">
                            {formatUnitPrice(l.unitPrice ?? '0', l.usageType, e.currency, locale, t)}
                          </td>
                        )}
                        <td>{money(l.amount)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {state.details && (
                <div className="sub">{t('providerRates', { plan: planLabel(e.pricingPlan ?? null, locale, t) })}</div>
              )}
            </div>
          ))}
        {state.kind === 'ready' && state.next && (
          <button
            type="button"
            className="btn more"
            onClick={showMore}
            disabled={state.more === 'loading'}
            data-testid="show-more"
          >
            {state.more === 'loading' ? t('loadingEvents') : t('more')}
          </button>
        )}
        {state.kind === 'ready' && state.more === 'error' && <p role="alert">{t('eventsError')}</p>}
      </div>
    </div>
  )
}
