import type {
  RecordBatchResult,
  RecordResult,
  UsageDimension,
  UsageEvent,
  UsageEventPage,
  UsageSummary,
} from './types.ts'

export interface ClientOptions {
  /** The API's base URL (`http://127.0.0.1:4000`) or its GraphQL endpoint (`…/graphql`). */
  url: string
  /** A tenant secret key (`br_sk_…`). */
  apiKey: string
  /** Per request; default 10 s. */
  timeoutMs?: number
  /** Injected for tests and custom agents; default the global fetch. */
  fetch?: typeof fetch
}

/**
 * A failed API call. `retryable` tells whether the same request may succeed later (network
 * errors, timeouts, 5xx, 429, masked server errors, a key not accepted yet) or never will
 * (the request itself is invalid).
 */
export class BurnrateError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** Seconds, from a 429/503 Retry-After header. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message)
    this.name = 'BurnrateError'
  }
}

const EVENT_FIELDS =
  'id customerId model canonicalModel provider timestamp receivedAt status cost amount currency feature lines { usageType quantity unitPrice cost priceId }'
const RESULT_FIELDS = `status error { code message field } event { ${EVENT_FIELDS} }`
/** What the meter needs back from a batch: no event bodies, to keep responses small. */
const LEAN_RESULT_FIELDS = 'status error { code message field }'

const RETRYABLE_CODES = new Set(['INTERNAL_SERVER_ERROR', 'UNAUTHENTICATED', 'FORBIDDEN'])

/** Wire form of an event: Dates as ISO strings, absent optionals left out. */
export function toWire(event: UsageEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) continue
    out[key] = value instanceof Date ? value.toISOString() : value
  }
  return out
}

export class BurnrateClient {
  readonly endpoint: string
  /** `POST /v1/usage/batch` beside the GraphQL endpoint. */
  readonly ingestUrl: string
  private readonly apiKey: string
  private readonly timeoutMs: number
  private readonly fetchImpl: typeof fetch

  constructor(options: ClientOptions) {
    if (!options.url) throw new TypeError('BurnrateClient: url is required')
    if (!options.apiKey) throw new TypeError('BurnrateClient: apiKey is required')
    const base = options.url.replace(/\/+$/, '')
    this.endpoint = base.endsWith('/graphql') ? base : `${base}/graphql`
    this.ingestUrl = `${this.endpoint.slice(0, -'/graphql'.length)}/v1/usage/batch`
    this.apiKey = options.apiKey
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.fetchImpl = options.fetch ?? globalThis.fetch
  }

  /** POSTs JSON with the key; a network error or a timeout is a retryable BurnrateError. */
  private async post(url: string, payload: unknown): Promise<{ response: Response; text: string }> {
    let response: Response
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.apiKey}` },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')
      throw new BurnrateError(
        timedOut
          ? `Burnrate API did not answer within ${this.timeoutMs} ms`
          : `Burnrate API unreachable: ${error instanceof Error ? error.message : String(error)}`,
        timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
        true,
      )
    }
    return { response, text: await response.text().catch(() => '') }
  }

  /**
   * The error an answer carries, or null: 429 and 5xx (and an answer that is not JSON) by status,
   * with Retry-After; else the first error the body names.
   */
  private static failureOf(
    response: Response,
    parsed: boolean,
    error: { message: string; code?: string } | undefined,
  ): BurnrateError | null {
    if (response.status === 429 || response.status >= 500 || !parsed) {
      const retryAfter = retryAfterSeconds(response.headers.get('retry-after'))
      return new BurnrateError(
        `Burnrate API answered HTTP ${response.status}${error ? `: ${error.message}` : ''}`,
        response.status === 429 ? 'RATE_LIMITED' : 'SERVER_ERROR',
        response.status === 429 || response.status >= 500 || (!parsed && response.ok),
        response.status,
        retryAfter,
      )
    }
    if (error) {
      const code = error.code ?? (response.status === 401 ? 'UNAUTHENTICATED' : 'GRAPHQL_ERROR')
      return new BurnrateError(error.message, code, RETRYABLE_CODES.has(code), response.status)
    }
    return null
  }

  /** Any GraphQL operation; throws BurnrateError on transport or GraphQL errors. */
  async graphql<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const { response, text } = await this.post(this.endpoint, { query, variables })
    const body = parseJson<{ data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] }>(text)
    const firstError = body?.errors?.[0]
    const failure = BurnrateClient.failureOf(
      response,
      body !== undefined,
      firstError && { message: firstError.message, code: firstError.extensions?.code },
    )
    if (failure) throw failure
    if (!response.ok || body?.data == null) {
      throw new BurnrateError(
        `Burnrate API answered HTTP ${response.status} without data`,
        'HTTP_ERROR',
        false,
        response.status,
      )
    }
    return body.data
  }

  /**
   * Up to 1,000 events through `POST /v1/usage/batch`: the same ingest as recordUsageBatch without
   * GraphQL (about 0.83× the API's CPU per event), answered with lean results (status and error per
   * event, in order). A 404 or 405 means the API (or a proxy before it) has no such route: code
   * ENDPOINT_NOT_FOUND, not retryable — the Meter then uses recordUsageBatch.
   */
  async ingestBatch(events: readonly UsageEvent[]): Promise<RecordBatchResult> {
    const { response, text } = await this.post(this.ingestUrl, { events: events.map(toWire) })
    if (response.status === 404 || response.status === 405)
      throw new BurnrateError(
        `Burnrate API has no ${this.ingestUrl} (HTTP ${response.status})`,
        'ENDPOINT_NOT_FOUND',
        false,
        response.status,
      )
    const body = parseJson<{ error?: { code?: string; message: string }; results?: RecordResult[] }>(text)
    const failure = BurnrateClient.failureOf(response, body !== undefined, body?.error)
    if (failure) throw failure
    if (!response.ok || !Array.isArray(body?.results)) {
      throw new BurnrateError(
        `Burnrate API answered HTTP ${response.status} without results`,
        'HTTP_ERROR',
        false,
        response.status,
      )
    }
    return body as RecordBatchResult
  }

  async recordUsage(event: UsageEvent): Promise<RecordResult> {
    const data = await this.graphql<{ recordUsage: RecordResult }>(
      `mutation BurnrateRecordUsage($e: UsageEventInput!) { recordUsage(event: $e) { ${RESULT_FIELDS} } }`,
      { e: toWire(event) },
    )
    return data.recordUsage
  }

  /** Up to 1,000 events; one result per event, in order. `lean` leaves the stored events out of the answer. */
  async recordUsageBatch(events: readonly UsageEvent[], options: { lean?: boolean } = {}): Promise<RecordBatchResult> {
    const fields = options.lean ? LEAN_RESULT_FIELDS : RESULT_FIELDS
    const data = await this.graphql<{ recordUsageBatch: RecordBatchResult }>(
      `mutation BurnrateRecordUsageBatch($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { recorded duplicates rejected results { ${fields} } } }`,
      { events: events.map(toWire) },
    )
    return data.recordUsageBatch
  }

  async usageSummary(args: {
    customerId?: string | null
    from: string | Date
    to: string | Date
    groupBy?: UsageDimension[]
  }): Promise<UsageSummary> {
    const data = await this.graphql<{ usageSummary: UsageSummary }>(
      `query BurnrateUsageSummary($customerId: String, $from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]) {
        usageSummary(customerId: $customerId, from: $from, to: $to, groupBy: $groupBy) {
          customerId from to currency events unpricedEvents inputTokens outputTokens cost amount
          groups { model provider feature usageType bucketStart events inputTokens outputTokens cost amount }
        }
      }`,
      { customerId: args.customerId ?? null, from: iso(args.from), to: iso(args.to), groupBy: args.groupBy ?? [] },
    )
    return data.usageSummary
  }

  /** One page of a customer's events, newest first; pass `endCursor` back as `after` for the next. */
  async usageEvents(args: {
    customerId: string
    from?: string | Date
    to?: string | Date
    first?: number
    after?: string | null
  }): Promise<UsageEventPage> {
    const data = await this.graphql<{
      usageEvents: {
        edges: { node: UsageEventPage['events'][number] }[]
        pageInfo: { hasNextPage: boolean; endCursor: string | null }
      }
    }>(
      `query BurnrateUsageEvents($customerId: String!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
        usageEvents(customerId: $customerId, from: $from, to: $to, first: $first, after: $after) {
          edges { node { ${EVENT_FIELDS} } }
          pageInfo { hasNextPage endCursor }
        }
      }`,
      {
        customerId: args.customerId,
        from: args.from === undefined ? null : iso(args.from),
        to: args.to === undefined ? null : iso(args.to),
        first: args.first ?? null,
        after: args.after ?? null,
      },
    )
    return { events: data.usageEvents.edges.map((e) => e.node), ...data.usageEvents.pageInfo }
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return text ? (JSON.parse(text) as T) : undefined
  } catch {
    return undefined
  }
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function retryAfterSeconds(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) {
    const seconds = Number(text)
    return seconds > 0 ? seconds : undefined
  }
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  const seconds = (at - now) / 1000
  return seconds > 0 ? seconds : undefined
}

function iso(value: string | Date): string {
  return value instanceof Date ? value.toISOString() : value
}
