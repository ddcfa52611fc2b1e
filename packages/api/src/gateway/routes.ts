import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  anthropic as anthropicMeter,
  openai as openaiMeter,
  type MeteredUsage,
  type UsageCollector,
} from '@burnrate/sdk'
import type { HttpRoute } from '../shared/http-route.ts'
import type { Admission } from '../http/body.ts'
import { jsonNestsDeeperThan } from '../http/json-depth.ts'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { TenantService } from '../auth/service.ts'
import type { SingleIngest } from '../usage/group-commit.ts'
import type { CatalogService } from '../catalog/types.ts'
import type { Db } from '../db/database.ts'
import type { RatingService } from '../rating/service.ts'
import { holdForCall, type BudgetGate } from './budget-hold.ts'
import type { GatewayProvider } from './db-types.ts'
import type { GatewayService } from './service.ts'
import { SseEventSplitter } from './sse.ts'

export type { BudgetGate }

export interface GatewayDeps {
  db: Db
  config: Config
  clock: Clock
  /** Prices a call's worst case under a hard budget (the catalog ingest prices with). */
  catalog: CatalogService
  logger: Logger
  tenants: TenantService
  /** Each call's usage goes through the same group commit as single recordUsage calls. */
  usage: Pick<SingleIngest, 'recordOne'>
  gateway: GatewayService
  /** The customer's rating plan and its period meters: a call's worst case is rated as ingest will rate it. */
  rating: Pick<RatingService, 'book' | 'meters'>
  /**
   * Hard budgets: a call's worst-case cost is reserved before it goes out and settled by its
   * recorded usage. Structural, so the gateway works with or without the budgets service wired in.
   */
  budgets?: BudgetGate
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch
}

interface Prepared {
  body: Record<string, unknown>
  /** The gateway asked for usage the client did not: hold back the usage-only chunk it adds. */
  stripUsageChunk: boolean
}

interface ProviderSpec {
  provider: GatewayProvider
  path: string
  upstreamUrl(config: Config): string
  upstreamHeaders(apiKey: string, req: IncomingMessage): Record<string, string>
  errorBody(type: string, message: string): unknown
  prepare(body: Record<string, unknown>): Prepared
  usageOf(json: unknown, startedAt: Date): MeteredUsage
  streamCollector(startedAt: Date): UsageCollector<unknown>
  isUsageOnlyChunk(json: unknown): boolean
}

const passHeader = (req: IncomingMessage, name: string): Record<string, string> => {
  const value = req.headers[name]
  return typeof value === 'string' && value ? { [name]: value } : {}
}

const OPENAI: ProviderSpec = {
  provider: 'openai',
  path: '/v1/chat/completions',
  upstreamUrl: (config) => `${config.GATEWAY_OPENAI_URL.replace(/\/+$/, '')}/v1/chat/completions`,
  upstreamHeaders: (apiKey, req) => ({ authorization: `Bearer ${apiKey}`, ...passHeader(req, 'openai-beta') }),
  errorBody: (type, message) => ({ error: { message, type, param: null, code: type } }),
  prepare(body) {
    if (body.stream !== true) return { body, stripUsageChunk: false }
    const options =
      body.stream_options && typeof body.stream_options === 'object'
        ? (body.stream_options as Record<string, unknown>)
        : {}
    // Without include_usage a streamed completion never says what it cost: the gateway always asks.
    return { body: openaiMeter.withStreamUsage(body), stripUsageChunk: options.include_usage !== true }
  },
  usageOf: (json) => openaiMeter.chatCompletion(json as openaiMeter.OpenAIChatCompletionLike),
  streamCollector: () => openaiMeter.chatCompletionStream(),
  isUsageOnlyChunk: (json) => {
    const chunk = json as { choices?: unknown; usage?: unknown }
    return Array.isArray(chunk.choices) && chunk.choices.length === 0 && !!chunk.usage
  },
}

const ANTHROPIC: ProviderSpec = {
  provider: 'anthropic',
  path: '/v1/messages',
  upstreamUrl: (config) => `${config.GATEWAY_ANTHROPIC_URL.replace(/\/+$/, '')}/v1/messages`,
  upstreamHeaders: (apiKey, req) => ({
    'x-api-key': apiKey,
    'anthropic-version':
      typeof req.headers['anthropic-version'] === 'string' ? req.headers['anthropic-version'] : '2023-06-01',
    ...passHeader(req, 'anthropic-beta'),
  }),
  errorBody: (type, message) => ({ type: 'error', error: { type, message } }),
  prepare: (body) => ({ body, stripUsageChunk: false }),
  usageOf: (json, startedAt) =>
    anthropicMeter.message(json as anthropicMeter.AnthropicMessageLike, { timestamp: startedAt }),
  streamCollector: (startedAt) => anthropicMeter.messageStream({ timestamp: startedAt }),
  isUsageOnlyChunk: () => false,
}

/** Response headers that describe this hop (or a body we re-frame), not the provider's answer. */
const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authenticate',
  'set-cookie',
  'alt-svc',
])

function responseHeaders(upstream: Response): Record<string, string> {
  const out: Record<string, string> = {}
  upstream.headers.forEach((value, name) => {
    if (!HOP_HEADERS.has(name)) out[name] = value
  })
  return out
}

const CUSTOMER_HEADER = 'burnrate-customer'
const FEATURE_HEADER = 'burnrate-feature'

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' ? value.trim() : undefined
}

class UpstreamTimeout extends Error {
  constructor(ms: number) {
    super(`the provider did not answer within ${ms} ms`)
    this.name = 'UpstreamTimeout'
  }
}

class ClientGone extends Error {
  constructor() {
    super('the client disconnected')
    this.name = 'ClientGone'
  }
}

/**
 * OpenAI-compatible `POST /v1/chat/completions` and Anthropic-compatible `POST /v1/messages`.
 * The caller authenticates with its Burnrate tenant key (Authorization: Bearer, or x-api-key as
 * Anthropic clients send it) and names its customer in `Burnrate-Customer`; the call goes to the
 * provider with the tenant's stored key and comes back unchanged (SSE streams piped through as
 * they arrive), and the provider's own usage numbers are recorded under the provider's response
 * id — once, even when the client disconnects mid-stream.
 */
export function gatewayRoutes(deps: GatewayDeps): HttpRoute[] {
  return [OPENAI, ANTHROPIC].map((spec) => ({
    method: 'POST' as const,
    path: spec.path,
    admit: (req) => admit(deps, spec, req),
    handle: (req, res, body) => proxy(deps, spec, req, res, body),
  }))
}

/**
 * Deepest array/object nesting a request body may have. Real requests stay far below (a JSON
 * schema for structured output nests a few levels per object level); 20,000 levels overflowed the
 * worst-case estimate's JSON.stringify under a hard budget.
 */
const GATEWAY_MAX_JSON_DEPTH = 128

const NO_TENANT_KEY = 'A Burnrate tenant key is required: "Authorization: Bearer br_sk_…" or "x-api-key: br_sk_…".'

function tenantKeyOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined
  return bearer ?? headerValue(req, 'x-api-key')
}

/** The tenant key is checked on the headers, before the body (up to MAX_BODY_BYTES) is read. */
async function admit(deps: GatewayDeps, spec: ProviderSpec, req: IncomingMessage): Promise<Admission> {
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

const GATEWAY_DISABLED = 'The metering gateway is disabled on this server (GATEWAY_ENCRYPTION_KEY is not set).'

async function proxy(
  deps: GatewayDeps,
  spec: ProviderSpec,
  req: IncomingMessage,
  res: ServerResponse,
  rawBody: Buffer,
): Promise<void> {
  const { config, clock, logger } = deps
  const fetchImpl = deps.fetch ?? globalThis.fetch
  const startedAt = clock.now()
  // Held against a hard budget: settled by the call's recorded usage, else released — before the
  // client has the answer, so a retry finds the budget free again.
  let held: { tenant: Tenant; id: string } | null = null
  let settled = false
  const releaseHold = async (): Promise<void> => {
    if (!held || settled) return
    const { tenant, id } = held
    held = null
    await deps.budgets?.release(tenant, id).catch((error: unknown) => {
      logger.error('gateway: budget reservation not released; it lapses at its expiry', {
        tenantId: tenant.id,
        reservationId: id,
        error: error instanceof Error ? error.message : String(error),
      })
    })
  }
  const fail = async (status: number, type: string, message: string): Promise<void> => {
    await releaseHold()
    if (res.headersSent) return void res.destroy()
    const body = JSON.stringify(spec.errorBody(type, message))
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }

  // The client may leave at any time: stop the upstream call (the provider stops generating and
  // billing) and record what was seen.
  const upstreamAbort = new AbortController()
  let clientGone = false
  res.on('close', () => {
    if (res.writableFinished) return
    clientGone = true
    upstreamAbort.abort(new ClientGone())
  })
  let idleTimer: ReturnType<typeof setTimeout> | undefined
  const armTimeout = () => {
    clearTimeout(idleTimer)
    idleTimer = setTimeout(
      () => upstreamAbort.abort(new UpstreamTimeout(config.GATEWAY_TIMEOUT_MS)),
      config.GATEWAY_TIMEOUT_MS,
    )
  }

  try {
    if (!deps.gateway.enabled) return fail(503, 'gateway_disabled', GATEWAY_DISABLED)

    const apiKey = tenantKeyOf(req)
    const tenant = apiKey ? await deps.tenants.authenticate(apiKey) : null
    if (!tenant) return fail(401, 'authentication_error', NO_TENANT_KEY)

    const customerId = headerValue(req, CUSTOMER_HEADER)
    if (!customerId || customerId.length > 255)
      return fail(
        400,
        'invalid_request_error',
        `Name the customer this call is for in the ${'Burnrate-Customer'} header (1-255 characters).`,
      )
    const feature = headerValue(req, FEATURE_HEADER) || null
    if (feature && feature.length > 100)
      return fail(400, 'invalid_request_error', 'Burnrate-Feature is longer than 100 characters.')

    const text = rawBody.toString('utf8')
    if (jsonNestsDeeperThan(text, GATEWAY_MAX_JSON_DEPTH)) {
      return fail(
        400,
        'invalid_request_error',
        `The request body nests arrays and objects more than ${GATEWAY_MAX_JSON_DEPTH} levels deep.`,
      )
    }
    let payload: unknown
    try {
      payload = JSON.parse(text)
    } catch {
      return fail(400, 'invalid_request_error', 'The request body is not valid JSON.')
    }
    if (
      !payload ||
      typeof payload !== 'object' ||
      Array.isArray(payload) ||
      typeof (payload as { model?: unknown }).model !== 'string'
    ) {
      return fail(400, 'invalid_request_error', 'The request body must be a JSON object with a "model".')
    }

    const providerKey = await deps.gateway.providerKey(tenant.id, spec.provider)
    if (!providerKey)
      return fail(
        400,
        'provider_key_missing',
        `No ${spec.provider} key is stored for this tenant: set one with the setProviderKey mutation.`,
      )

    const prepared = spec.prepare(payload as Record<string, unknown>)
    if (deps.budgets) {
      const hold = await holdForCall(
        {
          db: deps.db,
          clock,
          catalog: deps.catalog,
          rating: deps.rating,
          budgets: deps.budgets,
          defaultMaxOutputTokens: config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS,
          // Covers a call that answers (or times out) within GATEWAY_TIMEOUT_MS; a crashed process's hold lapses by itself.
          ttlSeconds: Math.min(3600, Math.ceil(config.GATEWAY_TIMEOUT_MS / 1000) + 60),
        },
        spec.provider,
        tenant,
        customerId,
        payload as Record<string, unknown>,
      )
      if (hold.kind === 'refused') return fail(402, hold.type, hold.message)
      if (hold.kind === 'held') {
        if (hold.reservationId) held = { tenant, id: hold.reservationId }
        // Under a hard budget the output cap the estimate assumed is the one the provider gets.
        if (hold.bound.defaultedOutputCap && spec.provider === 'openai')
          prepared.body = { ...prepared.body, max_completion_tokens: config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS }
      }
    }
    const record = recorder(deps, spec, tenant, customerId, feature, held?.id ?? null)

    armTimeout()
    let upstream: Response
    try {
      upstream = await fetchImpl(spec.upstreamUrl(config), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: typeof req.headers.accept === 'string' ? req.headers.accept : 'application/json',
          'accept-encoding': 'identity',
          ...passHeader(req, 'user-agent'),
          ...spec.upstreamHeaders(providerKey, req),
        },
        body: JSON.stringify(prepared.body),
        signal: upstreamAbort.signal,
      })
    } catch (error) {
      clearTimeout(idleTimer)
      if (clientGone) return
      const reason = upstreamAbort.signal.reason
      if (reason instanceof UpstreamTimeout)
        return fail(504, 'upstream_timeout', `The ${spec.provider} API ${reason.message}.`)
      logger.warn('gateway: provider unreachable', {
        provider: spec.provider,
        error:
          error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error),
      })
      return fail(502, 'upstream_unreachable', `The ${spec.provider} API could not be reached.`)
    }

    const headers = responseHeaders(upstream)
    const isStream = (upstream.headers.get('content-type') ?? '').includes('text/event-stream')

    if (upstream.ok && isStream && upstream.body) {
      res.writeHead(upstream.status, headers)
      res.flushHeaders()
      const collector = spec.streamCollector(startedAt)
      const splitter = new SseEventSplitter()
      let complete = false
      try {
        for await (const bytes of upstream.body as unknown as AsyncIterable<Uint8Array>) {
          armTimeout()
          for (const event of splitter.push(bytes)) {
            let json: unknown
            if (event.data !== null && event.data !== '[DONE]') {
              try {
                json = JSON.parse(event.data)
                collector.push(json)
              } catch {
                json = undefined
              }
            }
            if (prepared.stripUsageChunk && json !== undefined && spec.isUsageOnlyChunk(json)) continue
            if (!res.write(event.raw)) await drained(res)
          }
        }
        const rest = splitter.rest()
        if (rest) res.write(rest)
        complete = true
      } catch (error) {
        const reason = upstreamAbort.signal.reason
        if (!(reason instanceof ClientGone)) {
          logger.warn('gateway: stream interrupted', {
            provider: spec.provider,
            error: reason instanceof Error ? reason.message : error instanceof Error ? error.message : String(error),
          })
        }
      } finally {
        clearTimeout(idleTimer)
      }
      // Recorded before the response ends: the request (and a graceful shutdown) waits for it,
      // while the client already has every byte the provider sent.
      settled = await record(collector.usage(), complete ? 'complete' : 'partial')
      await releaseHold()
      if (!res.destroyed) {
        if (complete) res.end()
        else res.destroy()
      }
      return
    }

    // A whole JSON answer (or a provider error): relayed byte for byte with its status.
    let buffer: Buffer
    try {
      buffer = Buffer.from(await upstream.arrayBuffer())
    } catch {
      clearTimeout(idleTimer)
      if (clientGone) return
      const reason = upstreamAbort.signal.reason
      if (reason instanceof UpstreamTimeout)
        return fail(504, 'upstream_timeout', `The ${spec.provider} API ${reason.message}.`)
      return fail(502, 'upstream_unreachable', `The ${spec.provider} API closed the connection mid-answer.`)
    }
    clearTimeout(idleTimer)
    if (!upstream.ok) await releaseHold() // a provider error: no call to bill
    res.writeHead(upstream.status, { ...headers, 'content-length': buffer.length })
    res.write(buffer)
    if (upstream.ok) {
      let usage: MeteredUsage | null = null
      try {
        usage = spec.usageOf(JSON.parse(buffer.toString('utf8')), startedAt)
      } catch (error) {
        logger.warn('gateway: provider answer without usable usage; nothing recorded', {
          provider: spec.provider,
          error: error instanceof Error ? error.message : String(error),
        })
      }
      settled = await record(usage, 'complete')
      await releaseHold()
    }
    res.end()
  } catch (error) {
    clearTimeout(idleTimer)
    logger.error('gateway: unexpected error', {
      provider: spec.provider,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    })
    await fail(500, 'internal_error', 'Unexpected gateway error.')
  } finally {
    // Whatever path was taken (refused upstream, unreachable, timed out, no usage, not recorded): nothing stays held.
    await releaseHold()
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done)
      resolve()
    }
    res.once('drain', done).once('close', done)
  })
}

/**
 * Records one call's usage exactly once; a failure is logged with the whole event so it can be
 * replayed. With a budget reservation, the event carries its id and settles it: the answer says
 * whether it did (a newly recorded event), so the caller releases the reservation otherwise.
 */
function recorder(
  deps: GatewayDeps,
  spec: ProviderSpec,
  tenant: Tenant,
  customerId: string,
  feature: string | null,
  reservationId: string | null,
) {
  let done = false
  return async (usage: MeteredUsage | null, completeness: 'complete' | 'partial'): Promise<boolean> => {
    if (done) return false
    done = true
    if (!usage) {
      // OpenAI reports a stream's usage only in its last chunk: a stream cut before it has no provider numbers.
      deps.logger.warn('gateway: call ended without provider usage; nothing recorded', {
        provider: spec.provider,
        tenantId: tenant.id,
        customerId,
        completeness,
      })
      return false
    }
    const event = {
      id: usage.id,
      customerId,
      model: usage.model,
      provider: usage.provider ?? spec.provider,
      timestamp: new Date(usage.timestamp),
      inputTokens: usage.inputTokens ?? 0,
      outputTokens: usage.outputTokens ?? 0,
      cacheReadTokens: usage.cacheReadTokens ?? 0,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      reasoningTokens: usage.reasoningTokens ?? 0,
      units: usage.units ?? null,
      feature,
      metadata: completeness === 'partial' ? { source: 'gateway', partial: true } : { source: 'gateway' },
    }
    // Logged without the reservation: an event that did not settle it is released, and a replay must not name it.
    try {
      const result = await deps.usage.recordOne(tenant, reservationId ? { ...event, reservationId } : event)
      if (result?.status === 'REJECTED')
        deps.logger.error('gateway: usage rejected', { tenantId: tenant.id, event, error: result.error })
      return result?.status === 'RECORDED' && reservationId !== null
    } catch (error) {
      deps.logger.error('gateway: usage could not be recorded', {
        tenantId: tenant.id,
        event,
        error: error instanceof Error ? error.message : String(error),
      })
      return false
    }
  }
}
