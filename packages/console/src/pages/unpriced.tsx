import Decimal from 'decimal.js'
import { useState } from 'react'
import { money, num } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery } from '../hooks.ts'
import { useRange } from '../range.tsx'
import { Async, MutationError, PageHeader, Section, Stat } from '../ui.tsx'

const Unpriced = graphql(`
  query UnpricedPage($from: DateTime!, $to: DateTime!) {
    tenant {
      currency
    }
    usageSummary(from: $from, to: $to, groupBy: [PROVIDER, MODEL]) {
      unpricedEvents
      events
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

export default function UnpricedPage() {
  const range = useRange('30d')
  const q = useQuery(Unpriced, { from: range.from, to: range.to })
  const can = useCanChange()
  return (
    <>
      <PageHeader title="Unpriced">{range.picker}</PageHeader>
      <Async state={q}>
        {(d) => (
          <>
            <div className="stats">
              <Stat label="Unpriced events" value={num(d.usageSummary.unpricedEvents)} testId="unpriced-events" />
              <Stat label="All events" value={num(d.usageSummary.events)} />
            </div>
            <Section title="Why events are unpriced">
              <p>
                An event is <strong>UNPRICED</strong> (not billed, never counted as 0) when its model is unknown to
                every price source (<code>UNKNOWN_MODEL</code>), when a usage type it reports has no price (
                <code>MISSING_USAGE_PRICE</code>) or when no price was in force at its time (
                <code>NO_PRICE_AT_TIME</code>). Each event's reason is shown by "Explain this charge" on its customer's
                page. The fix: a negotiated price for the model, then re-pricing its events.
              </p>
            </Section>
            {can ? (
              <Fix currency={d.tenant.currency} from={range.from} to={range.to} onDone={() => void q.refetch()} />
            ) : null}
          </>
        )}
      </Async>
    </>
  )
}

function Fix({ currency, from, to, onDone }: { currency: string; from: string; to: string; onDone: () => void }) {
  const override = useMutation(SetOverride)
  const reprice = useMutation(Reprice)
  const [v, setV] = useState({ provider: '', model: '', usageType: 'input', perMillion: '' })
  const [result, setResult] = useState<string | null>(null)
  return (
    <Section title="Add a price, then re-price">
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          void (async () => {
            setResult(null)
            const set = await override.run({
              input: {
                provider: v.provider,
                model: v.model,
                usageType: v.usageType,
                unitPrice: new Decimal(v.perMillion).div(1_000_000).toFixed(),
                effectiveFrom: from,
              },
            })
            if (!set) return
            const r = await reprice.run({ model: v.model, provider: v.provider || null, from, to })
            if (!r) return
            const x = r.repriceUsage
            setResult(
              `Re-priced ${num(x.examined)} events: ${num(x.corrected)} corrected (billed ${money(x.amountDelta, currency, true)}), ${num(x.unpriced)} still unpriced.`,
            )
            onDone()
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
        <div className="field">
          <label htmlFor="f-type">Usage type</label>
          <select id="f-type" value={v.usageType} onChange={(e) => setV({ ...v, usageType: e.target.value })}>
            {['input', 'output', 'cache_read', 'cache_write', 'request'].map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-price">Price per 1M ({currency})</label>
          <input
            id="f-price"
            inputMode="decimal"
            required
            pattern="\d+(\.\d+)?"
            value={v.perMillion}
            onChange={(e) => setV({ ...v, perMillion: e.target.value })}
          />
        </div>
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
