import { Fragment, useEffect, useRef, useState } from 'react'
import { Link } from 'wouter'
import { BarChart } from '../charts.tsx'
import { dateTime, day, marginPercent, money, num, percent, perMillion, sub } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery, useSubscription } from '../hooks.ts'
import { useRange } from '../range.tsx'
import { ActionButton, Async, Badge, ErrorBox, MutationError, PageHeader, Section, Stat } from '../ui.tsx'

const Customer = graphql(`
  query CustomerPage($id: String!) {
    tenant {
      currency
    }
    customer(id: $id) {
      id
      name
      stripeCustomerId
      createdAt
    }
    pricingPlan(customerId: $id) {
      kind
      percent
      customerId
      effectiveFrom
    }
  }
`)
const Explore = graphql(`
  query CustomerExplore($id: String!, $from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]) {
    total: usageSummary(customerId: $id, from: $from, to: $to) {
      amount
      cost
      events
      unpricedEvents
      currency
    }
    usageSummary(customerId: $id, from: $from, to: $to, groupBy: $groupBy) {
      groups {
        model
        provider
        feature
        bucketStart
        amount
        cost
        events
      }
    }
  }
`)
const Events = graphql(`
  query CustomerEvents($id: String!, $from: DateTime, $to: DateTime, $model: String, $feature: String, $after: String) {
    usageEvents(customerId: $id, from: $from, to: $to, model: $model, feature: $feature, first: 20, after: $after) {
      edges {
        node {
          id
          timestamp
          provider
          model
          feature
          inputTokens
          outputTokens
          amount
          cost
          currency
          status
          pricingPlan
          unpricedReason {
            code
            message
          }
          lines {
            usageType
            quantity
            unitPrice
            cost
            amount
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)
const Budgets = graphql(`
  query CustomerBudgets($id: String!) {
    budgets(customerId: $id) {
      id
      period
      limit
      spent
      remaining
      forecast
      reserved
      thresholds
      hardLimit
      forecastAlerts
      currency
      periodStart
      periodEnd
      timeZone
    }
    budgetAlerts(customerId: $id, first: 20) {
      id
      kind
      threshold
      spent
      limit
      forecast
      triggeredAt
    }
  }
`)
const SetBudget = graphql(`
  mutation SetBudget($input: BudgetInput!) {
    setBudget(input: $input) {
      id
    }
  }
`)
const DeleteBudget = graphql(`
  mutation DeleteBudget($id: ID!) {
    deleteBudget(id: $id)
  }
`)
const SetPlan = graphql(`
  mutation SetPlan($input: PricingPlanInput!) {
    setPricingPlan(input: $input) {
      kind
      percent
    }
  }
`)
const AlertsLive = graphql(`
  subscription CustomerAlerts($id: String) {
    budgetAlerts(customerId: $id) {
      id
      kind
      threshold
      spent
      limit
      triggeredAt
    }
  }
`)
const UsageLive = graphql(`
  subscription CustomerUsage($id: String) {
    usageUpdates(customerId: $id) {
      customerId
    }
  }
`)
const WidgetSession = graphql(`
  mutation PreviewSession($id: String!) {
    createWidgetSession(customerId: $id, ttlSeconds: 900) {
      token
      customerId
      expiresAt
    }
  }
`)

/** The standalone <burnrate-spend> build of packages/widget, served beside the console. */
const WIDGET_BUNDLE: string = '/console/widget/burnrate-spend.js'

type Dim = 'MODEL' | 'FEATURE' | 'DAY'

export default function CustomerPage({ id }: { id: string }) {
  const q = useQuery(Customer, { id })
  return (
    <>
      <PageHeader title={`Customer ${id}`}>
        <Link href="/customers">All customers</Link>
      </PageHeader>
      <Async state={q}>
        {(d) =>
          d.customer ? (
            <>
              <div className="stats">
                <Stat label="Name" value={d.customer.name ?? '—'} />
                <Stat
                  label="Stripe"
                  testId="stripe-link"
                  value={
                    d.customer.stripeCustomerId ? (
                      <Badge tone="ok">linked</Badge>
                    ) : (
                      <Badge tone="warn">not linked</Badge>
                    )
                  }
                  hint={d.customer.stripeCustomerId ?? 'usage is not pushed to Stripe'}
                />
                <Stat label="Customer since" value={dateTime(d.customer.createdAt)} />
              </div>
              <Explorer id={id} currency={d.tenant.currency} />
              <div className="grid2">
                <BudgetPanel id={id} />
                <PlanPanel id={id} plan={d.pricingPlan} onChange={() => void q.refetch()} />
              </div>
              <WidgetPreview id={id} />
            </>
          ) : (
            <p className="state empty">No customer with id {id}.</p>
          )
        }
      </Async>
    </>
  )
}

function Explorer({ id, currency }: { id: string; currency: string }) {
  const range = useRange('month')
  const [dim, setDim] = useState<Dim>('MODEL')
  const [drill, setDrill] = useState<{
    label: string
    model?: string
    feature?: string
    from?: string
    to?: string
  } | null>(null)
  const q = useQuery(Explore, { id, from: range.from, to: range.to, groupBy: [dim] })
  useSubscription(UsageLive, { id }, () => void q.refetch())
  return (
    <Section
      title="Usage explorer"
      actions={
        <>
          {range.picker}
          <label className="row">
            <span>Group by</span>
            <select
              value={dim}
              onChange={(e) => {
                setDim(e.target.value as Dim)
                setDrill(null)
              }}
            >
              <option value="MODEL">Model</option>
              <option value="FEATURE">Feature</option>
              <option value="DAY">Day</option>
            </select>
          </label>
        </>
      }
    >
      <Async state={q}>
        {(d) => {
          const cur = d.total.currency || currency
          const groups = [...d.usageSummary.groups].sort((a, b) =>
            dim === 'DAY'
              ? (a.bucketStart ?? '').localeCompare(b.bucketStart ?? '')
              : Number(b.amount) - Number(a.amount),
          )
          const label = (g: (typeof groups)[number]) =>
            dim === 'MODEL' ? (g.model ?? '—') : dim === 'FEATURE' ? (g.feature ?? '(no feature)') : day(g.bucketStart!)
          const mp = marginPercent(d.total.amount, d.total.cost)
          return (
            <>
              <div className="stats">
                <Stat label="Billed" value={money(d.total.amount, cur)} testId="customer-billed" />
                <Stat label="Cost" value={money(d.total.cost, cur)} testId="customer-cost" />
                <Stat
                  label="Margin"
                  value={money(sub(d.total.amount, d.total.cost), cur)}
                  hint={mp ? percent(mp) : undefined}
                />
                <Stat label="Events" value={num(d.total.events)} hint={`${num(d.total.unpricedEvents)} unpriced`} />
              </div>
              {dim === 'DAY' && groups.length ? (
                <BarChart
                  title={`Billed per UTC day (${cur})`}
                  yLabel={`Billed (${cur})`}
                  xLabel="Day (UTC)"
                  formatTick={(v) => money(String(v), cur)}
                  data={groups.map((g) => ({
                    label: label(g),
                    value: Number(g.amount),
                    display: money(g.amount, cur),
                  }))}
                />
              ) : null}
              {groups.length ? (
                <div className="table-wrap">
                  <table data-testid="explorer">
                    <thead>
                      <tr>
                        <th scope="col">{dim === 'MODEL' ? 'Model' : dim === 'FEATURE' ? 'Feature' : 'Day'}</th>
                        <th scope="col" className="num">
                          Events
                        </th>
                        <th scope="col" className="num">
                          Cost
                        </th>
                        <th scope="col" className="num">
                          Billed
                        </th>
                        <th scope="col">Events</th>
                      </tr>
                    </thead>
                    <tbody>
                      {groups.map((g) => (
                        <tr key={label(g)}>
                          <td>{label(g)}</td>
                          <td className="num">{num(g.events)}</td>
                          <td className="num">{money(g.cost, cur)}</td>
                          <td className="num">{money(g.amount, cur)}</td>
                          <td>
                            <button
                              type="button"
                              className="ghost"
                              onClick={() =>
                                setDrill(
                                  dim === 'MODEL'
                                    ? { label: label(g), model: g.model ?? undefined, from: range.from, to: range.to }
                                    : dim === 'FEATURE'
                                      ? {
                                          label: label(g),
                                          feature: g.feature ?? undefined,
                                          from: range.from,
                                          to: range.to,
                                        }
                                      : {
                                          label: label(g),
                                          from: g.bucketStart!,
                                          to: new Date(new Date(g.bucketStart!).getTime() + 86_400_000).toISOString(),
                                        },
                                )
                              }
                            >
                              Show events<span className="sr-only"> of {label(g)}</span>
                            </button>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              ) : (
                <p className="state empty">No usage in this range.</p>
              )}
            </>
          )
        }}
      </Async>
      {drill ? <EventList id={id} filter={drill} currency={currency} /> : null}
    </Section>
  )
}

function EventList({
  id,
  filter,
  currency,
}: {
  id: string
  filter: { label: string; model?: string; feature?: string; from?: string; to?: string }
  currency: string
}) {
  const [after, setAfter] = useState<string[]>([])
  const [open, setOpen] = useState<string | null>(null)
  const q = useQuery(Events, {
    id,
    from: filter.from ?? null,
    to: filter.to ?? null,
    model: filter.model ?? null,
    feature: filter.feature ?? null,
    after: after[after.length - 1] ?? null,
  })
  return (
    <div>
      <h3>Events: {filter.label}</h3>
      <Async state={q} isEmpty={(d) => d.usageEvents.edges.length === 0} empty="No events.">
        {(d) => (
          <>
            <div className="table-wrap">
              <table data-testid="events">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Model</th>
                    <th scope="col">Feature</th>
                    <th scope="col" className="num">
                      Tokens in / out
                    </th>
                    <th scope="col" className="num">
                      Billed
                    </th>
                    <th scope="col">Explain</th>
                  </tr>
                </thead>
                <tbody>
                  {d.usageEvents.edges.map(({ node: e }) => (
                    <Fragment key={e.id}>
                      <tr>
                        <td>{dateTime(e.timestamp)}</td>
                        <td>{e.model}</td>
                        <td>{e.feature ?? '—'}</td>
                        <td className="num">
                          {num(e.inputTokens)} / {num(e.outputTokens)}
                        </td>
                        <td className="num">
                          {e.status === 'UNPRICED' ? (
                            <Badge tone="warn">UNPRICED</Badge>
                          ) : (
                            money(e.amount, e.currency || currency, true)
                          )}
                        </td>
                        <td>
                          <button
                            type="button"
                            className="ghost"
                            aria-expanded={open === e.id}
                            onClick={() => setOpen(open === e.id ? null : e.id)}
                          >
                            Explain this charge
                          </button>
                        </td>
                      </tr>
                      {open === e.id ? (
                        <tr className="sub">
                          <td colSpan={6} data-testid="explain">
                            {e.status === 'UNPRICED' ? (
                              <p>
                                Not billed: {e.unpricedReason?.message ?? 'no price was in force'} (
                                <code>{e.unpricedReason?.code ?? 'UNPRICED'}</code>).
                              </p>
                            ) : (
                              <table>
                                <caption className="sr-only">Charge lines of event {e.id}</caption>
                                <thead>
                                  <tr>
                                    <th scope="col">Usage type</th>
                                    <th scope="col" className="num">
                                      Quantity
                                    </th>
                                    <th scope="col" className="num">
                                      Unit price (per 1M)
                                    </th>
                                    <th scope="col" className="num">
                                      Cost
                                    </th>
                                    <th scope="col" className="num">
                                      Billed
                                    </th>
                                  </tr>
                                </thead>
                                <tbody>
                                  {e.lines.map((l) => (
                                    <tr key={l.usageType}>
                                      <td>{l.usageType}</td>
                                      <td className="num">{num(l.quantity, 6)}</td>
                                      <td className="num">{perMillion(l.unitPrice, e.currency)}</td>
                                      <td className="num">{money(l.cost, e.currency, true)}</td>
                                      <td className="num">{money(l.amount, e.currency, true)}</td>
                                    </tr>
                                  ))}
                                </tbody>
                                <tfoot>
                                  <tr>
                                    <td colSpan={3}>{e.pricingPlan ? `Plan: ${e.pricingPlan}` : 'Billed at cost'}</td>
                                    <td className="num">{money(e.cost, e.currency, true)}</td>
                                    <td className="num">{money(e.amount, e.currency, true)}</td>
                                  </tr>
                                </tfoot>
                              </table>
                            )}
                          </td>
                        </tr>
                      ) : null}
                    </Fragment>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="row">
              <button
                type="button"
                className="ghost"
                disabled={!after.length}
                onClick={() => setAfter(after.slice(0, -1))}
              >
                Newer
              </button>
              <button
                type="button"
                className="ghost"
                disabled={!d.usageEvents.pageInfo.hasNextPage}
                onClick={() => setAfter([...after, d.usageEvents.pageInfo.endCursor!])}
              >
                Older
              </button>
            </div>
          </>
        )}
      </Async>
    </div>
  )
}

function BudgetPanel({ id }: { id: string }) {
  const q = useQuery(Budgets, { id })
  const can = useCanChange()
  const [live, setLive] = useState<string[]>([])
  useSubscription(AlertsLive, { id }, (d) => {
    setLive((l) => [d.budgetAlerts.id, ...l])
    void q.refetch()
  })
  const [editing, setEditing] = useState<null | {
    period: string
    limit: string
    thresholds: string
    hardLimit: boolean
  }>(null)
  const save = useMutation(SetBudget, {
    onDone: () => {
      setEditing(null)
      void q.refetch()
    },
  })
  const remove = useMutation(DeleteBudget, { onDone: q.refetch })
  return (
    <Section
      title="Budgets and alerts"
      actions={
        can && !editing ? (
          <button
            type="button"
            onClick={() => setEditing({ period: 'MONTH', limit: '', thresholds: '50, 80, 100', hardLimit: false })}
          >
            New budget
          </button>
        ) : null
      }
    >
      {editing ? (
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault()
            void save.run({
              input: {
                customerId: id,
                period: editing.period as 'MONTH',
                limit: editing.limit.trim(),
                thresholds: editing.thresholds
                  .split(',')
                  .map((s) => s.trim())
                  .filter(Boolean)
                  .map(Number),
                hardLimit: editing.hardLimit,
              },
            })
          }}
        >
          <div className="field">
            <label htmlFor="b-period">Period</label>
            <select
              id="b-period"
              value={editing.period}
              onChange={(e) => setEditing({ ...editing, period: e.target.value })}
            >
              {['DAY', 'WEEK', 'MONTH'].map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="b-limit">Limit</label>
            <input
              id="b-limit"
              inputMode="decimal"
              required
              value={editing.limit}
              onChange={(e) => setEditing({ ...editing, limit: e.target.value })}
            />
          </div>
          <div className="field">
            <label htmlFor="b-thresholds">Alert at (% of limit)</label>
            <input
              id="b-thresholds"
              value={editing.thresholds}
              onChange={(e) => setEditing({ ...editing, thresholds: e.target.value })}
            />
          </div>
          <div className="field">
            <label>
              <input
                type="checkbox"
                checked={editing.hardLimit}
                onChange={(e) => setEditing({ ...editing, hardLimit: e.target.checked })}
              />{' '}
              Hard limit
            </label>
          </div>
          <div className="row">
            <button type="submit" disabled={save.pending}>
              Save budget
            </button>
            <button type="button" className="ghost" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
          <div style={{ gridColumn: '1 / -1' }}>
            <MutationError error={save.error} />
          </div>
        </form>
      ) : null}
      <Async state={q}>
        {(d) => (
          <>
            {d.budgets.length ? (
              <table data-testid="budgets">
                <thead>
                  <tr>
                    <th scope="col">Period</th>
                    <th scope="col" className="num">
                      Spent
                    </th>
                    <th scope="col" className="num">
                      Limit
                    </th>
                    <th scope="col" className="num">
                      Forecast
                    </th>
                    <th scope="col">Alerts at</th>
                    {can ? <th scope="col">Action</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {d.budgets.map((b) => (
                    <tr key={b.id}>
                      <td>
                        {b.period} {b.hardLimit ? <Badge tone="warn">hard</Badge> : null}
                      </td>
                      <td className="num">{money(b.spent, b.currency)}</td>
                      <td className="num">{money(b.limit, b.currency)}</td>
                      <td className="num">{money(b.forecast, b.currency)}</td>
                      <td>{b.thresholds.map((t) => `${t}%`).join(', ')}</td>
                      {can ? (
                        <td className="row">
                          <button
                            type="button"
                            className="ghost"
                            onClick={() =>
                              setEditing({
                                period: b.period,
                                limit: b.limit,
                                thresholds: b.thresholds.join(', '),
                                hardLimit: b.hardLimit,
                              })
                            }
                          >
                            Edit<span className="sr-only"> the {b.period} budget</span>
                          </button>
                          <ActionButton
                            action={remove}
                            variables={{ id: b.id }}
                            confirm={`Delete the ${b.period} budget, its spend and its alerts?`}
                            className="ghost danger"
                          >
                            Delete<span className="sr-only"> the {b.period} budget</span>
                          </ActionButton>
                        </td>
                      ) : null}
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="state empty">No budgets for this customer.</p>
            )}
            <MutationError error={remove.error} />
            <h3>Alerts</h3>
            {d.budgetAlerts.length ? (
              <ul data-testid="alerts" aria-live="polite">
                {d.budgetAlerts.map((a) => (
                  <li key={a.id}>
                    {live.includes(a.id) ? <Badge tone="ok">new</Badge> : null}{' '}
                    {a.kind === 'FORECAST' ? 'Forecast' : `${a.threshold}%`} reached: {money(a.spent)} of{' '}
                    {money(a.limit)} — {dateTime(a.triggeredAt)}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="state empty" aria-live="polite">
                No alerts yet.
              </p>
            )}
          </>
        )}
      </Async>
    </Section>
  )
}

function PlanPanel({
  id,
  plan,
  onChange,
}: {
  id: string
  plan: { kind: string; percent: string; customerId: string | null; effectiveFrom: string | null }
  onChange: () => void
}) {
  const can = useCanChange()
  const set = useMutation(SetPlan, { onDone: onChange })
  const [v, setV] = useState({ kind: plan.kind, percent: plan.percent })
  return (
    <Section title="Pricing plan">
      <p data-testid="plan">
        <strong>
          {plan.kind} {percent(plan.percent, 4)}
        </strong>{' '}
        {plan.customerId ? `since ${dateTime(plan.effectiveFrom)}` : '(the tenant default)'}
      </p>
      {can ? (
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault()
            void set.run({ input: { customerId: id, kind: v.kind as 'MARKUP', percent: v.percent } })
          }}
        >
          <div className="field">
            <label htmlFor="p-kind">Kind</label>
            <select id="p-kind" value={v.kind} onChange={(e) => setV({ ...v, kind: e.target.value })}>
              <option>MARKUP</option>
              <option>MARGIN</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="p-percent">Percent</label>
            <input
              id="p-percent"
              inputMode="decimal"
              value={v.percent}
              onChange={(e) => setV({ ...v, percent: e.target.value })}
            />
          </div>
          <div className="field">
            <button type="submit" disabled={set.pending}>
              Set from now on
            </button>
          </div>
          <div style={{ gridColumn: '1 / -1' }}>
            <MutationError error={set.error} />
          </div>
        </form>
      ) : null}
    </Section>
  )
}

/** The customer's own spend widget, as they see it, through a real widget session (admins only: it mints a token). */
function WidgetPreview({ id }: { id: string }) {
  const can = useCanChange()
  const mint = useMutation(WidgetSession)
  const ref = useRef<HTMLElement & { fetchToken?: () => Promise<unknown> }>(null)
  const [shown, setShown] = useState(false)
  const [loadError, setLoadError] = useState<string | null>(null)
  useEffect(() => {
    if (!shown) return
    import(/* @vite-ignore */ WIDGET_BUNDLE).catch(() =>
      setLoadError('The widget bundle is missing (build packages/widget).'),
    )
  }, [shown])
  useEffect(() => {
    if (shown && ref.current) {
      ref.current.fetchToken = async () => {
        const r = await mint.run({ id })
        if (!r) throw new Error('no widget session')
        return r.createWidgetSession
      }
    }
  }, [shown, id, mint])
  if (!can) return null
  return (
    <Section title="Widget preview">
      <p className="muted">
        What this customer sees in your app: the spend widget on a real, short-lived widget session.
      </p>
      {shown ? (
        <>
          {loadError ? <p className="state error">{loadError}</p> : null}
          {mint.error ? <ErrorBox error={mint.error} /> : null}
          <burnrate-spend ref={ref} endpoint="/graphql" refresh-interval="0" data-testid="widget-preview" />
        </>
      ) : (
        <button type="button" onClick={() => setShown(true)}>
          Show the widget
        </button>
      )}
    </Section>
  )
}

declare module 'react' {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace JSX {
    interface IntrinsicElements {
      'burnrate-spend': React.DetailedHTMLProps<React.HTMLAttributes<HTMLElement>, HTMLElement> & {
        endpoint?: string
        'refresh-interval'?: string
      }
    }
  }
}
