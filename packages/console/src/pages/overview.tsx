import { useRef } from 'react'
import { Link } from 'wouter'
import { BarChart } from '../charts.tsx'
import { day, marginPercent, money, num, percent, relative, sub } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useQuery, useSubscription } from '../hooks.ts'
import { useRange } from '../range.tsx'
import { Async, Badge, PageHeader, Section, Stat } from '../ui.tsx'

const Summary = graphql(`
  query OverviewSummary($from: DateTime!, $to: DateTime!) {
    tenant {
      currency
    }
    total: usageSummary(from: $from, to: $to) {
      amount
      cost
      currency
      events
      unpricedEvents
    }
    byDay: usageSummary(from: $from, to: $to, groupBy: [DAY]) {
      groups {
        bucketStart
        amount
        cost
        events
      }
    }
    byModel: usageSummary(from: $from, to: $to, groupBy: [PROVIDER, MODEL]) {
      groups {
        provider
        model
        amount
        cost
        events
      }
    }
    catalogSources {
      source
      lastSuccessAt
      lastAttemptAt
      consecutiveFailures
      lastError
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
        {(d) => {
          const cur = d.total.currency || d.tenant.currency
          const margin = sub(d.total.amount, d.total.cost)
          const mp = marginPercent(d.total.amount, d.total.cost)
          const days = [...d.byDay.groups].sort((a, b) => (a.bucketStart ?? '').localeCompare(b.bucketStart ?? ''))
          const models = [...d.byModel.groups].sort((a, b) => Number(b.amount) - Number(a.amount))
          return (
            <>
              <div className="stats">
                <Stat label="Billed" value={money(d.total.amount, cur)} testId="billed" />
                <Stat label="Provider cost" value={money(d.total.cost, cur)} testId="cost" />
                <Stat
                  label="Margin"
                  value={money(margin, cur)}
                  hint={mp ? percent(mp) + ' of billed' : 'nothing billed'}
                  testId="margin"
                />
                <Stat label="Events" value={num(d.total.events)} testId="events" />
                <Stat
                  label="Unpriced events"
                  value={<Link href="/unpriced">{num(d.total.unpricedEvents)}</Link>}
                  hint="not billed until priced"
                  testId="unpriced"
                />
                <Stat
                  label="Held price changes"
                  value={<Link href="/prices">{num(d.pendingPriceChanges.length)}</Link>}
                  testId="held"
                />
              </div>
              <Section title="Billed by day">
                {days.length ? (
                  <BarChart
                    title={`Billed amount per UTC day (${cur})`}
                    yLabel={`Billed (${cur})`}
                    xLabel="Day (UTC)"
                    formatTick={(v) => money(String(v), cur)}
                    data={days.map((g) => ({
                      label: day(g.bucketStart!),
                      value: Number(g.amount),
                      display: `${money(g.amount, cur)} billed, ${money(g.cost, cur)} cost`,
                    }))}
                  />
                ) : (
                  <p className="state empty">No usage in this range.</p>
                )}
              </Section>
              <div className="grid2">
                <Section title="By provider and model">
                  {models.length ? (
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
                          {models.map((g) => (
                            <tr key={`${g.provider}/${g.model}`}>
                              <td>{g.provider ?? '—'}</td>
                              <td>{g.model ?? '—'}</td>
                              <td className="num">{num(g.events)}</td>
                              <td className="num">{money(g.cost, cur)}</td>
                              <td className="num">{money(g.amount, cur)}</td>
                              <td className="num">{money(sub(g.amount, g.cost), cur)}</td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </div>
                  ) : (
                    <p className="state empty">No usage in this range.</p>
                  )}
                </Section>
                <Section title="Catalog freshness">
                  {d.catalogSources.length ? (
                    <table data-testid="freshness">
                      <thead>
                        <tr>
                          <th scope="col">Source</th>
                          <th scope="col">Last success</th>
                          <th scope="col">State</th>
                        </tr>
                      </thead>
                      <tbody>
                        {d.catalogSources.map((s) => (
                          <tr key={s.source}>
                            <td>{s.source}</td>
                            <td>{relative(s.lastSuccessAt)}</td>
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
                    <p className="state empty">No public source synced yet: the bundled catalog is in use.</p>
                  )}
                </Section>
              </div>
            </>
          )
        }}
      </Async>
    </>
  )
}
