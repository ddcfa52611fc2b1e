import { Fragment, useState } from 'react'
import { dateTime } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useQuery } from '../hooks.ts'
import { Badge, DataSection, FilterBar, PageHeader, Pager } from '../ui.tsx'

const Log = graphql(`
  query AuditLog($filter: AuditLogFilter, $after: String) {
    auditLog(filter: $filter, first: 50, after: $after) {
      edges {
        node {
          id
          at
          actorKeyName
          actorRole
          actorAuthMethod
          action
          entityType
          entityId
          before
          after
          requestId
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)

const ENTITY_TYPES = [
  'PricingPlan',
  'RatingPlan',
  'Budget',
  'CreditGrant',
  'CreditSettings',
  'PriceOverride',
  'PendingPriceChange',
  'UsageCorrection',
  'RatingRerating',
  'WebhookEndpoint',
  'StripeAccount',
  'GatewayProviderKey',
  'ProviderAdminKey',
  'ReconciliationTolerance',
  'Tenant',
  'ApiKey',
]

export default function Audit() {
  const [entityType, setEntityType] = useState('')
  const [action, setAction] = useState('')
  const [entityId, setEntityId] = useState('')
  const [after, setAfter] = useState<string[]>([])
  const [open, setOpen] = useState<string | null>(null)
  const filter = {
    ...(entityType ? { entityType } : {}),
    ...(action.trim() ? { action: action.trim() } : {}),
    ...(entityId.trim() ? { entityId: entityId.trim() } : {}),
  }
  const q = useQuery(Log, { filter, after: after[after.length - 1] ?? null })
  return (
    <>
      <PageHeader title="Audit log" />
      <DataSection
        title="Changes to money and configuration"
        before={
          <FilterBar
            label="Filter the audit log"
            active={Boolean(entityType || action || entityId)}
            onClear={() => {
              setEntityType('')
              setAction('')
              setEntityId('')
              setAfter([])
            }}
          >
            <div className="field">
              <label htmlFor="a-type">What</label>
              <select
                id="a-type"
                value={entityType}
                onChange={(e) => {
                  setEntityType(e.target.value)
                  setAfter([])
                }}
              >
                <option value="">Everything</option>
                {ENTITY_TYPES.map((t) => (
                  <option key={t}>{t}</option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="a-action">Action</label>
              <input
                id="a-action"
                value={action}
                placeholder="e.g. budget.set"
                onChange={(e) => setAction(e.target.value)}
              />
            </div>
            <div className="field">
              <label htmlFor="a-entity">Entity id</label>
              <input id="a-entity" value={entityId} onChange={(e) => setEntityId(e.target.value)} />
            </div>
          </FilterBar>
        }
        state={q}
        isEmpty={(d) => d.auditLog.edges.length === 0}
        empty="No changes recorded for this filter."
      >
        {(d) => (
          <>
            <div className="table-wrap">
              <table data-testid="audit">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Action</th>
                    <th scope="col">Entity</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {d.auditLog.edges.map(({ node: a }) => (
                    <Fragment key={a.id}>
                      <tr data-audit={a.action}>
                        <td>{dateTime(a.at)}</td>
                        <td>
                          {a.actorKeyName ?? 'system'} {a.actorRole ? <Badge>{a.actorRole}</Badge> : null}
                          {a.actorAuthMethod === 'SESSION' ? <div className="muted">console</div> : null}
                        </td>
                        <td>
                          <code>{a.action}</code>
                        </td>
                        <td>
                          {a.entityType} <span className="muted">{a.entityId ?? ''}</span>
                        </td>
                        <td>
                          <button
                            type="button"
                            className="ghost"
                            aria-expanded={open === a.id}
                            onClick={() => setOpen(open === a.id ? null : a.id)}
                          >
                            Before / after
                          </button>
                        </td>
                      </tr>
                      {open === a.id ? (
                        <tr className="sub">
                          <td colSpan={5}>
                            <div className="grid2">
                              <div>
                                <h3>Before</h3>
                                <pre>{a.before === null ? '(created)' : JSON.stringify(a.before, null, 2)}</pre>
                              </div>
                              <div>
                                <h3>After</h3>
                                <pre>{a.after === null ? '(deleted)' : JSON.stringify(a.after, null, 2)}</pre>
                              </div>
                            </div>
                            {a.requestId ? <p className="muted">Request {a.requestId}</p> : null}
                          </td>
                        </tr>
                      ) : null}
                    </Fragment>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager cursors={after} setCursors={setAfter} pageInfo={d.auditLog.pageInfo} labels={['Newer', 'Older']} />
          </>
        )}
      </DataSection>
    </>
  )
}
