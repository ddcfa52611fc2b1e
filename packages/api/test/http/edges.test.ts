/**
 * Hostile HTTP against the real server: every request gets a clear 4xx decided before anything
 * runs or is buffered — never a 500, a connection reset, or a write answered with an error.
 */
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { GRAPHQL_MAX_NESTING, GRAPHQL_MAX_TOKENS } from '../../src/http/graphql-guards.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const MAX_BODY_BYTES = 256 * 1024

let t: TestApp
let server: RunningServer

beforeAll(async () => {
  t = await createTestApp({ loadCatalog: false, config: { PORT: 0, MAX_BODY_BYTES, HTTP_REQUEST_TIMEOUT_MS: 2_000 } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})

afterAll(async () => {
  await server?.close()
  await t?.close()
})

interface RawAnswer {
  status: number
  headers: string
  body: string
  /** How the connection ended: closed cleanly by the server, or reset (the client's writes failed). */
  ending: 'closed' | 'reset'
}

/**
 * One HTTP/1.1 request over a bare socket. The client writes its headers and the whole body before
 * it reads anything (as Python's http.client and many SDKs do), unless `hold` keeps the body open.
 */
function rawRequest(
  head: string,
  body: Buffer | string = '',
  options: { hold?: boolean } = {},
): { answer: Promise<RawAnswer>; socket: Socket } {
  const { port } = new URL(server.url)
  const socket = connect(Number(port), '127.0.0.1')
  const answer = new Promise<RawAnswer>((resolve) => {
    const received: Buffer[] = []
    let ending: RawAnswer['ending'] = 'closed'
    socket.on('data', (chunk: Buffer) => received.push(chunk))
    socket.on('error', () => (ending = 'reset'))
    socket.on('close', () => {
      const text = Buffer.concat(received).toString('utf8')
      // A final status (a 100 Continue may come first).
      const responses = text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((r) => !r.startsWith('HTTP/1.1 100'))
      const final = responses[0] ?? ''
      const [headers = '', ...rest] = final.split('\r\n\r\n')
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0),
        headers,
        body: rest.join('\r\n\r\n'),
        ending,
      })
    })
  })
  socket.write(head + '\r\n\r\n')
  if (!options.hold) {
    socket.write(body)
    socket.end()
  } else if (body.length) socket.write(body)
  return { answer, socket }
}

const post = (path: string, headers: Record<string, string | number>) =>
  [
    `POST ${path} HTTP/1.1`,
    'Host: localhost',
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n')

async function gql(
  body: string | Record<string, unknown>,
  headers: Record<string, string> = {},
  key: string | null = t.tenant.apiKey,
) {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await response.text()
  return {
    status: response.status,
    body: JSON.parse(text) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] },
  }
}

const customerIds = async () =>
  (await t.database.db.selectFrom('customers').select('id').where('tenant_id', '=', t.tenant.id).execute())
    .map((r) => r.id)
    .sort()
const UPSERT = (id: string) => `mutation { upsertCustomer(input: { id: "${id}" }) { id } }`

describe('Accept', () => {
  it('refuses a mutation whose Accept no response can satisfy with 406, before running it', async () => {
    for (const [id, accept] of [
      ['png', 'image/png'],
      ['html-only', 'text/html'],
      ['json-refused', 'application/json;q=0, image/*'],
    ] as const) {
      const { status, body } = await gql({ query: UPSERT(id) }, { accept })
      expect(status, accept).toBe(406)
      expect(body.errors?.[0]?.extensions?.code, accept).toBe('NOT_ACCEPTABLE')
      expect(body.errors?.[0]?.message, accept).toContain('application/json')
    }
    expect(await customerIds()).toEqual([])
  })

  it('runs it when some accepted type is one yoga answers with', async () => {
    for (const [id, accept] of [
      ['star', '*/*'],
      ['json', 'application/json'],
      ['mixed', 'image/png, application/graphql-response+json;q=0.5'],
    ] as const) {
      const { status, body } = await gql({ query: UPSERT(id) }, { accept })
      expect(status, accept).toBe(200)
      expect(body).toEqual({ data: { upsertCustomer: { id } } })
    }
    expect(await customerIds()).toEqual(['json', 'mixed', 'star'])
  })
})

describe('document size, before parsing', () => {
  it('answers a 3,000-deep query with 400 and what was exceeded (it overflowed the parser: a 500)', async () => {
    const deep = `{ tenant ${'{ id '.repeat(3000)}${'}'.repeat(3001)}`
    const { status, body } = await gql({ query: deep })
    expect(status).toBe(400)
    expect(body.errors).toEqual([
      {
        message: expect.stringContaining(`more than ${GRAPHQL_MAX_NESTING} levels deep`),
        extensions: { code: 'QUERY_TOO_COMPLEX' },
      },
    ])

    // Nesting inside argument values counts too: a deep list or object literal.
    for (const literal of [`${'['.repeat(3000)}${']'.repeat(3000)}`, `${'{a: '.repeat(3000)}1${'}'.repeat(3000)}`]) {
      const argument = await gql({
        query: `mutation { upsertCustomer(input: { id: "deep", metadata: ${literal} }) { id } }`,
      })
      expect(argument.status).toBe(400)
      expect(argument.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX')
    }
    expect(await customerIds()).not.toContain('deep')
  })

  it('answers too many tokens with 400', async () => {
    const { status, body } = await gql({ query: `{ tenant { ${'id '.repeat(GRAPHQL_MAX_TOKENS)}} }` })
    expect(status).toBe(400)
    expect(body.errors).toEqual([
      {
        message: expect.stringContaining(`more than ${GRAPHQL_MAX_TOKENS} tokens`),
        extensions: { code: 'QUERY_TOO_COMPLEX' },
      },
    ])
  })

  it('refuses a deep query without a key with 401, before reading its body', async () => {
    const deep = `{ tenant ${'{ id '.repeat(3000)}${'}'.repeat(3001)}`
    const { status, body } = await gql({ query: deep }, {}, null)
    expect(status).toBe(401)
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })

  it('gives the depth, cost and alias refusals after parsing a code too', async () => {
    const { config } = t.app.services
    const tooDeep = `{ tenant ${'{ id '.repeat(config.GRAPHQL_MAX_DEPTH)}${'}'.repeat(config.GRAPHQL_MAX_DEPTH + 1)}`
    const aliases = `{ ${Array.from({ length: config.GRAPHQL_MAX_ALIASES + 1 }, (_, i) => `a${i}: tenant { id }`).join(' ')} }`
    for (const query of [tooDeep, aliases]) {
      const { body } = await gql({ query })
      expect(body.data).toBeUndefined()
      expect(body.errors?.[0]?.message).toMatch(/limit of \d+ exceeded/)
      expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe('GRAPHQL_VALIDATION_FAILED')
    }
  })

  it('leaves syntax errors to the parser, which gives them their code', async () => {
    for (const query of [
      '{ customer(id: "\\ud800") { id } }',
      '{ customer(id: "\ud800") { id } }',
      '{ tenant { id }',
    ]) {
      const { body } = await gql({ query })
      expect(body.errors?.[0]?.extensions?.code, query).toBe('GRAPHQL_PARSE_FAILED')
    }
  })

  it('still answers queries inside the limits', async () => {
    expect((await gql({ query: '{ tenant { id } }' })).body).toEqual({ data: { tenant: { id: t.tenant.id } } })
  })
})

describe('GET parameters', () => {
  const get = async (params: string) => {
    const response = await fetch(`${server.url}/graphql?${params}`, {
      headers: { authorization: `Bearer ${t.tenant.apiKey}`, accept: 'application/json' },
    })
    return {
      status: response.status,
      body: (await response.json()) as {
        data?: unknown
        errors?: { message: string; extensions?: Record<string, unknown> }[]
      },
    }
  }
  const query = `query=${encodeURIComponent('query ($id: String!) { customer(id: $id) { id } }')}`

  it('answers variables or extensions that are not JSON objects with 400 BAD_REQUEST (invalid JSON was a 500)', async () => {
    for (const params of [
      `${query}&variables=%7Bbad`,
      `${query}&variables=%5B1%5D`,
      `${query}&variables=5`,
      `${query}&variables={}&extensions=%7Bbad`,
      `${query}&variables=%22x`,
    ]) {
      const { status, body } = await get(params)
      expect(status, params).toBe(400)
      expect(body.errors?.[0]?.extensions?.code, params).toBe('BAD_REQUEST')
      expect(body.errors?.[0]?.message, params).toMatch(/variables|extensions/)
    }
  })

  it('answers well-formed ones', async () => {
    const { status, body } = await get(`${query}&variables=${encodeURIComponent('{"id":"nobody"}')}`)
    expect(status).toBe(200)
    expect(body).toEqual({ data: { customer: null } })
  })
})

describe('content types', () => {
  it('answers form-encoded, multipart and untyped POSTs with 415 and what to send instead, running nothing', async () => {
    const multipart = new FormData()
    multipart.set('operations', JSON.stringify({ query: UPSERT('multipart') }))
    multipart.set('map', '{}')
    const attempts: [string, RequestInit][] = [
      ['form', { body: new URLSearchParams({ query: UPSERT('form') }) }],
      [
        'form garbage',
        { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=%ZZ&&&variables=%7B' },
      ],
      ['multipart', { body: multipart }],
      [
        'multipart garbage',
        { headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: '--xyz\r\ngarbage' },
      ],
      ['multipart without boundary', { headers: { 'content-type': 'multipart/form-data' }, body: 'garbage' }],
      ['text', { headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query: UPSERT('text') }) }],
    ]
    for (const [label, init] of attempts) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        ...init,
        headers: { authorization: `Bearer ${t.tenant.apiKey}`, ...(init.headers as Record<string, string>) },
      })
      expect(response.status, label).toBe(415)
      const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] }
      expect(body.errors[0]!.extensions.code, label).toBe('UNSUPPORTED_MEDIA_TYPE')
      expect(body.errors[0]!.message, label).toContain('Content-Type: application/json')
    }
    expect((await customerIds()).filter((id) => ['form', 'multipart', 'text'].includes(id))).toEqual([])
  })

  it('refuses them the same way in-process (yoga.fetch), not only behind node:http', async () => {
    const response = await t.app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tenant.apiKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: UPSERT('in-process-form') }).toString(),
    })
    expect(response.status).toBe(415)
    expect(await customerIds()).not.toContain('in-process-form')
  })

  it('still takes a bare GraphQL document (application/graphql)', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tenant.apiKey}`, 'content-type': 'application/graphql' },
      body: '{ tenant { id } }',
    })
    expect(await response.json()).toEqual({ data: { tenant: { id: t.tenant.id } } })
  })
})

describe('oversized bodies', () => {
  const big = Buffer.alloc(4 * MAX_BODY_BYTES, 'x')

  it('answers 413 with a JSON error to a client that writes its whole body before reading (it got a connection reset)', async () => {
    const { answer } = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        'content-length': big.length,
      }),
      big,
    )
    const result = await answer
    expect(result.ending).toBe('closed')
    expect(result.status).toBe(413)
    expect(result.headers).toMatch(/content-type: application\/json/i)
    expect(JSON.parse(result.body)).toEqual({
      errors: [
        { message: `Request body is larger than ${MAX_BODY_BYTES} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } },
      ],
    })
  })

  it('the same without Content-Length (chunked): refused once past the limit, the rest discarded', async () => {
    const chunked = [big.subarray(0, big.length / 2), big.subarray(big.length / 2)].map((part) =>
      Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]),
    )
    const { answer } = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        'transfer-encoding': 'chunked',
      }),
      Buffer.concat([...chunked, Buffer.from('0\r\n\r\n')]),
    )
    const result = await answer
    expect(result.ending).toBe('closed')
    expect(result.status).toBe(413)
    expect(JSON.parse(result.body).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE')
  })
})

describe('authentication on the headers, before the body', () => {
  it('32 slow uploads with a bad key get 401 before their bodies end, and not one byte of them is buffered', async () => {
    const peakBefore = server.bodyBytes.peak
    expect(server.bodyBytes.held).toBe(0)
    const uploads = Array.from({ length: 32 }, (_, i) =>
      rawRequest(
        post('/graphql', {
          'content-type': 'application/json',
          authorization: i % 2 ? 'Bearer br_sk_not-a-key' : 'Basic eDp5',
          'content-length': 8 * MAX_BODY_BYTES,
        }),
        Buffer.alloc(16 * 1024, 'x'),
        { hold: true },
      ),
    )
    // Each body is unfinished (16 KiB of 512 KiB sent): only a server that answers from the headers can answer.
    const answers = await Promise.all(
      uploads.map(async ({ socket }) => {
        const head = await new Promise<string>((resolve) => {
          let text = ''
          socket.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8')
            if (text.includes('\r\n\r\n')) resolve(text)
          })
        })
        socket.destroy()
        return head
      }),
    )
    for (const head of answers) expect(head).toMatch(/^HTTP\/1\.1 401 /)
    expect(answers.join('')).toContain('"code":"UNAUTHENTICATED"')
    // Anonymous bodies are discarded as they arrive, never held: the peak is what authenticated requests held before.
    expect(server.bodyBytes.peak).toBe(peakBefore)
    expect(server.bodyBytes.held).toBe(0)
  })

  it('the body of an authenticated request is what is held, and released with its response', async () => {
    const { socket, answer } = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        'content-length': 20_000,
      }),
      Buffer.alloc(10_000, ' '),
      { hold: true },
    )
    // A deadline, not a timing assertion: returns as soon as the server holds the first half.
    for (let i = 0; i < 500 && server.bodyBytes.held < 10_000; i++) await new Promise((r) => setTimeout(r, 10))
    expect(server.bodyBytes.held).toBe(10_000)
    socket.end(Buffer.from(`${JSON.stringify({ query: '{ tenant { id } }' }).padEnd(10_000, ' ')}`))
    const result = await answer
    expect(result.status).toBe(200)
    expect(server.bodyBytes.held).toBe(0)
    expect(server.bodyBytes.peak).toBeGreaterThanOrEqual(20_000)
  })

  it('"Expect: 100-continue" with a bad key gets the 401 instead of the go-ahead, so the body is never sent', async () => {
    const { answer, socket } = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: 'Bearer br_sk_wrong',
        'content-length': 1000,
        expect: '100-continue',
      }),
      '',
      { hold: true },
    )
    const head = await new Promise<string>((resolve) =>
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))),
    )
    expect(head).toMatch(/^HTTP\/1\.1 401 /)
    socket.destroy()
    await answer

    const good = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        'content-length': 30,
        expect: '100-continue',
      }),
      '',
      { hold: true },
    )
    const first = await new Promise<string>((resolve) =>
      good.socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))),
    )
    expect(first).toMatch(/^HTTP\/1\.1 100 Continue/)
    good.socket.end('{"query":"{ tenant { id } }"} ')
    expect(JSON.parse((await good.answer).body)).toEqual({ data: { tenant: { id: t.tenant.id } } })
  })

  it('an expired widget session is told so (401 with the reason the widget renews on)', async () => {
    const created = await t.gql(`mutation { createWidgetSession(customerId: "w1", ttlSeconds: 60) { token } }`)
    const token = created.data?.createWidgetSession.token as string
    await t.database.db
      .updateTable('widget_sessions')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .execute()
    const { status, body } = await gql({ query: '{ widgetSession { priceDetails } }' }, {}, token)
    expect(status).toBe(401)
    expect(body.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'WIDGET_SESSION_EXPIRED' })
  })

  it('a request whose body never completes is cut at HTTP_REQUEST_TIMEOUT_MS, and what it held is released', async () => {
    const { answer } = rawRequest(
      post('/graphql', {
        'content-type': 'application/json',
        authorization: `Bearer ${t.tenant.apiKey}`,
        'content-length': 1000,
      }),
      '{"query":',
      { hold: true },
    )
    const result = await answer
    expect([0, 408]).toContain(result.status)
    expect(server.bodyBytes.held).toBe(0)
  })
})
