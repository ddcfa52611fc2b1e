/**
 * The provider's side of a call: sending it, then relaying the answer to the client unchanged —
 * an SSE stream event by event as it arrives (usage collected on the way), or a whole JSON answer
 * byte for byte — and recording the call's usage before the response ends.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MeteredUsage } from '@burnrate/sdk'
import type { Logger } from '../../logger.ts'
import { SseEventSplitter } from '../sse.ts'
import { ClientGone, UpstreamTimeout, type Call } from './call.ts'
import type { GatewayDeps } from './deps.ts'
import { passHeader, type Prepared, type ProviderSpec } from './providers.ts'
import type { Recorder } from './recorder.ts'

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

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done)
      resolve()
    }
    res.once('drain', done).once('close', done)
  })
}

/** Sends the call to the provider; undefined when it could not be (the client has its error, or has left). */
export async function sendUpstream(
  { config, logger, fetch: fetchImpl = globalThis.fetch }: Pick<GatewayDeps, 'config' | 'logger' | 'fetch'>,
  spec: ProviderSpec,
  call: Call,
  req: IncomingMessage,
  providerKey: string,
  body: Record<string, unknown>,
): Promise<Response | undefined> {
  call.armTimeout()
  try {
    return await fetchImpl(spec.upstreamUrl(config), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: typeof req.headers.accept === 'string' ? req.headers.accept : 'application/json',
        'accept-encoding': 'identity',
        ...passHeader(req, 'user-agent'),
        ...spec.upstreamHeaders(providerKey, req),
      },
      body: JSON.stringify(body),
      signal: call.signal,
    })
  } catch (error) {
    call.stopTimeout()
    if (call.clientGone()) return undefined
    const reason = call.signal.reason
    if (reason instanceof UpstreamTimeout) {
      await call.fail(504, 'upstream_timeout', `The ${spec.provider} API ${reason.message}.`)
      return undefined
    }
    logger.warn('gateway: provider unreachable', {
      provider: spec.provider,
      error:
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error),
    })
    await call.fail(502, 'upstream_unreachable', `The ${spec.provider} API could not be reached.`)
    return undefined
  }
}

export interface Exchange {
  logger: Logger
  spec: ProviderSpec
  call: Call
  res: ServerResponse
  prepared: Prepared
  startedAt: Date
  record: Recorder
}

/** Relays the provider's answer (stream or whole) and records the call's usage. */
export async function relay(exchange: Exchange, upstream: Response): Promise<void> {
  const headers = responseHeaders(upstream)
  const isStream = (upstream.headers.get('content-type') ?? '').includes('text/event-stream')
  if (upstream.ok && isStream && upstream.body) return relayStream(exchange, upstream, upstream.body, headers)
  return relayWhole(exchange, upstream, headers)
}

async function relayStream(
  { logger, spec, call, res, prepared, startedAt, record }: Exchange,
  upstream: Response,
  body: ReadableStream<Uint8Array>,
  headers: Record<string, string>,
): Promise<void> {
  res.writeHead(upstream.status, headers)
  res.flushHeaders()
  const collector = spec.streamCollector(startedAt)
  const splitter = new SseEventSplitter()
  let complete = false
  try {
    for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
      call.armTimeout()
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
    const reason = call.signal.reason
    if (!(reason instanceof ClientGone)) {
      logger.warn('gateway: stream interrupted', {
        provider: spec.provider,
        error: reason instanceof Error ? reason.message : error instanceof Error ? error.message : String(error),
      })
    }
  } finally {
    call.stopTimeout()
  }
  // Recorded before the response ends: the request (and a graceful shutdown) waits for it,
  // while the client already has every byte the provider sent.
  call.settled(await record(collector.usage(), complete ? 'complete' : 'partial'))
  await call.releaseHold()
  if (!res.destroyed) {
    if (complete) res.end()
    else res.destroy()
  }
}

/** A whole JSON answer (or a provider error): relayed byte for byte with its status. */
async function relayWhole(
  { logger, spec, call, res, startedAt, record }: Exchange,
  upstream: Response,
  headers: Record<string, string>,
): Promise<void> {
  let buffer: Buffer
  try {
    buffer = Buffer.from(await upstream.arrayBuffer())
  } catch {
    call.stopTimeout()
    if (call.clientGone()) return
    const reason = call.signal.reason
    if (reason instanceof UpstreamTimeout)
      return call.fail(504, 'upstream_timeout', `The ${spec.provider} API ${reason.message}.`)
    return call.fail(502, 'upstream_unreachable', `The ${spec.provider} API closed the connection mid-answer.`)
  }
  call.stopTimeout()
  if (!upstream.ok) await call.releaseHold() // a provider error: no call to bill
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
    call.settled(await record(usage, 'complete'))
    await call.releaseHold()
  }
  res.end()
}
