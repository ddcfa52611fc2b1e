import { useEffect, useState } from 'react'
import { Link, useLocation } from 'wouter'
import { money, num, percent, sub, marginPercent } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useQuery } from '../hooks.ts'
import { Badge, DataSection, FilterBar, PageHeader, Pager, Section } from '../ui.tsx'

const List = graphql(`
  query CustomersList($search: String, $after: String) {
    tenant {
      currency
    }
    customers(search: $search, first: 25, after: $after) {
      edges {
        node {
          id
          name
          thisMonth {
            periodStart
            events
            unpricedEvents
            cost
            amount
            margin
            budgetUse {
              period
              percent
              spent
              limit
            }
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

/** Waits `ms` after the last change: a search runs when typing pauses, not on every key. */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value)
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms)
    return () => clearTimeout(timer)
  }, [value, ms])
  return settled
}

function budgetTone(p: number): 'ok' | 'warn' | 'bad' {
  return p >= 100 ? 'bad' : p >= 80 ? 'warn' : 'ok'
}

/** Customers: searchable by id or name, in pages, with this UTC month's billed, cost, margin and budget use. */
export default function Customers() {
  const [, navigate] = useLocation()
  const [id, setId] = useState('')
  const [search, setSearch] = useState('')
  const settled = useDebounced(search.trim(), 250)
  const [cursors, setCursors] = useState<string[]>([])
  useEffect(() => setCursors([]), [settled])
  const q = useQuery(List, { search: settled || null, after: cursors[cursors.length - 1] ?? null })
  return (
    <>
      <PageHeader title="Customers" />
      <DataSection
        title="This month"
        before={
          <FilterBar label="Search customers" active={Boolean(search)} onClear={() => setSearch('')}>
            <div className="field">
              <label htmlFor="c-search">Search by id or name</label>
              <input id="c-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
            </div>
          </FilterBar>
        }
        state={q}
        what="Loading customers"
        isEmpty={(d) => d.customers.edges.length === 0}
        empty={
          settled
            ? `No customer's id or name contains "${settled}".`
            : 'No customers yet: they appear with their first usage event.'
        }
      >
        {(d) => {
          const cur = d.tenant.currency
          return (
            <>
              <div className="table-wrap">
                <table data-testid="customers">
                  <thead>
                    <tr>
                      <th scope="col">Customer</th>
                      <th scope="col" className="num">
                        Events
                      </th>
                      <th scope="col" className="num">
                        Billed
                      </th>
                      <th scope="col" className="num">
                        Cost
                      </th>
                      <th scope="col" className="num">
                        Margin
                      </th>
                      <th scope="col">Budget use</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.customers.edges.map(({ node: c }) => {
                      const m = c.thisMonth
                      const mp = marginPercent(m.amount, m.cost)
                      const use = m.budgetUse
                      return (
                        <tr key={c.id} data-customer={c.id}>
                          <td>
                            <Link href={`/customers/${encodeURIComponent(c.id)}`}>{c.id}</Link>
                            {c.name ? <div className="muted">{c.name}</div> : null}
                          </td>
                          <td className="num">
                            {num(m.events)}
                            {m.unpricedEvents ? <div className="muted">{num(m.unpricedEvents)} unpriced</div> : null}
                          </td>
                          <td className="num" data-testid="customer-row-billed">
                            {money(m.amount, cur)}
                          </td>
                          <td className="num">{money(m.cost, cur)}</td>
                          <td className="num">
                            {money(sub(m.amount, m.cost), cur)}
                            {mp ? <div className="muted">{percent(mp)}</div> : null}
                          </td>
                          <td>
                            {use ? (
                              <Badge tone={budgetTone(Number(use.percent))}>
                                {`${percent(use.percent)} of ${money(use.limit, cur)} (${use.period.toLowerCase()})`}
                              </Badge>
                            ) : (
                              <span className="muted">no budget</span>
                            )}
                          </td>
                        </tr>
                      )
                    })}
                  </tbody>
                </table>
              </div>
              <Pager cursors={cursors} setCursors={setCursors} pageInfo={d.customers.pageInfo} />
            </>
          )
        }}
      </DataSection>
      <Section title="Open a customer">
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault()
            if (id.trim()) navigate(`/customers/${encodeURIComponent(id.trim())}`)
          }}
        >
          <label htmlFor="cid">Customer id</label>
          <input id="cid" value={id} onChange={(e) => setId(e.target.value)} />
          <button type="submit">Open</button>
        </form>
      </Section>
    </>
  )
}
