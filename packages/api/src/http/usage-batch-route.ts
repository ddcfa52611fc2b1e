/**
 * POST /v1/usage/batch: recordUsageBatch without GraphQL, for high-volume ingest. The body is
 * `{"events": [...]}` (or a bare array) as application/json, or one event per line as
 * application/x-ndjson; each event is a UsageEventInput with the same field names and types.
 * Authenticated with an ADMIN tenant key ("Authorization: Bearer …" or "x-api-key: …").
 *
 * The events go to the same UsageService.record as recordUsageBatch (and so through the same
 * ingest pipeline, usage/pipeline.ts): the same validation, idempotency, rollups, budgets,
 * credits and alerts, one result per event in input order. 200 answers
 * `{"recorded","duplicates","rejected","results":[{"status","error":{"code","message","field"}|null}]}`
 * once the batch is durable. A body that recordUsageBatch would refuse as a whole (a value of the
 * wrong type, an unknown field, more than 1,000 events) answers 400 with
 * `{"error":{"code":"BAD_USER_INPUT","message","field"}}` and stores nothing; 401 / 403 for a
 * missing or READ_ONLY key, 413 past MAX_BODY_BYTES, 415 for another content type or an encoding,
 * 503 with Retry-After while the database is unavailable (a retry is safe: every event is idempotent).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TenantService } from '../auth/service.ts'
import type { Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { Admission, HttpRoute } from '../shared/http-route.ts'
import { httpStatusOf, isDomainError } from '../shared/errors.ts'
import { isTransientError } from '../shared/transient.ts'
import type { RecordResult } from '../usage/service.ts'
import type { UsageEventInput } from '../usage/validation.ts'
import { READ_ONLY_KEY } from '../schema/mutation-guard.ts'
import { nodeRequestId } from './admission.ts'
import { parseBatchBody } from './usage-batch-input.ts'

const USAGE_BATCH_PATH = '/v1/usage/batch'

/** Seconds a client is asked to wait before retrying while the database is unavailable. */
const USAGE_BATCH_RETRY_AFTER_SECONDS = 5

const NO_TENANT_KEY =
  'A valid Burnrate API key (a tenant secret key) is required: send "Authorization: Bearer br_sk_…" or "x-api-key: br_sk_…".'

type Format = 'json' | 'ndjson'

function formatOf(req: IncomingMessage): Format | null {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type === 'application/json') return 'json'
  if (type === 'application/x-ndjson' || type === 'application/ndjson' || type === 'application/jsonl') return 'ndjson'
  return null
}

function keyOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined
  const apiKey = req.headers['x-api-key']
  return bearer ?? (typeof apiKey === 'string' && apiKey.trim() ? apiKey.trim() : undefined)
}

const errorBody = (code: string, message: string, extra: Record<string, unknown> = {}) => ({
  error: { code, message, ...extra },
})

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

/** The response body: the counts and one result per event, as recordUsageBatch's selection of the same fields. */
function batchResponse(results: readonly RecordResult[]): string {
  let recorded = 0
  let duplicates = 0
  let rejected = 0
  const out = new Array<{ status: string; error: { code: string; message: string; field: string | null } | null }>(
    results.length,
  )
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    if (r.status === 'RECORDED') recorded += 1
    else if (r.status === 'DUPLICATE') duplicates += 1
    else rejected += 1
    out[i] = {
      status: r.status,
      error: r.error ? { code: r.error.code, message: r.error.message, field: r.error.field ?? null } : null,
    }
  }
  return JSON.stringify({ recorded, duplicates, rejected, results: out })
}

export interface UsageBatchRouteDeps {
  tenants: Pick<TenantService, 'authenticateKey'>
  usage: { record(tenant: Tenant, inputs: readonly UsageEventInput[]): Promise<RecordResult[]> }
  logger: Logger
  maxBodyBytes: number
}

export function usageBatchRoute(deps: UsageBatchRouteDeps): HttpRoute {
  /** The tenant of an ADMIN key, or the refusal. */
  async function tenantOf(
    req: IncomingMessage,
  ): Promise<{ tenant: Tenant } | { status: number; body: unknown; headers?: Record<string, string> }> {
    const key = keyOf(req)
    const found = key ? await deps.tenants.authenticateKey(key) : null
    if (!found)
      return {
        status: 401,
        body: errorBody('UNAUTHENTICATED', NO_TENANT_KEY),
        headers: { 'www-authenticate': 'Bearer' },
      }
    if (found.key.role !== 'ADMIN')
      return { status: 403, body: errorBody('FORBIDDEN', READ_ONLY_KEY, { reason: 'READ_ONLY' }) }
    return { tenant: found.tenant }
  }

  const unavailable = (requestId: string) => ({
    status: 503,
    body: errorBody('UNAVAILABLE', 'The database is unavailable; retry later (every event is idempotent).', {
      requestId,
    }),
    headers: { 'retry-after': String(USAGE_BATCH_RETRY_AFTER_SECONDS) },
  })

  return {
    method: 'POST',
    path: USAGE_BATCH_PATH,
    async admit(req): Promise<Admission> {
      if (!formatOf(req))
        return {
          ok: false,
          status: 415,
          payload: errorBody(
            'UNSUPPORTED_MEDIA_TYPE',
            `Unsupported content type "${req.headers['content-type'] ?? ''}": send application/json ({"events": [...]}) or application/x-ndjson (one event per line).`,
          ),
        }
      const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase()
      if (encoding !== '' && encoding !== 'identity')
        return {
          ok: false,
          status: 415,
          payload: errorBody(
            'UNSUPPORTED_MEDIA_TYPE',
            `Unsupported content encoding "${encoding}": send the body uncompressed.`,
          ),
        }
      try {
        const outcome = await tenantOf(req)
        if (!('tenant' in outcome))
          return { ok: false, status: outcome.status, headers: outcome.headers, payload: outcome.body }
      } catch (error) {
        const requestId = nodeRequestId(req)
        deps.logger.error('usage batch: tenant key could not be checked', { error: errorText(error) })
        if (isTransientError(error)) {
          const refusal = unavailable(requestId)
          return { ok: false, status: refusal.status, headers: refusal.headers, payload: refusal.body }
        }
        return {
          ok: false,
          status: 500,
          payload: errorBody('INTERNAL_SERVER_ERROR', 'Unexpected error.', { requestId }),
        }
      }
      return {
        ok: true,
        maxBodyBytes: deps.maxBodyBytes,
        tooLarge: (limit) =>
          errorBody(
            'PAYLOAD_TOO_LARGE',
            `The request body is larger than ${limit} bytes (MAX_BODY_BYTES); send smaller batches.`,
          ),
      }
    },
    async handle(req, res, body) {
      const requestId = String(req.headers['x-request-id'] ?? nodeRequestId(req))
      const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) =>
        send(res, status, typeof payload === 'string' ? payload : JSON.stringify(payload), headers)
      try {
        // Checked again (cached): the key may have been revoked while the body arrived.
        const outcome = await tenantOf(req)
        if (!('tenant' in outcome)) return reply(outcome.status, outcome.body, outcome.headers)
        const parsed = parseBatchBody(body.toString('utf8'), formatOf(req) ?? 'json')
        if (!parsed.ok) return reply(400, { error: parsed.error })
        const results = await deps.usage.record(outcome.tenant, parsed.events)
        return reply(200, batchResponse(results))
      } catch (error) {
        if (isDomainError(error) && !res.headersSent)
          return reply(
            httpStatusOf(error),
            errorBody(error.code, error.message, { ...(error.field ? { field: error.field } : {}), ...error.details }),
          )
        const transient = isTransientError(error)
        deps.logger.error('usage batch: ingest failed', { transient, error: errorText(error) })
        if (res.headersSent) return void res.destroy()
        if (transient) {
          const refusal = unavailable(requestId)
          return reply(refusal.status, refusal.body, refusal.headers)
        }
        return reply(500, errorBody('INTERNAL_SERVER_ERROR', 'Unexpected error.', { requestId }))
      }
    },
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))
