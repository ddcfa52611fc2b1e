import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { createSchema, createYoga } from 'graphql-yoga'
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { systemClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type GqlResponse, type TestApp } from '../support/app.ts'

const LIMITS = { MAX_BODY_BYTES: 2048, GRAPHQL_MAX_DEPTH: 3, GRAPHQL_MAX_COST: 100, GRAPHQL_MAX_ALIASES: 3 }

let t: TestApp
let server: RunningServer

beforeAll(async () => {
  t = await createTestApp({ loadCatalog: false, config: { PORT: 0, ...LIMITS } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})

afterAll(async () => {
  await server?.close()
  await t?.close()
})

interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * A POST over a real socket. With `contentLength` the body goes out in one piece under that header;
 * without, it is streamed chunk by chunk (Transfer-Encoding: chunked). `endBody: false` leaves the
 * body unfinished, so a response can only come from a server that rejects while streaming.
 */
function rawPost(
  url: string,
  chunks: string[],
  options: { contentLength?: boolean; endBody?: boolean } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = chunks.join('')
    const req = httpRequest(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        ...(options.contentLength ? { 'content-length': Buffer.byteLength(body) } : {}),
      },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text })
        if (options.endBody === false) req.destroy()
      })
    })
    if (options.contentLength) {
      req.end(body)
      return
    }
    for (const chunk of chunks) req.write(chunk)
    if (options.endBody !== false) req.end()
  })
}

async function gql(
  query: string,
  variables?: Record<string, unknown>,
  init: { key?: string | null; url?: string; headers?: Record<string, string> } = {},
) {
  const key = init.key === undefined ? t.tenant.apiKey : init.key
  const response = await fetch(`${init.url ?? server.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...init.headers,
    },
    body: JSON.stringify({ query, variables }),
  })
  return { response, body: (await response.json()) as GqlResponse }
}

const RECORD = (selection: string) => `mutation ($e: UsageEventInput!) { recordUsage(event: $e) ${selection} }`
const usageEvent = (id: string) => ({
  id,
  customerId: 'cust-1',
  model: 'gpt-4o',
  timestamp: new Date(Date.now() - 60_000).toISOString(),
  inputTokens: 10,
  outputTokens: 5,
})

async function storedEvents(ids: string[]): Promise<string[]> {
  const rows = await t.database.db.selectFrom('usage_events').select('id').where('id', 'in', ids).execute()
  return rows.map((r) => r.id)
}

describe('request body limit', () => {
  // A valid request but for its size (the padding is a GraphQL comment), so only the limit can stop it.
  const padded = (id: string, bytes: number) =>
    JSON.stringify({ query: `${RECORD('{ status }')}\n# ${'x'.repeat(bytes)}`, variables: { e: usageEvent(id) } })
  const oversized = (id: string) => padded(id, 3000)

  it('answers 413 with a JSON error when Content-Length is over MAX_BODY_BYTES, and runs nothing', async () => {
    const res = await rawPost(server.url, [oversized('too-big-declared')], { contentLength: true })
    expect(res.status).toBe(413)
    expect(res.headers['content-type']).toContain('application/json')
    expect(JSON.parse(res.body)).toEqual({
      errors: [{ message: 'Request body is larger than 2048 bytes', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
    })
    expect(await storedEvents(['too-big-declared'])).toEqual([])
  })

  it('answers 413 to a chunked body (no Content-Length) as soon as it passes the limit, before the body ends', async () => {
    const body = oversized('too-big-chunked')
    const chunks = body.match(/[\s\S]{1,512}/g)!
    const res = await rawPost(server.url, chunks, { endBody: false })
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE')
    expect(await storedEvents(['too-big-chunked'])).toEqual([])
  })

  it('still serves bodies under the limit, chunked or not', async () => {
    const body = padded('small-chunked', 1200)
    expect(Buffer.byteLength(body)).toBeLessThan(LIMITS.MAX_BODY_BYTES)
    const chunked = await rawPost(server.url, body.match(/[\s\S]{1,300}/g)!)
    expect(chunked.status).toBe(200)
    expect(JSON.parse(chunked.body)).toEqual({ data: { recordUsage: { status: 'RECORDED' } } })

    const whole = await rawPost(server.url, [body.replace('small-chunked', 'small-whole')], { contentLength: true })
    expect(whole.status).toBe(200)
    expect(JSON.parse(whole.body)).toEqual({ data: { recordUsage: { status: 'RECORDED' } } })
    expect((await storedEvents(['small-chunked', 'small-whole'])).sort()).toEqual(['small-chunked', 'small-whole'])
  })

  it('answers malformed JSON, an empty object and non-object JSON with a BAD_REQUEST error, not a hang', async () => {
    for (const body of ['{"query": "{ tenant { id } }"', '{}', '[]', '42', 'null']) {
      const res = await rawPost(server.url, [body], { contentLength: true })
      // 400, except yoga's 200 for a well-formed JSON object without a query (application/json responses).
      expect(res.status, body).toBe(body === '{}' ? 200 : 400)
      expect(JSON.parse(res.body).errors[0].extensions.code, body).toBe('BAD_REQUEST')
    }
    // The same query well formed goes through (the body reaches yoga parsed once, by the server).
    const ok = await rawPost(server.url, ['{"query": "{ tenant { id } }"}'], { contentLength: true })
    expect(JSON.parse(ok.body)).toEqual({ data: { tenant: { id: t.tenant.id } } })
  })

  it('keeps serving after rejecting (the server is not wedged by a refused body)', async () => {
    await rawPost(server.url, [oversized('again')], { contentLength: true })
    const health = await fetch(`${server.url}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('ok')
    const { body } = await gql('{ tenant { id } }')
    expect(body).toEqual({ data: { tenant: { id: t.tenant.id } } })
  })
})

describe('query limits (depth 3, cost 100, aliases 3)', () => {
  it('refuses a query deeper than GRAPHQL_MAX_DEPTH before executing anything', async () => {
    const { body } = await gql(RECORD('{ status event { id lines { cost } } }'), { e: usageEvent('too-deep') })
    expect(body.data).toBeUndefined()
    expect(body.errors?.[0]?.message).toMatch(/depth limit of 3 exceeded, found 4/)
    expect(await storedEvents(['too-deep'])).toEqual([])

    const atLimit = await gql(RECORD('{ status event { id } }'), { e: usageEvent('deep-enough') })
    expect(atLimit.body).toEqual({ data: { recordUsage: { status: 'RECORDED', event: { id: 'deep-enough' } } } })
  })

  it('counts depth through fragments, so they cannot hide it', async () => {
    const query = `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { ...R } }
      fragment R on RecordUsageResult { event { ...E } }
      fragment E on UsageEvent { id }`
    const { body } = await gql(query, { e: usageEvent('deep-by-fragments') })
    expect(body.data).toBeUndefined()
    expect(body.errors?.[0]?.message).toMatch(/depth limit of 3 exceeded/)
    expect(await storedEvents(['deep-by-fragments'])).toEqual([])
  })

  it('refuses a query over GRAPHQL_MAX_COST before executing anything', async () => {
    // Cost of { recordUsage { status × n } }: 2 + 1.5 × n, so 60 fields cost 92 and 70 cost 107.
    const fields = (n: number) => `{ ${'status '.repeat(n)}}`
    const { body } = await gql(RECORD(fields(70)), { e: usageEvent('too-costly') })
    expect(body.data).toBeUndefined()
    expect(body.errors?.[0]?.message).toMatch(/Cost limit of 100 exceeded, found 107/)
    expect(await storedEvents(['too-costly'])).toEqual([])

    const cheap = await gql(RECORD(fields(60)), { e: usageEvent('cheap-enough') })
    expect(cheap.body).toEqual({ data: { recordUsage: { status: 'RECORDED' } } })
  })

  it('refuses more aliases than GRAPHQL_MAX_ALIASES before executing anything', async () => {
    const aliased = (n: number) =>
      `mutation (${Array.from({ length: n }, (_, i) => `$e${i}: UsageEventInput!`).join(', ')}) { ${Array.from({ length: n }, (_, i) => `a${i}: recordUsage(event: $e${i}) { status }`).join(' ')} }`
    const vars = (n: number, prefix: string) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`e${i}`, usageEvent(`${prefix}-${i}`)]))

    const { body } = await gql(aliased(4), vars(4, 'many'))
    expect(body.data).toBeUndefined()
    expect(body.errors?.[0]?.message).toMatch(/Aliases limit of 3 exceeded, found 4/)
    expect(await storedEvents(['many-0', 'many-1', 'many-2', 'many-3'])).toEqual([])

    const few = await gql(aliased(3), vars(3, 'few'))
    expect(few.body.errors).toBeUndefined()
    expect(Object.values(few.body.data!)).toEqual([
      { status: 'RECORDED' },
      { status: 'RECORDED' },
      { status: 'RECORDED' },
    ])
  })

  it('refuses batched requests, which would multiply every limit', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.tenant.apiKey}` },
      body: JSON.stringify([{ query: '{ tenant { id } }' }, { query: '{ tenant { id } }' }]),
    })
    expect(response.status).toBeGreaterThanOrEqual(400)
    const body = (await response.json()) as GqlResponse
    expect(body.data).toBeUndefined()
    expect(body.errors?.length).toBeGreaterThan(0)
  })
})

describe('authentication', () => {
  it('answers UNAUTHENTICATED without a key or with a bad one', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer br_sk_not-a-real-key' },
      { authorization: `Bearer ${t.tenant.apiKey}x` },
      { authorization: `Basic ${Buffer.from(`user:${t.tenant.apiKey}`).toString('base64')}` },
      { authorization: t.tenant.apiKey },
      { authorization: 'Bearer' },
    ]
    for (const headers of attempts) {
      const { body } = await gql('{ tenant { id } }', undefined, { key: null, headers })
      expect(body.data?.tenant ?? null, JSON.stringify(headers)).toBeNull()
      expect(body.errors?.[0]?.extensions?.code, JSON.stringify(headers)).toBe('UNAUTHENTICATED')
    }
  })

  it('lets a valid key in', async () => {
    const { body } = await gql('{ tenant { id name } }')
    expect(body).toEqual({ data: { tenant: { id: t.tenant.id, name: 'Test tenant' } } })
  })
})

/** Makes every query that touches one of `tables` fail, as a database outage or a lost table would. */
class FailingTables implements KyselyPlugin {
  readonly tables = new Set<string>()

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    for (const table of tablesIn(node)) {
      if (this.tables.has(table))
        throw new Error(`connect ECONNREFUSED 10.9.8.7:5432 while querying ${table} as burnrate_admin`)
    }
    return node
  }

  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result
  }
}

function tablesIn(node: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const child of node) tablesIn(child, found)
  else if (node && typeof node === 'object') {
    const record = node as { kind?: string; table?: { identifier?: { name?: string } } }
    if (record.kind === 'TableNode' && record.table?.identifier?.name) found.add(record.table.identifier.name)
    for (const child of Object.values(node)) tablesIn(child, found)
  }
  return found
}

describe('unexpected errors', () => {
  const failing = new FailingTables()
  const logLines: string[] = []
  let failingServer: RunningServer

  beforeAll(async () => {
    const config = defaultConfig({ ...t.app.services.config, LOG_LEVEL: 'info' })
    const app = createApp({
      db: t.database.db.withPlugin(failing),
      clock: systemClock,
      config,
      logger: createLogger('info', (line) => logLines.push(line)),
    })
    failingServer = await startServer(app, config, createLogger('silent'))
  })
  afterAll(async () => {
    failing.tables.clear()
    await failingServer?.close()
  })

  const logged = (requestId: string) =>
    logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.requestId === requestId)

  it('are masked in a resolver: no internals in the message, INTERNAL_SERVER_ERROR and the request id, logged in full', async () => {
    failing.tables.add('customers')
    const { response, body } = await gql('{ customer(id: "cust-1") { id } }', undefined, { url: failingServer.url })
    const requestId = response.headers.get('x-request-id')
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/)

    expect(body.data).toEqual({ customer: null })
    expect(body.errors).toHaveLength(1)
    const [error] = body.errors!
    expect(error!.message).toBe('Unexpected error.')
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|10\.9\.8\.7|burnrate_admin|customers/)
    expect(error!.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId })
    expect(error!.path).toEqual(['customer'])

    const entries = logged(requestId!)
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ level: 'error', msg: 'unexpected error', path: 'customer' })
    expect(entries[0]!.error).toContain('connect ECONNREFUSED 10.9.8.7:5432 while querying customers as burnrate_admin')
  })

  it("uses the caller's sane x-request-id, and replaces one that is not", async () => {
    failing.tables.add('customers')
    const given = await gql('{ customer(id: "cust-1") { id } }', undefined, {
      url: failingServer.url,
      headers: { 'x-request-id': 'trace-42.a_b' },
    })
    expect(given.response.headers.get('x-request-id')).toBe('trace-42.a_b')
    expect(given.body.errors?.[0]?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: 'trace-42.a_b' })
    expect(logged('trace-42.a_b')).toHaveLength(1)

    const forged = 'x"}\n{"level":"error","msg":"forged'
    const replaced = await gql('{ customer(id: "cust-1") { id } }', undefined, {
      url: failingServer.url,
      headers: { 'x-request-id': encodeURIComponent(forged) },
    })
    const id = replaced.response.headers.get('x-request-id')
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(replaced.body.errors?.[0]?.extensions?.requestId).toBe(id)
  })

  it('are masked when authentication itself fails (the database is down before any resolver runs)', async () => {
    const other = await t.createTenant('Not cached yet')
    failing.tables.add('tenants')
    const { response, body } = await gql('{ tenant { id } }', undefined, { url: failingServer.url, key: other.apiKey })
    const requestId = response.headers.get('x-request-id')
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(response.status).toBe(500)
    expect(body.data ?? null).toBeNull()
    expect(body.errors?.[0]?.message).toBe('Unexpected error.')
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|10\.9\.8\.7|burnrate_admin|tenants/)
    expect(body.errors?.[0]?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId })

    const entries = logged(requestId!)
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ level: 'error' })
    expect(entries[0]!.error).toContain('while querying tenants')
  })
})

describe('graceful shutdown', () => {
  /** A tiny App-shaped object: startServer only needs a yoga and its routes. */
  function slowApp(events: string[], started: () => void, release: Promise<void>): App {
    const yoga = createYoga({
      logging: false,
      schema: createSchema({
        typeDefs: 'type Query { slow: String!, stuck: String!, fast: String! }',
        resolvers: {
          Query: {
            slow: async () => {
              events.push('slow started')
              started()
              await new Promise((resolve) => setTimeout(resolve, 500))
              events.push('slow finished')
              return 'done'
            },
            stuck: async () => {
              started()
              await release
              return 'released'
            },
            fast: () => 'fast',
          },
        },
      }),
    })
    return { yoga, routes: [], admitGraphQL: async () => ({ ok: true, maxBodyBytes: 1_000_000 }) } as unknown as App
  }

  function connectionRefused(url: string): Promise<string> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve) => {
      const socket = connect(Number(port), hostname)
      socket.once('connect', () => {
        socket.destroy()
        resolve('connected')
      })
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
    })
  }

  const post = (url: string, query: string) =>
    fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    })

  it('lets the in-flight request finish, refuses new connections, then resolves', async () => {
    const events: string[] = []
    let started!: () => void
    const inResolver = new Promise<void>((resolve) => (started = resolve))
    const running = await startServer(
      slowApp(events, started, Promise.resolve()),
      defaultConfig({ PORT: 0, SHUTDOWN_TIMEOUT_MS: 60_000 }),
      createLogger('silent'),
    )
    expect(await (await post(running.url, '{ fast }')).json()).toEqual({ data: { fast: 'fast' } })

    const slow = post(running.url, '{ slow }')
    await inResolver
    const closed = running.close().then(() => events.push('close resolved'))

    expect(await connectionRefused(running.url)).toBe('ECONNREFUSED')
    const response = await slow
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ data: { slow: 'done' } })
    await closed
    expect(events).toEqual(['slow started', 'slow finished', 'close resolved'])
    expect(running.server.listening).toBe(false)
  })

  it('gives up on a request still running after SHUTDOWN_TIMEOUT_MS, cuts it off and says so', async () => {
    const warnings: string[] = []
    let started!: () => void
    const inResolver = new Promise<void>((resolve) => (started = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const running = await startServer(
      slowApp([], started, released),
      defaultConfig({ PORT: 0, SHUTDOWN_TIMEOUT_MS: 300 }),
      createLogger('warn', (line) => warnings.push(line)),
    )
    try {
      const stuck = post(running.url, '{ stuck }').then(
        (r) => `status ${r.status}`,
        () => 'connection cut',
      )
      await inResolver
      await running.close()
      expect(await stuck).toBe('connection cut')
      expect(warnings.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
        expect.objectContaining({ level: 'warn', msg: 'shutdown timeout: closing remaining connections', inFlight: 1 }),
      ])
    } finally {
      release()
    }
  })
})
