import { Fragment, useState } from 'react'
import { dateTime, num, relative } from '../format.ts'
import { graphql } from '../graphql.ts'
import { useCanChange, useMutation, useQuery } from '../hooks.ts'
import { ActionButton, Badge, DataSection, FilterBar, MutationError, PageHeader } from '../ui.tsx'

const Endpoints = graphql(`
  query WebhookEndpoints {
    webhookEndpoints {
      id
      url
      description
      eventTypes
      enabled
      createdAt
      secretRotatedAt
      previousSecretExpiresAt
    }
  }
`)
const Deliveries = graphql(`
  query WebhookDeliveries($status: WebhookDeliveryStatus, $after: String) {
    webhookDeliveriesPage(status: $status, first: 25, after: $after) {
      edges {
        node {
          id
          endpointId
          url
          eventType
          eventId
          status
          attempts
          lastStatusCode
          lastError
          createdAt
          deliveredAt
          nextAttemptAt
          attemptLog {
            attempt
            startedAt
            durationMs
            statusCode
            error
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
const Replay = graphql(`
  mutation Replay($id: ID!) {
    replayWebhookDelivery(id: $id) {
      id
      status
      attempts
    }
  }
`)
const Rotate = graphql(`
  mutation Rotate($id: ID!, $grace: Int) {
    rotateWebhookSecret(id: $id, expiresPreviousInSeconds: $grace) {
      secret
      previousSecretExpiresAt
    }
  }
`)

const STATUSES = ['PENDING', 'SUCCEEDED', 'DEAD'] as const
const tone = (s: string) => (s === 'SUCCEEDED' ? 'ok' : s === 'DEAD' ? 'bad' : 'neutral')

export default function Webhooks() {
  const endpoints = useQuery(Endpoints)
  const can = useCanChange()
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null)
  const rotate = useMutation(Rotate, {
    onDone: (r, { id }) => {
      setSecret({ id, secret: r.rotateWebhookSecret.secret })
      void endpoints.refetch()
    },
  })
  return (
    <>
      <PageHeader title="Webhooks" />
      <DataSection
        title="Endpoints"
        before={
          <>
            <MutationError error={rotate.error} />
            {secret ? (
              <div className="banner" role="status">
                New signing secret (shown once): <code data-testid="new-secret">{secret.secret}</code>. The previous one
                keeps signing for 24 hours.
              </div>
            ) : null}
          </>
        }
        state={endpoints}
        isEmpty={(d) => d.webhookEndpoints.length === 0}
        empty="No endpoints: create one with createWebhookEndpoint."
      >
        {(d) => (
          <div className="table-wrap">
            <table data-testid="endpoints">
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">State</th>
                  <th scope="col">Secret rotated</th>
                  {can ? <th scope="col">Action</th> : null}
                </tr>
              </thead>
              <tbody>
                {d.webhookEndpoints.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <code>{e.url}</code>
                      {e.description ? <div className="muted">{e.description}</div> : null}
                    </td>
                    <td>{e.eventTypes.join(', ')}</td>
                    <td>{e.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="warn">disabled</Badge>}</td>
                    <td>
                      {e.secretRotatedAt ? relative(e.secretRotatedAt) : 'never'}
                      {e.previousSecretExpiresAt ? (
                        <div className="muted">previous valid until {dateTime(e.previousSecretExpiresAt)}</div>
                      ) : null}
                    </td>
                    {can ? (
                      <td>
                        <ActionButton action={rotate} variables={{ id: e.id, grace: 86400 }} className="ghost">
                          Rotate secret
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
      <DeliveryLog />
    </>
  )
}

function DeliveryLog() {
  const [status, setStatus] = useState<(typeof STATUSES)[number] | ''>('')
  const [after, setAfter] = useState<string[]>([])
  const q = useQuery(Deliveries, { status: status || null, after: after[after.length - 1] ?? null })
  const can = useCanChange()
  const replay = useMutation(Replay, { onDone: q.refetch })
  const [open, setOpen] = useState<string | null>(null)
  return (
    <DataSection
      title="Deliveries"
      before={
        <>
          <FilterBar
            label="Filter deliveries"
            active={Boolean(status)}
            onClear={() => {
              setStatus('')
              setAfter([])
            }}
          >
            <div className="field">
              <label htmlFor="delivery-status">Status</label>
              <select
                id="delivery-status"
                value={status}
                onChange={(e) => {
                  setStatus(e.target.value as typeof status)
                  setAfter([])
                }}
              >
                <option value="">All</option>
                {STATUSES.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </div>
          </FilterBar>
          <MutationError error={replay.error} />
        </>
      }
      state={q}
      isEmpty={(d) => d.webhookDeliveriesPage.edges.length === 0}
      empty="No deliveries."
    >
      {(d) => (
        <>
          <div className="table-wrap">
            <table data-testid="deliveries">
              <thead>
                <tr>
                  <th scope="col">Created</th>
                  <th scope="col">Event</th>
                  <th scope="col">URL</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">
                    Attempts
                  </th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.webhookDeliveriesPage.edges.map(({ node: w }) => (
                  <Fragment key={w.id}>
                    <tr data-delivery={w.id}>
                      <td>{dateTime(w.createdAt)}</td>
                      <td>{w.eventType}</td>
                      <td>
                        <code>{w.url}</code>
                      </td>
                      <td>
                        <Badge tone={tone(w.status)}>{w.status}</Badge>
                      </td>
                      <td className="num">{num(w.attempts)}</td>
                      <td>{w.lastStatusCode ?? w.lastError ?? '—'}</td>
                      <td className="row">
                        <button
                          type="button"
                          className="ghost"
                          aria-expanded={open === w.id}
                          onClick={() => setOpen(open === w.id ? null : w.id)}
                        >
                          Attempts
                        </button>
                        {can && w.status === 'DEAD' ? (
                          <ActionButton action={replay} variables={{ id: w.id }}>
                            Replay
                          </ActionButton>
                        ) : null}
                      </td>
                    </tr>
                    {open === w.id ? (
                      <tr className="sub">
                        <td colSpan={7}>
                          {w.attemptLog.length ? (
                            <table>
                              <thead>
                                <tr>
                                  <th scope="col">#</th>
                                  <th scope="col">Started</th>
                                  <th scope="col" className="num">
                                    Duration
                                  </th>
                                  <th scope="col">Status</th>
                                  <th scope="col">Error</th>
                                </tr>
                              </thead>
                              <tbody>
                                {w.attemptLog.map((a) => (
                                  <tr key={a.attempt}>
                                    <td>{a.attempt}</td>
                                    <td>{dateTime(a.startedAt)}</td>
                                    <td className="num">{num(a.durationMs)} ms</td>
                                    <td>{a.statusCode ?? '—'}</td>
                                    <td>{a.error ?? '—'}</td>
                                  </tr>
                                ))}
                              </tbody>
                            </table>
                          ) : (
                            <p className="state empty">
                              Not attempted yet{w.nextAttemptAt ? `: next ${relative(w.nextAttemptAt)}` : ''}.
                            </p>
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
              disabled={!d.webhookDeliveriesPage.pageInfo.hasNextPage}
              onClick={() => setAfter([...after, d.webhookDeliveriesPage.pageInfo.endCursor!])}
            >
              Older
            </button>
          </div>
        </>
      )}
    </DataSection>
  )
}
