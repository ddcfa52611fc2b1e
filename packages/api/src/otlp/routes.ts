/**
 * POST /v1/traces: OTLP/HTTP trace export (protobuf or JSON, gzip or not), authenticated with
 * the tenant key. Answers per the OTLP/HTTP specification: 200 with an ExportTraceServiceResponse
 * (partial_success when spans were rejected: their count and why), 400 for a payload that cannot
 * be decoded, 401 without a valid key, 413 past the size limits, 415 for another content type or
 * encoding — none of which a retry can fix — and 503 with Retry-After only when the database is
 * unavailable (a retry is safe: each span's event is idempotent). Error bodies are google.rpc.Status
 * in the request's encoding.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import type { TenantService } from '../auth/service.ts'
import type { Logger } from '../logger.ts'
import type { Admission, HttpRoute } from '../shared/http-route.ts'
import { isTransientError } from '../shared/transient.ts'
import { decodeJsonRequest } from './json.ts'
import { decodeProtobufRequest, encodeProtobufResponse, encodeProtobufStatus, OtlpDecodeError } from './proto.ts'
import type { OtlpExportResult, OtlpService } from './service.ts'
import type { OtlpResourceSpans } from './types.ts'

const gunzipAsync = promisify(gunzip)

const OTLP_TRACES_PATH = '/v1/traces'

/** Seconds an exporter is asked to wait before retrying while the database is unavailable. */
const OTLP_RETRY_AFTER_SECONDS = 5

/** google.rpc.Code values used in error bodies. */
const RPC = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 }

type Encoding = 'protobuf' | 'json'

const CONTENT_TYPES: Record<Encoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' }

function encodingOf(req: IncomingMessage): Encoding | null {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type === 'application/x-protobuf' || type === 'application/protobuf') return 'protobuf'
  if (type === 'application/json') return 'json'
  return null
}

function compressionOf(req: IncomingMessage): 'gzip' | 'none' | null {
  const value = (req.headers['content-encoding'] ?? '').trim().toLowerCase()
  if (value === '' || value === 'identity') return 'none'
  if (value === 'gzip' || value === 'x-gzip') return 'gzip'
  return null
}

function tenantKeyOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined
  const apiKey = req.headers['x-api-key']
  return bearer ?? (typeof apiKey === 'string' && apiKey.trim() ? apiKey.trim() : undefined)
}

/** A google.rpc.Status body in the request's encoding (JSON for a request whose encoding is unknown). */
function statusBody(encoding: Encoding | null, code: number, message: string): { type: string; body: Buffer } {
  if (encoding === 'protobuf')
    return { type: CONTENT_TYPES.protobuf, body: Buffer.from(encodeProtobufStatus(code, message)) }
  return { type: CONTENT_TYPES.json, body: Buffer.from(JSON.stringify({ code, message })) }
}

function send(res: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string> = {}) {
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': body.length })
  res.end(body)
}

const NO_TENANT_KEY =
  'A Burnrate tenant key is required: "Authorization: Bearer br_sk_…" (OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer br_sk_…") or "x-api-key: br_sk_…".'

export interface OtlpRouteDeps {
  tenants: TenantService
  otlp: OtlpService
  logger: Logger
  maxBodyBytes: number
  /** Largest body after gzip decompression. */
  maxDecompressedBytes: number
  /** Told of every export (metrics). */
  onExport?(outcome: { encoding: Encoding; result: OtlpExportResult | null; status: number; seconds: number }): void
}

export function otlpTracesRoute(deps: OtlpRouteDeps): HttpRoute {
  const refused = (
    encoding: Encoding | null,
    status: number,
    code: number,
    message: string,
    headers: Record<string, string> = {},
  ): Admission => {
    const { type, body } = statusBody(encoding, code, message)
    return { ok: false, status, headers: { ...headers, 'content-type': type }, payload: body }
  }

  return {
    method: 'POST',
    path: OTLP_TRACES_PATH,
    async admit(req) {
      const encoding = encodingOf(req)
      if (!encoding)
        return refused(
          null,
          415,
          RPC.INVALID_ARGUMENT,
          `Unsupported content type "${req.headers['content-type'] ?? ''}": send application/x-protobuf or application/json.`,
        )
      if (!compressionOf(req))
        return refused(
          encoding,
          415,
          RPC.INVALID_ARGUMENT,
          `Unsupported content encoding "${req.headers['content-encoding']}": send gzip or none.`,
        )
      const key = tenantKeyOf(req)
      try {
        if (!key || !(await deps.tenants.authenticate(key)))
          return refused(encoding, 401, RPC.UNAUTHENTICATED, NO_TENANT_KEY, { 'www-authenticate': 'Bearer' })
      } catch (error) {
        deps.logger.error('otlp: tenant key could not be checked', { error: errorText(error) })
        return isTransientError(error)
          ? refused(encoding, 503, RPC.UNAVAILABLE, 'The database is unavailable; retry later.', {
              'retry-after': String(OTLP_RETRY_AFTER_SECONDS),
            })
          : refused(encoding, 500, RPC.INTERNAL, 'Unexpected error.')
      }
      return {
        ok: true,
        maxBodyBytes: deps.maxBodyBytes,
        tooLarge: (limit) => ({
          code: RPC.RESOURCE_EXHAUSTED,
          message: `The request body is larger than ${limit} bytes (MAX_BODY_BYTES); export smaller batches.`,
        }),
      }
    },
    async handle(req, res, raw) {
      const started = process.hrtime.bigint()
      const encoding = encodingOf(req)!
      const reply = (status: number, result: OtlpExportResult | null, type: string, body: Buffer, headers = {}) => {
        send(res, status, type, body, headers)
        deps.onExport?.({ encoding, result, status, seconds: Number(process.hrtime.bigint() - started) / 1e9 })
      }
      const fail = (status: number, code: number, message: string, headers: Record<string, string> = {}) => {
        const { type, body } = statusBody(encoding, code, message)
        reply(status, null, type, body, headers)
      }
      const tenant = await deps.tenants.authenticate(tenantKeyOf(req) ?? '').catch(() => null)
      if (!tenant) return fail(401, RPC.UNAUTHENTICATED, NO_TENANT_KEY, { 'www-authenticate': 'Bearer' })

      let body = raw
      if (compressionOf(req) === 'gzip') {
        try {
          body = await gunzipAsync(raw, { maxOutputLength: deps.maxDecompressedBytes })
        } catch (error) {
          if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
            return fail(
              413,
              RPC.RESOURCE_EXHAUSTED,
              `The decompressed body is larger than ${deps.maxDecompressedBytes} bytes; export smaller batches.`,
            )
          return fail(400, RPC.INVALID_ARGUMENT, `The body is not valid gzip: ${errorText(error)}`)
        }
      }
      let request: OtlpResourceSpans[]
      try {
        request = encoding === 'protobuf' ? decodeProtobufRequest(body) : decodeJsonRequest(body.toString('utf8'))
      } catch (error) {
        if (error instanceof OtlpDecodeError) return fail(400, RPC.INVALID_ARGUMENT, error.message)
        throw error
      }

      let result: OtlpExportResult
      try {
        result = await deps.otlp.export(tenant, request)
      } catch (error) {
        const transient = isTransientError(error)
        deps.logger.error('otlp: export failed', { tenantId: tenant.id, transient, error: errorText(error) })
        if (transient)
          return fail(503, RPC.UNAVAILABLE, 'The database is unavailable; retry later.', {
            'retry-after': String(OTLP_RETRY_AFTER_SECONDS),
          })
        return fail(500, RPC.INTERNAL, 'Unexpected error.')
      }
      if (result.rejected > 0)
        deps.logger.info('otlp: spans rejected', {
          tenantId: tenant.id,
          rejected: result.rejected,
          reason: result.errorMessage,
        })
      const partial = result.rejected > 0 ? { rejectedSpans: result.rejected, errorMessage: result.errorMessage } : null
      if (encoding === 'protobuf')
        return reply(200, result, CONTENT_TYPES.protobuf, Buffer.from(encodeProtobufResponse(partial)))
      return reply(
        200,
        result,
        CONTENT_TYPES.json,
        // int64 is a string in OTLP/JSON.
        Buffer.from(
          JSON.stringify(
            partial
              ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } }
              : {},
          ),
        ),
      )
    },
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))
