import { useState } from 'react'
import { dateTime, minorUnits, money, num } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery } from '../hooks.ts'
import { rangeOf } from '../range.tsx'
import { ActionButton, Badge, DataSection, FilterBar, MutationError, PageHeader, Pager, Section, Stat } from '../ui.tsx'

const Account = graphql(`
  query BillingAccount {
    tenant {
      currency
    }
    stripeAccount {
      mode
      keyHint
      meterId
      productId
      priceId
      eventName
      setupAt
      webhookSecretSet
      currency
      unitsPerCurrencyUnit
    }
  }
`)
const Pushes = graphql(`
  query BillingPushes($status: StripePushStatus, $after: String) {
    stripePushesPage(status: $status, first: 50, after: $after) {
      edges {
        node {
          identifier
          customerId
          stripeCustomerId
          windowStart
          value
          status
          attempts
          gaveUp
          lastError
          sentAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)
const CreditPushes = graphql(`
  query BillingCreditPushes($status: StripeCreditPushStatus, $after: String) {
    stripeCreditPushesPage(status: $status, first: 50, after: $after) {
      edges {
        node {
          identifier
          kind
          customerId
          periodStart
          amountMinor
          category
          status
          attempts
          gaveUp
          lastError
          createdAt
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)
const Expired = graphql(`
  query BillingExpired {
    stripeExpiredUsage(first: 100) {
      identifier
      customerId
      windowStart
      value
      status
    }
  }
`)
const Reconciliation = graphql(`
  query BillingReconciliation($from: DateTime!, $to: DateTime!) {
    stripeReconciliation(from: $from, to: $to) {
      customerId
      stripeCustomerId
      billedAmount
      billedUnits
      reportedUnits
      pendingUnits
      failedUnits
      expiredUnits
      differences
    }
  }
`)
const Invoices = graphql(`
  query BillingInvoices {
    stripeInvoices {
      id
      customerId
      status
      total
      currency
      periodStart
      periodEnd
      hostedInvoiceUrl
    }
  }
`)
const Retry = graphql(`
  mutation RetryPushes($ids: [String!]!) {
    retryStripePushes(identifiers: $ids) {
      identifier
      status
    }
  }
`)
const RetryCredit = graphql(`
  mutation RetryCreditPushes($ids: [String!]!) {
    retryStripeCreditPushes(identifiers: $ids) {
      identifier
      status
    }
  }
`)

const STATUSES = ['PENDING', 'SENT', 'FAILED', 'EXPIRED', 'SUPERSEDED'] as const
const CREDIT_STATUSES = ['PENDING', 'SENT', 'FAILED', 'SUPERSEDED', 'CANCELLED'] as const
const CREDIT_KINDS = { GRANT: 'Credit grant', VOID: 'Grant void', TRUE_UP: 'Minimum true-up' } as const

const statusTone = (status: string): 'ok' | 'bad' | 'neutral' =>
  status === 'SENT' ? 'ok' : status === 'FAILED' ? 'bad' : 'neutral'

/** The columns every push list ends with: status, attempts, Stripe's last error (and Retry on FAILED). */
function OutcomeHeaders({ retrying }: { retrying: boolean }) {
  return (
    <>
      <th scope="col">Status</th>
      <th scope="col" className="num">
        Attempts
      </th>
      <th scope="col">Last error</th>
      {retrying ? <th scope="col">Action</th> : null}
    </>
  )
}

function OutcomeCells({
  push,
  retry,
}: {
  push: { identifier: string; status: string; gaveUp: boolean; attempts: number; lastError: string | null }
  retry: { run: (variables: { ids: string[] }) => Promise<unknown>; pending: boolean } | null
}) {
  return (
    <>
      <td>
        <Badge tone={statusTone(push.status)}>{push.status}</Badge>
        {push.gaveUp ? <span className="muted"> gave up</span> : null}
      </td>
      <td className="num">{push.attempts}</td>
      <td>{push.lastError ?? '—'}</td>
      {retry ? (
        <td>
          <ActionButton action={retry} variables={{ ids: [push.identifier] }}>
            Retry
          </ActionButton>
        </td>
      ) : null}
    </>
  )
}

export default function Billing() {
  const account = useQuery(Account)
  return (
    <>
      <PageHeader title="Billing" />
      <DataSection title="Stripe account" state={account}>
        {(d) =>
          d.stripeAccount ? (
            <div className="stats" data-testid="stripe-account">
              <Stat label="Mode" value={d.stripeAccount.mode} />
              <Stat label="Key" value={<code>{d.stripeAccount.keyHint}</code>} />
              <Stat
                label="Billing set up"
                value={d.stripeAccount.setupAt ? <Badge tone="ok">yes</Badge> : <Badge tone="warn">not yet</Badge>}
                hint={d.stripeAccount.setupAt ? dateTime(d.stripeAccount.setupAt) : 'run setupStripeBilling'}
              />
              <Stat
                label="Meter"
                value={d.stripeAccount.meterId ?? '—'}
                hint={d.stripeAccount.eventName ?? undefined}
              />
              <Stat
                label="Webhook secret"
                value={
                  d.stripeAccount.webhookSecretSet ? <Badge tone="ok">set</Badge> : <Badge tone="warn">not set</Badge>
                }
              />
            </div>
          ) : (
            <p className="state empty" data-testid="stripe-account">
              Stripe is not connected: set credentials with setStripeCredentials, then setupStripeBilling.
            </p>
          )
        }
      </DataSection>
      <PushList />
      <CreditPushList currency={account.data?.tenant.currency ?? 'USD'} />
      <div className="grid2">
        <ExpiredList />
        <InvoiceList />
      </div>
      {account.data?.stripeAccount?.setupAt ? (
        <ReconciliationList />
      ) : (
        <Section title="Reconciliation with Stripe">
          <p className="state empty">Available once Stripe billing is set up.</p>
        </Section>
      )}
    </>
  )
}

/** A status filter over a paged list: changing the status starts again at the first page. */
function useStatusPages<S extends string>(initial: S) {
  const [status, setStatusState] = useState<S>(initial)
  const [cursors, setCursors] = useState<string[]>([])
  const setStatus = (next: S) => {
    setStatusState(next)
    setCursors([])
  }
  return { status, setStatus, cursors, setCursors, after: cursors[cursors.length - 1] ?? null }
}

function StatusFilter<S extends string>({
  id,
  label,
  statuses,
  value,
  onChange,
}: {
  id: string
  label: string
  statuses: readonly S[]
  value: S
  onChange: (status: S) => void
}) {
  return (
    <FilterBar label={label}>
      <div className="field">
        <label htmlFor={id}>Status</label>
        <select id={id} value={value} onChange={(e) => onChange(e.target.value as S)}>
          {statuses.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </div>
    </FilterBar>
  )
}

function PushList() {
  const pages = useStatusPages<(typeof STATUSES)[number]>('FAILED')
  const q = useQuery(Pushes, { status: pages.status, after: pages.after })
  const can = useCanChange()
  const retry = useMutation(Retry, { onDone: q.refetch })
  const retrying = can && pages.status === 'FAILED'
  return (
    <DataSection
      title="Pushes to Stripe"
      before={
        <>
          <StatusFilter
            id="push-status"
            label="Filter pushes to Stripe"
            statuses={STATUSES}
            value={pages.status}
            onChange={pages.setStatus}
          />
          <MutationError error={retry.error} />
        </>
      }
      state={q}
      isEmpty={(d) => d.stripePushesPage.edges.length === 0 && pages.cursors.length === 0}
      empty={`No ${pages.status.toLowerCase()} pushes.`}
    >
      {(d) => (
        <>
          <div className="table-wrap">
            <table data-testid="pushes">
              <thead>
                <tr>
                  <th scope="col">Window</th>
                  <th scope="col">Customer</th>
                  <th scope="col" className="num">
                    Units
                  </th>
                  <OutcomeHeaders retrying={retrying} />
                </tr>
              </thead>
              <tbody>
                {d.stripePushesPage.edges.map(({ node: p }) => (
                  <tr key={p.identifier}>
                    <td>{dateTime(p.windowStart)}</td>
                    <td>{p.customerId}</td>
                    <td className="num">{num(p.value, 6)}</td>
                    <OutcomeCells push={p} retry={retrying ? retry : null} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager cursors={pages.cursors} setCursors={pages.setCursors} pageInfo={d.stripePushesPage.pageInfo} />
        </>
      )}
    </DataSection>
  )
}

/** Credit grants, their voids and minimum true-ups sent to Stripe; a refused one can be sent again. */
function CreditPushList({ currency }: { currency: string }) {
  const pages = useStatusPages<(typeof CREDIT_STATUSES)[number]>('FAILED')
  const q = useQuery(CreditPushes, { status: pages.status, after: pages.after })
  const can = useCanChange()
  const retry = useMutation(RetryCredit, { onDone: q.refetch })
  const retrying = can && pages.status === 'FAILED'
  return (
    <DataSection
      title="Credit pushes to Stripe"
      before={
        <>
          <p className="muted">
            Prepaid credit grants (and their voids) become Stripe billing credit grants; a minimum commitment&apos;s
            true-up becomes an invoice item when its period closes.
          </p>
          <StatusFilter
            id="credit-push-status"
            label="Filter credit pushes to Stripe"
            statuses={CREDIT_STATUSES}
            value={pages.status}
            onChange={pages.setStatus}
          />
          <MutationError error={retry.error} />
        </>
      }
      state={q}
      isEmpty={(d) => d.stripeCreditPushesPage.edges.length === 0 && pages.cursors.length === 0}
      empty={`No ${pages.status.toLowerCase()} credit pushes.`}
    >
      {(d) => (
        <>
          <div className="table-wrap">
            <table data-testid="credit-pushes">
              <thead>
                <tr>
                  <th scope="col">Created</th>
                  <th scope="col">Customer</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Period</th>
                  <th scope="col" className="num">
                    Amount
                  </th>
                  <OutcomeHeaders retrying={retrying} />
                </tr>
              </thead>
              <tbody>
                {d.stripeCreditPushesPage.edges.map(({ node: p }) => (
                  <tr key={p.identifier}>
                    <td>{dateTime(p.createdAt)}</td>
                    <td>{p.customerId}</td>
                    <td>
                      {CREDIT_KINDS[p.kind]}
                      {p.category ? <span className="muted"> ({p.category.toLowerCase()})</span> : null}
                    </td>
                    <td>{p.periodStart.slice(0, 7)}</td>
                    <td className="num">{minorUnits(p.amountMinor, currency)}</td>
                    <OutcomeCells push={p} retry={retrying ? retry : null} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager cursors={pages.cursors} setCursors={pages.setCursors} pageInfo={d.stripeCreditPushesPage.pageInfo} />
        </>
      )}
    </DataSection>
  )
}

function ExpiredList() {
  const q = useQuery(Expired)
  return (
    <DataSection
      title="Expired usage"
      before={<p className="muted">Usage that arrived after Stripe's 35-day window and could not be sent.</p>}
      state={q}
      isEmpty={(d) => d.stripeExpiredUsage.length === 0}
      empty="No expired usage."
    >
      {(d) => (
        <table>
          <thead>
            <tr>
              <th scope="col">Window</th>
              <th scope="col">Customer</th>
              <th scope="col" className="num">
                Units
              </th>
            </tr>
          </thead>
          <tbody>
            {d.stripeExpiredUsage.map((p) => (
              <tr key={p.identifier}>
                <td>{dateTime(p.windowStart)}</td>
                <td>{p.customerId}</td>
                <td className="num">{num(p.value, 6)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </DataSection>
  )
}

function InvoiceList() {
  const q = useQuery(Invoices)
  return (
    <DataSection
      title="Invoices"
      state={q}
      isEmpty={(d) => d.stripeInvoices.length === 0}
      empty="No invoices from Stripe yet."
    >
      {(d) => (
        <table data-testid="invoices">
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Period</th>
              <th scope="col">Status</th>
              <th scope="col" className="num">
                Total
              </th>
            </tr>
          </thead>
          <tbody>
            {d.stripeInvoices.map((i) => (
              <tr key={i.id}>
                <td>{i.customerId ?? i.id}</td>
                <td>
                  {dateTime(i.periodStart)} – {dateTime(i.periodEnd)}
                </td>
                <td>
                  {i.hostedInvoiceUrl ? (
                    <a href={i.hostedInvoiceUrl} target="_blank" rel="noreferrer">
                      {i.status ?? 'open'}
                    </a>
                  ) : (
                    (i.status ?? '—')
                  )}
                </td>
                <td className="num">{money(i.total, (i.currency ?? 'usd').toUpperCase())}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </DataSection>
  )
}

function ReconciliationList() {
  const r = rangeOf('month')
  const now = new Date()
  const to = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours()),
  ).toISOString()
  const q = useQuery(Reconciliation, { from: r.from, to })
  return (
    <DataSection
      title="Reconciliation with Stripe (this month, whole hours)"
      state={q}
      isEmpty={(d) => d.stripeReconciliation.length === 0}
      empty="Nothing billed this month."
    >
      {(d) => (
        <div className="table-wrap">
          <table data-testid="reconciliation">
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col" className="num">
                  Billed
                </th>
                <th scope="col" className="num">
                  Billed units
                </th>
                <th scope="col" className="num">
                  Reported
                </th>
                <th scope="col" className="num">
                  Pending
                </th>
                <th scope="col" className="num">
                  Failed
                </th>
                <th scope="col">Differences</th>
              </tr>
            </thead>
            <tbody>
              {d.stripeReconciliation.map((x) => (
                <tr key={x.customerId}>
                  <td>{x.customerId}</td>
                  <td className="num">{money(x.billedAmount)}</td>
                  <td className="num">{num(x.billedUnits, 6)}</td>
                  <td className="num">{num(x.reportedUnits, 6)}</td>
                  <td className="num">{num(x.pendingUnits, 6)}</td>
                  <td className="num">{num(x.failedUnits, 6)}</td>
                  <td>
                    {x.differences.length ? (
                      x.differences.map((s) => (
                        <Badge key={s} tone="warn">
                          {s}
                        </Badge>
                      ))
                    ) : (
                      <Badge tone="ok">none</Badge>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </DataSection>
  )
}
