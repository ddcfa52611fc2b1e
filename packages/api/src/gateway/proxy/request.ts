/**
 * What a gateway request must carry: a Burnrate tenant key (checked on the headers, before the
 * body is read), the customer it is for, an optional feature, and a JSON object body with a model.
 */
import type { IncomingMessage } from 'node:http'
import type { Admission } from '../../http/body.ts'
import { jsonNestsDeeperThan } from '../../http/json-depth.ts'
import type { GatewayDeps } from './deps.ts'
import type { ProviderSpec } from './providers.ts'

const CUSTOMER_HEADER = 'burnrate-customer'
const FEATURE_HEADER = 'burnrate-feature'

/**
 * Deepest array/object nesting a request body may have. Real requests stay far below (a JSON
 * schema for structured output nests a few levels per object level); 20,000 levels overflowed the
 * worst-case estimate's JSON.stringify under a hard budget.
 */
const GATEWAY_MAX_JSON_DEPTH = 128

export const NO_TENANT_KEY =
  'A Burnrate tenant key is required: "Authorization: Bearer br_sk_…" or "x-api-key: br_sk_…".'

export const GATEWAY_DISABLED = 'The metering gateway is disabled on this server (GATEWAY_ENCRYPTION_KEY is not set).'

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' ? value.trim() : undefined
}

export function tenantKeyOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined
  return bearer ?? headerValue(req, 'x-api-key')
}

/** The tenant key is checked on the headers, before the body (up to MAX_BODY_BYTES) is read. */
export async function admit(deps: GatewayDeps, spec: ProviderSpec, req: IncomingMessage): Promise<Admission> {
  const refused = (status: number, type: string, message: string): Admission => ({
    ok: false,
    status,
    payload: spec.errorBody(type, message),
  })
  if (!deps.gateway.enabled) return refused(503, 'gateway_disabled', GATEWAY_DISABLED)
  const apiKey = tenantKeyOf(req)
  try {
    if (!apiKey || !(await deps.tenants.authenticate(apiKey)))
      return refused(401, 'authentication_error', NO_TENANT_KEY)
  } catch (error) {
    deps.logger.error('gateway: tenant key could not be checked', {
      provider: spec.provider,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    })
    return refused(500, 'internal_error', 'Unexpected gateway error.')
  }
  return {
    ok: true,
    maxBodyBytes: deps.config.MAX_BODY_BYTES,
    tooLarge: (limit) =>
      spec.errorBody('request_too_large', `The request body is larger than ${limit} bytes (MAX_BODY_BYTES).`),
  }
}

/** The call's customer, feature and body; or why the request is invalid (an `invalid_request_error`). */
export function readRequest(
  req: IncomingMessage,
  rawBody: Buffer,
):
  | { ok: true; customerId: string; feature: string | null; payload: Record<string, unknown> }
  | { ok: false; message: string } {
  const customerId = headerValue(req, CUSTOMER_HEADER)
  if (!customerId || customerId.length > 255)
    return {
      ok: false,
      message: `Name the customer this call is for in the ${'Burnrate-Customer'} header (1-255 characters).`,
    }
  const feature = headerValue(req, FEATURE_HEADER) || null
  if (feature && feature.length > 100) return { ok: false, message: 'Burnrate-Feature is longer than 100 characters.' }

  const text = rawBody.toString('utf8')
  if (jsonNestsDeeperThan(text, GATEWAY_MAX_JSON_DEPTH))
    return {
      ok: false,
      message: `The request body nests arrays and objects more than ${GATEWAY_MAX_JSON_DEPTH} levels deep.`,
    }
  let payload: unknown
  try {
    payload = JSON.parse(text)
  } catch {
    return { ok: false, message: 'The request body is not valid JSON.' }
  }
  if (
    !payload ||
    typeof payload !== 'object' ||
    Array.isArray(payload) ||
    typeof (payload as { model?: unknown }).model !== 'string'
  )
    return { ok: false, message: 'The request body must be a JSON object with a "model".' }
  return { ok: true, customerId, feature, payload: payload as Record<string, unknown> }
}
