import { useState } from 'react'
import { StepChart } from '../charts.tsx'
import { dateTime, money, num, perMillion, relative } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery, useSubscription } from '../hooks.ts'
import { rangeOf } from '../range.tsx'
import { ActionButton, Badge, DataSection, FilterBar, MutationError, PageHeader, Section } from '../ui.tsx'

const Catalog = graphql(`
  query PricesCatalog {
    tenant {
      currency
    }
    providerPrices {
      id
      provider
      model
      usageType
      unitPrice
      unit
      currency
      effectiveFrom
      negotiated
      source
      timeWindow
    }
  }
`)
const Held = graphql(`
  query PricesHeld {
    pendingPriceChanges {
      id
      provider
      model
      usageType
      oldUnitPrice
      newUnitPrice
      source
      sourceVersion
      observedAt
      status
    }
  }
`)
const Confirm = graphql(`
  mutation ConfirmChange($id: ID!) {
    confirmPriceChange(id: $id) {
      id
      status
    }
  }
`)
const Reject = graphql(`
  mutation RejectChange($id: ID!) {
    rejectPriceChange(id: $id) {
      id
      status
    }
  }
`)
const History = graphql(`
  query PriceHistory($provider: String!, $model: String!) {
    priceHistory(provider: $provider, model: $model) {
      id
      usageType
      unitPrice
      currency
      effectiveFrom
      effectiveTo
      negotiated
      source
    }
  }
`)
const Sources = graphql(`
  query PricesSources {
    catalogSources {
      source
      lastSuccessAt
      lastAttemptAt
      nextAttemptAt
      consecutiveFailures
      lastError
      lastSyncRun {
        id
        finishedAt
        models
        rowsOpened
        rowsClosed
        unchanged
        held
        rejected
        skipped
        sourceVersion
      }
    }
    catalogSyncRuns(first: 20) {
      id
      source
      finishedAt
      models
      rowsOpened
      rowsClosed
      held
      rejected
      skipped
    }
    catalogConflicts {
      provider
      model
      usageType
      usedSource
      prices {
        source
        unitPrice
        currency
      }
    }
  }
`)
const SyncNow = graphql(`
  mutation SyncNow($source: String!) {
    syncCatalogSource(source: $source) {
      source
      rowsOpened
      held
      rejected
    }
  }
`)
const Issues = graphql(`
  query FeedIssues {
    catalogFeedIssues(first: 100) {
      id
      source
      model
      field
      rawValue
      reason
      kind
      syncRunId
    }
  }
`)
const Overrides = graphql(`
  query Overrides {
    priceOverrides {
      id
      provider
      model
      usageType
      unitPrice
      currency
      effectiveFrom
      effectiveTo
    }
  }
`)
const ImportOverrides = graphql(`
  mutation ImportOverrides($document: String!) {
    importPriceOverrides(document: $document) {
      source
      rowsOpened
      rowsClosed
    }
  }
`)
const Reprice = graphql(`
  mutation Reprice($model: String!, $provider: String, $from: DateTime!, $to: DateTime!, $reason: String) {
    repriceUsage(model: $model, provider: $provider, from: $from, to: $to, reason: $reason) {
      examined
      corrected
      unpriced
      amountDelta
      costDelta
    }
  }
`)
const Corrections = graphql(`
  query Corrections($from: DateTime!, $to: DateTime!) {
    usageCorrections(from: $from, to: $to, first: 50) {
      id
      eventId
      customerId
      provider
      model
      oldAmount
      newAmount
      amountDelta
      reason
      createdAt
    }
  }
`)
const PriceChanges = graphql(`
  subscription PriceChangesLive {
    priceChanges {
      provider
      model
    }
  }
`)

type Tab = 'catalog' | 'held' | 'sync' | 'overrides' | 'reprice'
const TABS: [Tab, string][] = [
  ['catalog', 'Catalog'],
  ['held', 'Held changes'],
  ['sync', 'Sources and feed'],
  ['overrides', 'Overrides'],
  ['reprice', 'Re-pricing'],
]

export default function Prices() {
  const [tab, setTab] = useState<Tab>('catalog')
  return (
    <>
      <PageHeader title="Prices" />
      <div className="tabs" role="tablist" aria-label="Prices">
        {TABS.map(([t, label]) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls={`panel-${t}`}
            tabIndex={tab === t ? 0 : -1}
            onClick={() => setTab(t)}
            onKeyDown={(e) => {
              const i = TABS.findIndex(([x]) => x === tab)
              const next = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : null
              if (next === null) return
              const n = TABS[(next + TABS.length) % TABS.length]![0]
              setTab(n)
              document.getElementById(`tab-${n}`)?.focus()
            }}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === 'catalog' ? <CatalogTab /> : null}
        {tab === 'held' ? <HeldTab /> : null}
        {tab === 'sync' ? <SyncTab /> : null}
        {tab === 'overrides' ? <OverridesTab /> : null}
        {tab === 'reprice' ? <RepriceTab /> : null}
      </div>
    </>
  )
}

function CatalogTab() {
  const q = useQuery(Catalog)
  const [filter, setFilter] = useState('')
  const [selected, setSelected] = useState<{ provider: string; model: string } | null>(null)
  useSubscription(PriceChanges, {}, () => void q.refetch())
  return (
    <>
      <DataSection
        title="Prices in force"
        before={
          <FilterBar label="Filter the catalog" active={Boolean(filter)} onClear={() => setFilter('')}>
            <div className="field">
              <label htmlFor="price-filter">Filter</label>
              <input
                id="price-filter"
                type="search"
                value={filter}
                onChange={(e) => setFilter(e.target.value)}
                placeholder="provider or model"
              />
            </div>
          </FilterBar>
        }
        state={q}
        isEmpty={(d) => d.providerPrices.length === 0}
        empty="The catalog is empty: sync a price source."
      >
        {(d) => {
          const f = filter.toLowerCase()
          const rows = d.providerPrices
            .filter((p) => !f || `${p.provider} ${p.model}`.toLowerCase().includes(f))
            .sort((a, b) =>
              `${a.provider}/${a.model}/${a.usageType}`.localeCompare(`${b.provider}/${b.model}/${b.usageType}`),
            )
          return (
            <div className="table-wrap">
              <table data-testid="catalog">
                <caption className="sr-only">Prices in force, per 1M units</caption>
                <thead>
                  <tr>
                    <th scope="col">Provider</th>
                    <th scope="col">Model</th>
                    <th scope="col">Usage type</th>
                    <th scope="col" className="num">
                      Price per 1M
                    </th>
                    <th scope="col">Since</th>
                    <th scope="col">Source</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.slice(0, 60).map((p) => (
                    <tr key={p.id}>
                      <td>{p.provider}</td>
                      <td>
                        <button
                          type="button"
                          className="ghost"
                          onClick={() => setSelected({ provider: p.provider, model: p.model })}
                          aria-label={`Price history of ${p.provider} ${p.model}`}
                        >
                          {p.model}
                        </button>
                      </td>
                      <td>{p.usageType}</td>
                      <td className="num" data-price={`${p.provider}/${p.model}/${p.usageType}`}>
                        {perMillion(p.unitPrice, p.currency)}
                        {p.unit !== 'token' ? <span className="muted"> ({p.unit})</span> : null}
                      </td>
                      <td>{dateTime(p.effectiveFrom)}</td>
                      <td>{p.negotiated ? <Badge tone="ok">negotiated</Badge> : p.source}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {rows.length > 60 ? (
                <p className="muted">{num(rows.length - 60)} more prices: narrow the filter.</p>
              ) : null}
            </div>
          )
        }}
      </DataSection>
      {selected ? <HistoryChart {...selected} /> : <p className="muted">Choose a model to see its price history.</p>}
    </>
  )
}

function HistoryChart({ provider, model }: { provider: string; model: string }) {
  const q = useQuery(History, { provider, model })
  return (
    <DataSection
      title={`Price history: ${provider} ${model}`}
      state={q}
      isEmpty={(d) => d.priceHistory.length === 0}
      empty="No prices recorded for this model."
    >
      {(d) => {
        const byType = new Map<string, typeof d.priceHistory>()
        for (const p of d.priceHistory) {
          const k = `${p.usageType}${p.negotiated ? ' (negotiated)' : ''}`
          byType.set(k, [...(byType.get(k) ?? []), p])
        }
        const cur = d.priceHistory[0]?.currency ?? 'USD'
        return (
          <StepChart
            title={`Price per 1M units of ${model}, per usage type`}
            yLabel={`${cur} per 1M`}
            formatTick={(v) => money(String(v), cur)}
            series={[...byType].slice(0, 6).map(([name, rows]) => ({
              name,
              points: rows.map((r) => ({
                at: new Date(r.effectiveFrom).getTime(),
                value: Number(r.unitPrice) * 1_000_000,
                label: dateTime(r.effectiveFrom),
                display: perMillion(r.unitPrice, r.currency),
              })),
            }))}
          />
        )
      }}
    </DataSection>
  )
}

function HeldTab() {
  const q = useQuery(Held)
  const can = useCanChange()
  const confirm = useMutation(Confirm, { onDone: q.refetch })
  const reject = useMutation(Reject, { onDone: q.refetch })
  return (
    <DataSection
      title="Held public price changes"
      before={
        <>
          <p className="muted">
            A public price that moved more than 10× in one sync waits here: confirm it to apply it, or reject it.
          </p>
          <MutationError error={confirm.error ?? reject.error} />
        </>
      }
      state={q}
      isEmpty={(d) => d.pendingPriceChanges.length === 0}
      empty="No held changes."
    >
      {(d) => (
        <div className="table-wrap">
          <table data-testid="held">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Usage type</th>
                <th scope="col" className="num">
                  In force (per 1M)
                </th>
                <th scope="col" className="num">
                  Proposed (per 1M)
                </th>
                <th scope="col">Source</th>
                <th scope="col">Seen</th>
                {can ? <th scope="col">Decision</th> : null}
              </tr>
            </thead>
            <tbody>
              {d.pendingPriceChanges.map((c) => (
                <tr key={c.id} data-held={c.id}>
                  <td>
                    {c.provider} {c.model}
                  </td>
                  <td>{c.usageType}</td>
                  <td className="num">{perMillion(c.oldUnitPrice)}</td>
                  <td className="num">{perMillion(c.newUnitPrice)}</td>
                  <td>
                    {c.source} <span className="muted">{c.sourceVersion}</span>
                  </td>
                  <td>{relative(c.observedAt)}</td>
                  {can ? (
                    <td className="row">
                      <ActionButton action={confirm} variables={{ id: c.id }}>
                        Confirm
                      </ActionButton>
                      <ActionButton action={reject} variables={{ id: c.id }} className="ghost">
                        Reject
                      </ActionButton>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </DataSection>
  )
}

function SyncTab() {
  const q = useQuery(Sources)
  const issues = useQuery(Issues)
  const can = useCanChange()
  const sync = useMutation(SyncNow, { onDone: q.refetch })
  return (
    <>
      <DataSection
        title="Sources"
        before={<MutationError error={sync.error} />}
        state={q}
        isEmpty={(d) => d.catalogSources.length === 0}
        empty="No price sources."
      >
        {(d) => (
          <table data-testid="sources">
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Last success</th>
                <th scope="col">Next attempt</th>
                <th scope="col">Failures</th>
                <th scope="col">Last run</th>
                {can ? <th scope="col">Action</th> : null}
              </tr>
            </thead>
            <tbody>
              {d.catalogSources.map((s) => (
                <tr key={s.source}>
                  <td>{s.source}</td>
                  <td>{relative(s.lastSuccessAt)}</td>
                  <td>{relative(s.nextAttemptAt)}</td>
                  <td>
                    {s.consecutiveFailures ? <Badge tone="bad">{String(s.consecutiveFailures)}</Badge> : '0'}
                    {s.lastError ? <div className="muted">{s.lastError}</div> : null}
                  </td>
                  <td>
                    {s.lastSyncRun
                      ? `${num(s.lastSyncRun.models)} models, ${num(s.lastSyncRun.rowsOpened)} new rows, ${num(s.lastSyncRun.held)} held, ${num(s.lastSyncRun.rejected)} rejected`
                      : '—'}
                  </td>
                  {can ? (
                    <td>
                      <ActionButton action={sync} variables={{ source: s.source }}>
                        Sync now
                      </ActionButton>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </DataSection>
      <div className="grid2">
        <DataSection
          title="Recent sync runs"
          state={q}
          isEmpty={(d) => d.catalogSyncRuns.length === 0}
          empty="No sync has run yet."
        >
          {(d) => (
            <table>
              <thead>
                <tr>
                  <th scope="col">Source</th>
                  <th scope="col">Finished</th>
                  <th scope="col" className="num">
                    Opened
                  </th>
                  <th scope="col" className="num">
                    Held
                  </th>
                  <th scope="col" className="num">
                    Rejected
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.catalogSyncRuns.map((r) => (
                  <tr key={r.id}>
                    <td>{r.source}</td>
                    <td>{dateTime(r.finishedAt)}</td>
                    <td className="num">{num(r.rowsOpened)}</td>
                    <td className="num">{num(r.held)}</td>
                    <td className="num">{num(r.rejected)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </DataSection>
        <DataSection
          title="Conflicts between sources"
          state={q}
          isEmpty={(d) => d.catalogConflicts.length === 0}
          empty="The sources agree."
        >
          {(d) => (
            <table>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Usage type</th>
                  <th scope="col">Prices per 1M</th>
                  <th scope="col">Used</th>
                </tr>
              </thead>
              <tbody>
                {d.catalogConflicts.map((c) => (
                  <tr key={`${c.provider}/${c.model}/${c.usageType}`}>
                    <td>
                      {c.provider} {c.model}
                    </td>
                    <td>{c.usageType}</td>
                    <td>{c.prices.map((p) => `${p.source}: ${perMillion(p.unitPrice, p.currency)}`).join(', ')}</td>
                    <td>{c.usedSource}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </DataSection>
      </div>
      <DataSection
        title="Feed rejections"
        state={issues}
        isEmpty={(d) => d.catalogFeedIssues.length === 0}
        empty="No rejected or skipped feed rows."
      >
        {(d) => (
          <div className="table-wrap">
            <table data-testid="feed-issues">
              <thead>
                <tr>
                  <th scope="col">Source</th>
                  <th scope="col">Model</th>
                  <th scope="col">Field</th>
                  <th scope="col">Value</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {d.catalogFeedIssues.map((i) => (
                  <tr key={i.id}>
                    <td>{i.source}</td>
                    <td>{i.model}</td>
                    <td>{i.field ?? '—'}</td>
                    <td>
                      <code>{i.rawValue ?? '—'}</code>
                    </td>
                    <td>{i.kind}</td>
                    <td>{i.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </DataSection>
    </>
  )
}

function OverridesTab() {
  const q = useQuery(Overrides)
  const can = useCanChange()
  const [doc, setDoc] = useState('')
  const [done, setDone] = useState<string | null>(null)
  const imp = useMutation(ImportOverrides, {
    onDone: (r) => {
      setDone(`Imported: ${r.importPriceOverrides.map((x) => `${x.rowsOpened} rows`).join(', ')}`)
      setDoc('')
      void q.refetch()
    },
  })
  return (
    <>
      <DataSection
        title="Negotiated prices"
        state={q}
        isEmpty={(d) => d.priceOverrides.length === 0}
        empty="No negotiated prices: the public catalog applies."
      >
        {(d) => (
          <table data-testid="overrides">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Usage type</th>
                <th scope="col" className="num">
                  Price per 1M
                </th>
                <th scope="col">From</th>
                <th scope="col">To</th>
              </tr>
            </thead>
            <tbody>
              {d.priceOverrides.map((o) => (
                <tr key={o.id}>
                  <td>
                    {o.provider} {o.model}
                  </td>
                  <td>{o.usageType}</td>
                  <td className="num">{perMillion(o.unitPrice, o.currency)}</td>
                  <td>{dateTime(o.effectiveFrom)}</td>
                  <td>{dateTime(o.effectiveTo)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </DataSection>
      {can ? (
        <Section title="Import overrides">
          <form
            onSubmit={(e) => {
              e.preventDefault()
              void imp.run({ document: doc })
            }}
          >
            <label htmlFor="overrides-doc">YAML or JSON document</label>
            <textarea
              id="overrides-doc"
              rows={6}
              style={{ width: '100%', fontFamily: 'monospace' }}
              value={doc}
              onChange={(e) => setDoc(e.target.value)}
              placeholder={
                'overrides:\n  - { tenant: …, provider: openai, model: gpt-4o, usageType: input, unitPrice: "0.0000020", effectiveFrom: 2026-01-01T00:00:00Z }'
              }
            />
            <MutationError error={imp.error} />
            {done ? <p role="status">{done}</p> : null}
            <button type="submit" disabled={imp.pending || !doc.trim()}>
              Import
            </button>
          </form>
        </Section>
      ) : null}
    </>
  )
}

function RepriceForm({
  initial,
  onDone,
}: {
  initial?: { provider?: string; model?: string }
  onDone?: (r: { examined: number; corrected: number; unpriced: number; amountDelta: string }) => void
}) {
  const [result, setResult] = useState<string | null>(null)
  const reprice = useMutation(Reprice, {
    onDone: ({ repriceUsage: x }) => {
      setResult(
        `Examined ${num(x.examined)} events: ${num(x.corrected)} corrected (billed ${money(x.amountDelta, 'USD', true)}), ${num(x.unpriced)} still unpriced.`,
      )
      onDone?.(x)
    },
  })
  const month = rangeOf('90d')
  const [v, setV] = useState({
    provider: initial?.provider ?? '',
    model: initial?.model ?? '',
    from: month.from.slice(0, 10),
    to: month.to.slice(0, 10),
    reason: '',
  })
  return (
    <form
      className="form"
      onSubmit={(e) => {
        e.preventDefault()
        void reprice.run({
          model: v.model,
          provider: v.provider || null,
          from: new Date(v.from + 'T00:00:00Z').toISOString(),
          to: new Date(v.to + 'T00:00:00Z').toISOString(),
          reason: v.reason || null,
        })
      }}
    >
      {(['provider', 'model', 'from', 'to', 'reason'] as const).map((k) => (
        <div className="field" key={k}>
          <label htmlFor={`rp-${k}`}>
            {k === 'from' ? 'From (UTC)' : k === 'to' ? 'To (UTC, exclusive)' : k[0]!.toUpperCase() + k.slice(1)}
          </label>
          <input
            id={`rp-${k}`}
            type={k === 'from' || k === 'to' ? 'date' : 'text'}
            required={k !== 'provider' && k !== 'reason'}
            value={v[k]}
            onChange={(e) => setV({ ...v, [k]: e.target.value })}
          />
        </div>
      ))}
      <div className="field">
        <button type="submit" disabled={reprice.pending}>
          {reprice.pending ? 'Re-pricing…' : 'Re-price'}
        </button>
      </div>
      <div style={{ gridColumn: '1 / -1' }}>
        <MutationError error={reprice.error} />
        {result ? (
          <p role="status" data-testid="reprice-result">
            {result}
          </p>
        ) : null}
      </div>
    </form>
  )
}

function RepriceTab() {
  const can = useCanChange()
  const r = rangeOf('90d')
  const q = useQuery(Corrections, { from: r.from, to: r.to })
  return (
    <>
      {can ? (
        <Section title="Re-price usage">
          <p className="muted">
            Re-prices priced events of one model with the catalog as it is now; each changed event gets a correction.
          </p>
          <RepriceForm onDone={() => void q.refetch()} />
        </Section>
      ) : null}
      <DataSection
        title="Corrections (last 90 days)"
        state={q}
        isEmpty={(d) => d.usageCorrections.length === 0}
        empty="No corrections."
      >
        {(d) => (
          <div className="table-wrap">
            <table data-testid="corrections">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Customer</th>
                  <th scope="col">Model</th>
                  <th scope="col" className="num">
                    Was
                  </th>
                  <th scope="col" className="num">
                    Now
                  </th>
                  <th scope="col" className="num">
                    Change
                  </th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {d.usageCorrections.map((c) => (
                  <tr key={c.id}>
                    <td>{dateTime(c.createdAt)}</td>
                    <td>{c.customerId}</td>
                    <td>
                      {c.provider} {c.model}
                    </td>
                    <td className="num">{money(c.oldAmount, 'USD', true)}</td>
                    <td className="num">{money(c.newAmount, 'USD', true)}</td>
                    <td className="num">{money(c.amountDelta, 'USD', true)}</td>
                    <td>{c.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </DataSection>
    </>
  )
}
