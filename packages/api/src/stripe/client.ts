import Stripe from 'stripe'
import type { StripeAccountRow } from './db-types.ts'

/** Builds a Stripe client for one tenant's secret key (injected so tests point it at a fake). */
export type StripeClientFactory = (secretKey: string) => Stripe

/** A tenant's own Stripe client, with the account it was built for. */
export interface StripeClient {
  client: Stripe
  account: StripeAccountRow
}

export interface StripeClientOptions {
  /** e.g. http://127.0.0.1:12111 for a local fake; absent: api.stripe.com. */
  apiUrl?: string | undefined
  timeoutMs: number
  /** Calls go through this fetch (tracing's traced fetch) instead of Stripe's node:http client. */
  fetch?: typeof globalThis.fetch
}

export function createStripeClientFactory(options: StripeClientOptions): StripeClientFactory {
  const target = options.apiUrl ? new URL(options.apiUrl) : undefined
  return (secretKey) =>
    new Stripe(secretKey, {
      // Retries are ours: the pusher records every attempt and backs off per customer and meter.
      maxNetworkRetries: 0,
      timeout: options.timeoutMs,
      telemetry: false,
      ...(options.fetch ? { httpClient: Stripe.createFetchHttpClient(options.fetch) } : {}),
      appInfo: { name: 'Burnrate', url: 'https://github.com/burnrate' },
      ...(target
        ? {
            host: target.hostname,
            port: Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
            protocol: target.protocol === 'https:' ? 'https' : 'http',
          }
        : {}),
    })
}

export type CallOutcome = 'ok' | 'duplicate' | 'retryable' | 'failed'

interface StripeLikeError {
  statusCode?: number
  type?: string
  code?: string
  param?: string
  message?: string
  raw?: { param?: string; code?: string }
}

/**
 * What a failed call means for the pusher. 429, 5xx, 409 (a concurrent request on the same
 * object), timeouts and connection resets are transient. A 400 that names the identifier as
 * already used means Stripe has this meter event: it counts as sent.
 */
export function classifyStripeError(error: unknown): Exclude<CallOutcome, 'ok'> {
  const e = (error ?? {}) as StripeLikeError
  const status = e.statusCode
  if (status === undefined || e.type === 'StripeConnectionError') return 'retryable'
  if (status === 429 || status === 409 || status >= 500) return 'retryable'
  const param = e.param ?? e.raw?.param
  const message = e.message ?? ''
  if (status === 400 && (param === 'identifier' || (/identifier/i.test(message) && /already|duplicate/i.test(message))))
    return 'duplicate'
  return 'failed'
}

/**
 * Whether Stripe answered from its idempotency layer: the result stored for this Idempotency-Key
 * (an error here), which it replays to every request with that key for 24 hours.
 */
export function isReplayedError(error: unknown): boolean {
  const headers = (error as { headers?: Record<string, string | string[] | undefined> } | null)?.headers
  return String(headers?.['idempotent-replayed'] ?? '').toLowerCase() === 'true'
}

export function describeStripeError(error: unknown): string {
  const e = (error ?? {}) as StripeLikeError
  return (
    [e.statusCode, e.code ?? e.raw?.code, e.message]
      .filter((x) => x !== undefined && x !== '')
      .join(' ')
      .slice(0, 500) || String(error)
  )
}
