import { useRef } from 'react'
import { Link } from 'wouter'
import { BarChart } from '../charts.tsx'
import { dateTime, day, marginPercent, money, num, percent, relative } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useQuery, useSubscription } from '../hooks.ts'
import { useRange } from '../range.tsx'
import { Async, Badge, Empty, PageHeader, Section, Stat } from '../ui.tsx'

// One query built for this page: every figure is read from the hourly rollups (API: overview).
const Summary = graphql(`
  query OverviewPage($from: DateTime!, $to: DateTime!) {
    overview(from: $from, to: $to) {
      currency
      events
      unpricedEvents
      cost
      amount
      margin
      byDay {
        day
        events
        cost
        amount
        margin
      }
      byModel {
        provider
        model
        events
        unpricedEvents
        cost
        amount
        margin
        amountAtRisk
      }
      amountAtRisk {
        events
        amount
        estimatedEvents
        unestimatedEvents
      }
      alertsToday
      topCustomers(first: 10) {
        customerId
        events
        cost
        amount
        margin
      }
      catalogFreshness {
        source
        lastSuccessAt
        lastAttemptAt
        consecutiveFailures
        lastError
      }
    }
    pendingPriceChanges {
      id
    }
  }
`)

const UsageUpdates = graphql(`
  subscription OverviewUsage {
    usageUpdates {
      customerId
    }
  }
`)

/** The amount at risk as the operator should read it: unknown is never shown as 0. */
export function atRiskText(
  risk: { events: number; amount: string | null; unestimatedEvents: number },
  currency: string,
): string {
  if (risk.events === 0) return money('0', currency)
  if (risk.amount === null) return 'unknown'
  return (risk.unestimatedEvents > 0 ? '≥ ' : '≈ ') + money(risk.amount, currency)
}

export default function Overview() {
  const range = useRange('30d')
  const q = useQuery(Summary, { from: range.from, to: range.to })
  // Live: any committed usage refreshes the figures (at most once every 2 s).
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  useSubscription(UsageUpdates, {}, () => {
    timer.current ??= setTimeout(() => {
      timer.current = null
      void q.refetch()
    }, 2000)
  })
  return (
    <>
      <PageHeader title="Overview">{range.picker}</PageHeader>
      <Async state={q} what="Loading the overview">
        {({ overview: o, pendingPriceChanges }) => {
          const cur = o.currency
          const mp = marginPercent(o.amount, o.cost)
          const risk = o.amountAtRisk
          return (
            <>
              <div className="stats">
                <Stat label="Billed" value={money(o.amount, cur)} testId="billed" />
                <Stat label="Provider cost" value={money(o.cost, cur)} testId="cost" />
                <Stat
                  label="Margin"
                  value={money(o.margin, cur)}
                  hint={mp ? percent(mp) + ' of billed' : 'nothing billed'}
                  testId="margin"
                />
                <Stat label="Events" value={num(o.events)} testId="events" />
                <Stat
                  label="Unpriced events"
                  value={<Link href="/unpriced">{num(o.unpricedEvents)}</Link>}
                  hint="not billed until priced"
                  testId="unpriced"
                />
                <Stat
                  label="Amount at risk"
                  value={atRiskText(risk, cur)}
                  hint={
                    risk.events === 0
                      ? 'every event is priced'
                      : risk.amount === null
                        ? 'no priced events of these models to estimate from'
                        : risk.unestimatedEvents > 0
                          ? `${num(risk.unestimatedEvents)} events of unknown models not estimated`
                          : 'estimated from the same models’ priced events'
                  }
                  testId="at-risk"
                />
                <Stat
                  label="Alerts today"
                  value={num(o.alertsToday)}
                  hint="budget and credit, UTC day"
                  testId="alerts-today"
                />
                <Stat
                  label="Held price changes"
                  value={<Link href="/prices">{num(pendingPriceChanges.length)}</Link>}
                  testId="held"
                />
              </div>
              <Section title="Billed and cost by day">
                {o.byDay.length ? (
                  <BarChart
                    title={`Billed amount per UTC day (${cur})`}
                    yLabel={`Billed (${cur})`}
                    xLabel="Day (UTC)"
                    formatTick={(v) => money(String(v), cur)}
                    data={o.byDay.map((g) => ({
                      label: day(g.day),
                      value: Number(g.amount),
                      display: `${money(g.amount, cur)} billed, ${money(g.cost, cur)} cost, ${money(g.margin, cur)} margin`,
                    }))}
                  />
                ) : (
                  <Empty>No usage in this range.</Empty>
                )}
              </Section>
              <div className="grid2">
                <Section title="By provider and model">
                  {o.byModel.length ? (
                    <div className="table-wrap">
                      <table data-testid="by-model">
                        <thead>
                          <tr>
                            <th scope="col">Provider</th>
                            <th scope="col">Model</th>
                            <th scope="col" className="num">
                              Events
                            </th>
                            <th scope="col" className="num">
                              Cost
                            </th>
                            <th scope="col" className="num">
                              Billed
                            </th>
                            <th scope="col" className="num">
                              Margin
                            </th>
                          </tr>
                        </thead>
                        <tbody>
                          {o.byModel.map((g) => (
                            <tr key={`${g.provider}/${g.model}`}>
                              <td>{g.provider || '—'}</td>
                              <td>
                                {g.model}
                                {g.unpricedEvents ? (
                                  <>
                                    {' '}
                                    <Badge tone="warn">{`${num(g.unpricedEvents)} unpriced`}</Badge>
                                  </>
                                ) : null}
                              </td>
                              <td className="num">{num(g.events)}</td>
                              <td className="num">{money(g.cost, cur)}</td>
                              <td className="num">{money(g.amount, cur)}</td>
                              <td className="num">{money(g.margin, cur)}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </div>
                  ) : (
                    <Empty>No usage in this range.</Empty>
                  )}
                </Section>
                <Section title="Top customers">
                  {o.topCustomers.length ? (
                    <table data-testid="top-customers">
                      <thead>
                        <tr>
                          <th scope="col">Customer</th>
                          <th scope="col" className="num">
                            Billed
                          </th>
                          <th scope="col" className="num">
                            Margin
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {o.topCustomers.map((c) => (
                          <tr key={c.customerId}>
                            <td>
                              <Link href={`/customers/${encodeURIComponent(c.customerId)}`}>{c.customerId}</Link>
                            </td>
                            <td className="num">{money(c.amount, cur)}</td>
                            <td className="num">{money(c.margin, cur)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  ) : (
                    <Empty>No customer billed in this range.</Empty>
                  )}
                </Section>
              </div>
              <Section title="Catalog freshness">
                {o.catalogFreshness.length ? (
                  <table data-testid="freshness">
                    <thead>
                      <tr>
                        <th scope="col">Source</th>
                        <th scope="col">Last success</th>
                        <th scope="col">Last attempt</th>
                        <th scope="col">State</th>
                      </tr>
                    </thead>
                    <tbody>
                      {o.catalogFreshness.map((s) => (
                        <tr key={s.source}>
                          <td>{s.source}</td>
                          <td title={dateTime(s.lastSuccessAt)}>{relative(s.lastSuccessAt)}</td>
                          <td title={dateTime(s.lastAttemptAt)}>{relative(s.lastAttemptAt)}</td>
                          <td>
                            {s.consecutiveFailures > 0 ? (
                              <Badge tone="bad">{`${s.consecutiveFailures} failures`}</Badge>
                            ) : s.lastSuccessAt ? (
                              <Badge tone="ok">ok</Badge>
                            ) : (
                              <Badge tone="warn">not synced</Badge>
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ) : (
                  <Empty>No public source synced yet: the bundled catalog is in use.</Empty>
                )}
              </Section>
            </>
          )
        }}
      </Async>
    </>
  )
}
