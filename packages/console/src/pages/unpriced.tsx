import Decimal from 'decimal.js'
import { useState } from 'react'
import { dateTime, money, num } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery } from '../hooks.ts'
import { useRange } from '../range.tsx'
import { Async, Badge, DataSection, MutationError, PageHeader, Section, Stat } from '../ui.tsx'
import { atRiskText } from './overview.tsx'

const Unpriced = graphql(`
  query UnpricedPage($from: DateTime!, $to: DateTime!) {
    overview(from: $from, to: $to) {
      currency
      events
      unpricedEvents
      amountAtRisk {
        events
        amount
        estimatedEvents
        unestimatedEvents
      }
    }
    unpricedGroups(from: $from, to: $to) {
      provider
      model
      reason {
        code
        usageTypes
        message
      }
      events
      customers
      firstAt
      lastAt
      amountAtRisk
      fix {
        action
        usageTypes
        effectiveFrom
        description
      }
    }
  }
`)
const SetOverride = graphql(`
  mutation AddOverride($input: PriceOverrideInput!) {
    setPriceOverride(input: $input) {
      id
      usageType
      unitPrice
    }
  }
`)
const Reprice = graphql(`
  mutation RepriceUnpriced($model: String!, $provider: String, $from: DateTime!, $to: DateTime!) {
    repriceUsage(
      model: $model
      provider: $provider
      from: $from
      to: $to
      reason: "priced after an override (console)"
    ) {
      examined
      corrected
      unpriced
      amountDelta
    }
  }
`)

const REASONS: Record<string, string> = {
  UNKNOWN_MODEL: 'Unknown model',
  MISSING_USAGE_PRICE: 'Missing usage-type price',
  NO_PRICE_AT_TIME: 'No price at the time',
}

interface Target {
  provider: string
  model: string
  usageTypes: string[]
  effectiveFrom: string
}

export default function UnpricedPage() {
  const range = useRange('30d')
  const q = useQuery(Unpriced, { from: range.from, to: range.to })
  const can = useCanChange()
  const [target, setTarget] = useState<Target | null>(null)
  return (
    <>
      <PageHeader title="Unpriced">{range.picker}</PageHeader>
      <Async state={q}>
        {(d) => (
          <div className="stats">
            <Stat label="Unpriced events" value={num(d.overview.unpricedEvents)} testId="unpriced-events" />
            <Stat
              label="Amount at risk"
              value={atRiskText(d.overview.amountAtRisk, d.overview.currency)}
              hint="estimate: each model's average bill per priced event"
              testId="unpriced-at-risk"
            />
            <Stat label="All events" value={num(d.overview.events)} />
          </div>
        )}
      </Async>
      <DataSection
        title="By reason"
        state={q}
        isEmpty={(d) => d.unpricedGroups.length === 0}
        empty="Every event in this range is priced."
      >
        {(d) => (
          <div className="table-wrap">
            <table data-testid="unpriced-groups">
              <thead>
                <tr>
                  <th scope="col">Reason</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Model</th>
                  <th scope="col" className="num">
                    Events
                  </th>
                  <th scope="col" className="num">
                    Customers
                  </th>
                  <th scope="col" className="num">
                    At risk
                  </th>
                  <th scope="col">Fix</th>
                </tr>
              </thead>
              <tbody>
                {d.unpricedGroups.map((g) => (
                  <tr key={`${g.provider}/${g.model}/${g.reason?.code ?? ''}/${g.reason?.usageTypes.join(',') ?? ''}`}>
                    <td>
                      <Badge tone="warn">{g.reason ? (REASONS[g.reason.code] ?? g.reason.code) : 'Not recorded'}</Badge>
                      {g.reason?.usageTypes.length ? (
                        <div className="muted">{g.reason.usageTypes.join(', ')}</div>
                      ) : null}
                    </td>
                    <td>{g.provider || '—'}</td>
                    <td>{g.model}</td>
                    <td className="num" title={`${dateTime(g.firstAt)} – ${dateTime(g.lastAt)}`}>
                      {num(g.events)}
                    </td>
                    <td className="num">{num(g.customers)}</td>
                    <td className="num">
                      {g.amountAtRisk === null ? 'unknown' : '≈ ' + money(g.amountAtRisk, d.overview.currency)}
                    </td>
                    <td>
                      <div className="muted">{g.fix.description}</div>
                      {can && g.fix.action === 'ADD_OVERRIDE_THEN_REPRICE' ? (
                        <button
                          type="button"
                          className="ghost"
                          aria-label={`Fix ${g.provider || 'no provider'} ${g.model}`}
                          onClick={() =>
                            setTarget({
                              provider: g.provider,
                              model: g.model,
                              usageTypes: g.fix.usageTypes,
                              effectiveFrom: g.fix.effectiveFrom,
                            })
                          }
                        >
                          Fix…
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </DataSection>
      {can ? (
        <Fix
          key={target ? JSON.stringify(target) : 'manual'}
          target={target}
          currency={q.data?.overview.currency ?? 'USD'}
          from={range.from}
          to={range.to}
          onDone={() => void q.refetch()}
        />
      ) : null}
    </>
  )
}

function Fix({
  target,
  currency,
  from,
  to,
  onDone,
}: {
  target: Target | null
  currency: string
  from: string
  to: string
  onDone: () => void
}) {
  const [result, setResult] = useState<string | null>(null)
  const override = useMutation(SetOverride)
  const reprice = useMutation(Reprice, {
    onDone: ({ repriceUsage: x }) => {
      setResult(
        `Re-priced ${num(x.examined)} events: ${num(x.corrected)} corrected (billed ${money(x.amountDelta, currency, true)}), ${num(x.unpriced)} still unpriced.`,
      )
      onDone()
    },
  })
  const [v, setV] = useState({
    provider: target?.provider ?? '',
    model: target?.model ?? '',
    usageTypes: target?.usageTypes.length ? target.usageTypes : ['input'],
    prices: {} as Record<string, string>,
    effectiveFrom: target?.effectiveFrom ?? from,
  })
  return (
    <Section title="Add a price, then re-price">
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          void (async () => {
            setResult(null)
            for (const usageType of v.usageTypes) {
              const set = await override.run({
                input: {
                  provider: v.provider,
                  model: v.model,
                  usageType,
                  unitPrice: new Decimal(v.prices[usageType] ?? '0').div(1_000_000).toFixed(),
                  effectiveFrom: v.effectiveFrom,
                },
              })
              if (!set) return
            }
            await reprice.run({ model: v.model, provider: v.provider || null, from, to })
          })()
        }}
      >
        <div className="field">
          <label htmlFor="f-provider">Provider</label>
          <input
            id="f-provider"
            required
            value={v.provider}
            onChange={(e) => setV({ ...v, provider: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor="f-model">Model</label>
          <input id="f-model" required value={v.model} onChange={(e) => setV({ ...v, model: e.target.value })} />
        </div>
        {target ? null : (
          <div className="field">
            <label htmlFor="f-type">Usage type</label>
            <select id="f-type" value={v.usageTypes[0]} onChange={(e) => setV({ ...v, usageTypes: [e.target.value] })}>
              {['input', 'output', 'cache_read', 'cache_write', 'request'].map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </div>
        )}
        {v.usageTypes.map((t) => (
          <div className="field" key={t}>
            <label htmlFor={`f-price-${t}`}>{`${t}: price per 1M (${currency})`}</label>
            <input
              id={`f-price-${t}`}
              inputMode="decimal"
              required
              pattern="\d+(\.\d+)?"
              value={v.prices[t] ?? ''}
              onChange={(e) => setV({ ...v, prices: { ...v.prices, [t]: e.target.value } })}
            />
          </div>
        ))}
        <div className="field">
          <button type="submit" disabled={override.pending || reprice.pending}>
            Add override and re-price
          </button>
        </div>
        <div style={{ gridColumn: '1 / -1' }}>
          <MutationError error={override.error ?? reprice.error} />
          {result ? (
            <p role="status" data-testid="fix-result">
              {result}
            </p>
          ) : null}
        </div>
      </form>
    </Section>
  )
}
