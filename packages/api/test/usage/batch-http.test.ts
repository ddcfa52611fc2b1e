/**
 * POST /v1/usage/batch against a real server: for the same events it answers what
 * recordUsageBatch answers and stores the same rows and rollups; NDJSON equals JSON; a replay is
 * DUPLICATE and writes nothing; a body recordUsageBatch refuses as a whole is a 400 with the same
 * code and field, and stores nothing of the events before the bad one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
      duplicates
      rejected
      results {
        status
        error {
          code
          message
          field
        }
      }
    }
  }
`

let t: TestApp
let server: RunningServer

beforeAll(async () => {
  t = await createTestApp({ config: { PORT: 0 } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})

afterAll(async () => {
  await server?.close()
  await t?.close()
})

const hourAgo = Date.now() - 3_600_000
const ts = (minutes: number) => new Date(hourAgo + minutes * 60_000).toISOString()

/** Priced, unpriced, rejected by validation, a repeat within the batch, units, metadata: one of each. */
function mixedEvents(prefix: string) {
  return [
    {
      id: `${prefix}-1`,
      customerId: 'acme',
      model: 'gpt-4o',
      timestamp: ts(0),
      inputTokens: 1200,
      outputTokens: 300,
      cacheReadTokens: 1000,
      feature: 'chat',
      metadata: { team: 'a' },
    },
    {
      id: `${prefix}-2`,
      customerId: 'globex',
      model: 'claude-sonnet-4-5',
      provider: 'anthropic',
      timestamp: ts(5),
      inputTokens: 5000,
      outputTokens: 700,
      cacheWriteTokens: 100,
    },
    { id: `${prefix}-3`, customerId: 'acme', model: 'no-such-model-xyz', timestamp: ts(7), inputTokens: 10 },
    // Rejected by validation (a result, not a refusal of the batch).
    { id: `${prefix}-4`, customerId: 'acme', model: 'gpt-4o', timestamp: ts(8), inputTokens: 5, cacheReadTokens: 9 },
    { id: `${prefix}-5`, customerId: 'acme', model: 'gpt-4o', timestamp: ts(9), inputTokens: -1 },
    {
      id: `${prefix}-6`,
      customerId: 'acme',
      model: 'gpt-4o',
      timestamp: new Date(Date.now() + 3_600_000).toISOString(),
    },
    {
      id: `${prefix}-7`,
      customerId: 'acme',
      model: 'gpt-4o',
      timestamp: ts(10),
      units: [{ unit: 'nope', quantity: '1' }],
    },
    // The same id again within the batch: DUPLICATE of the first.
    {
      id: `${prefix}-1`,
      customerId: 'acme',
      model: 'gpt-4o',
      timestamp: ts(0),
      inputTokens: 1200,
      outputTokens: 300,
      cacheReadTokens: 1000,
      feature: 'chat',
      metadata: { team: 'a' },
    },
    {
      id: `${prefix}-8`,
      customerId: 'initech',
      model: 'gpt-4o-mini',
      timestamp: ts(20),
      outputTokens: 40,
      units: [{ unit: 'web_search', quantity: '2' }],
    },
  ]
}

async function post(body: string, key: string | null, type = 'application/json', headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/v1/usage/batch`, {
    method: 'POST',
    headers: { 'content-type': type, ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body,
  })
  return { status: response.status, json: (await response.json()) as any }
}

const eventsBody = (events: unknown[]) => JSON.stringify({ events })
const ndjson = (events: unknown[]) => events.map((e) => JSON.stringify(e)).join('\n') + '\n'

/** What a tenant has stored, without what differs by tenant or by moment of storage. */
async function storedState(tenantId: string) {
  const strip = (rows: Record<string, unknown>[]) =>
    rows.map((row) =>
      Object.fromEntries(
        Object.entries(row)
          .filter(([k]) => k !== 'tenant_id' && k !== 'seq' && k !== 'received_at' && !k.endsWith('_at'))
          .map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
      ),
    )
  const db = t.database.db
  const events = await db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id')
    .execute()
  const rollups = await db
    .selectFrom('usage_rollups')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('customer_id')
    .orderBy('bucket')
    .orderBy('model')
    .orderBy('feature')
    .execute()
  const lines = await db
    .selectFrom('usage_line_rollups')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('customer_id')
    .orderBy('bucket')
    .orderBy('model')
    .orderBy('feature')
    .orderBy('usage_type')
    .execute()
  return {
    events: strip(events as Record<string, unknown>[]),
    rollups: strip(rollups as Record<string, unknown>[]),
    lines: strip(lines as Record<string, unknown>[]),
  }
}

const countOf = async (tenantId: string) =>
  Number(
    (
      await t.database.db
        .selectFrom('usage_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant_id', '=', tenantId)
        .executeTakeFirstOrThrow()
    ).n,
  )

describe('POST /v1/usage/batch', () => {
  it('answers and stores what recordUsageBatch answers and stores for the same events (JSON and NDJSON)', async () => {
    const viaGraphql = await t.createTenant('graphql')
    const viaJson = await t.createTenant('json')
    const viaNdjson = await t.createTenant('ndjson')
    const events = mixedEvents('ev')

    const gql = await t.gql(BATCH, { events }, viaGraphql.apiKey)
    expect(gql.errors).toBeUndefined()
    const expected = gql.data!.recordUsageBatch
    expect(expected).toMatchObject({ recorded: 4, duplicates: 1, rejected: 4 })

    const json = await post(eventsBody(events), viaJson.apiKey)
    expect(json.status).toBe(200)
    expect(json.json).toEqual(expected)
    const lines = await post(ndjson(events), viaNdjson.apiKey, 'application/x-ndjson')
    expect(lines.status).toBe(200)
    expect(lines.json).toEqual(expected)
    // A bare array is the same batch.
    const bare = await post(JSON.stringify(events), viaJson.apiKey)
    expect(bare.json.duplicates).toBe(5)

    const reference = await storedState(viaGraphql.id)
    expect(reference.events).toHaveLength(4)
    expect(reference.rollups.length).toBeGreaterThan(0)
    expect(await storedState(viaJson.id)).toEqual(reference)
    expect(await storedState(viaNdjson.id)).toEqual(reference)
  })

  it('answers a replay DUPLICATE (rejected events stay rejected) and writes nothing', async () => {
    const tenant = await t.createTenant('replay')
    const events = mixedEvents('rp')
    const first = await post(eventsBody(events), tenant.apiKey)
    expect(first.json).toMatchObject({ recorded: 4, duplicates: 1, rejected: 4 })
    const before = await storedState(tenant.id)
    const again = await post(ndjson(events), tenant.apiKey, 'application/x-ndjson')
    expect(again.status).toBe(200)
    expect(again.json).toMatchObject({ recorded: 0, duplicates: 5, rejected: 4 })
    expect(again.json.results.map((r: any) => r.status)).toEqual(
      first.json.results.map((r: any) => (r.status === 'RECORDED' ? 'DUPLICATE' : r.status)),
    )
    expect(await storedState(tenant.id)).toEqual(before)
    // The same id with other content is an IDEMPOTENCY_CONFLICT, as on GraphQL.
    const changed = await post(eventsBody([{ ...events[0], inputTokens: 1201 }]), tenant.apiKey)
    expect(changed.json.results[0]).toMatchObject({
      status: 'REJECTED',
      error: { code: 'IDEMPOTENCY_CONFLICT', field: 'id' },
    })
  })

  const valid = (id: string) => ({ id, customerId: 'acme', model: 'gpt-4o', timestamp: ts(1), inputTokens: 3 })
  const BAD: [string, unknown][] = [
    ['fractional token count', { ...valid('x'), inputTokens: 1.5 }],
    ['token count as a string', { ...valid('x'), outputTokens: '12' }],
    ['token count past Int', { ...valid('x'), inputTokens: 2 ** 31 }],
    ['unparseable timestamp', { ...valid('x'), timestamp: 'yesterday' }],
    ['timestamp before 1970', { ...valid('x'), timestamp: '1969-12-31T23:59:59Z' }],
    ['missing id', { customerId: 'acme', model: 'gpt-4o', timestamp: ts(1) }],
    ['null model', { ...valid('x'), model: null }],
    ['numeric customerId', { ...valid('x'), customerId: 42 }],
    ['unknown field', { ...valid('x'), tokens: 3 }],
    ['event not an object', 'an event'],
    ['null event', null],
    ['float unit quantity', { ...valid('x'), units: [{ unit: 'requests', quantity: 1.5 }] }],
    ['unit without quantity', { ...valid('x'), units: [{ unit: 'requests' }] }],
    ['unknown unit field', { ...valid('x'), units: [{ unit: 'requests', quantity: '1', price: '2' }] }],
    ['metadata too deep', { ...valid('x'), metadata: JSON.parse('{"a":'.repeat(25) + '1' + '}'.repeat(25)) }],
    ['NUL in the id', { ...valid('x\u0000y') }],
    ['lone surrogate in a metadata key', { ...valid('x'), metadata: { ['a\ud800']: 'b' } }],
  ]

  it.each(BAD)(
    'refuses a batch with a %s as recordUsageBatch does (400, same code and field), storing nothing',
    async (_name, bad) => {
      const tenant = await t.createTenant('bad')
      const events = [valid('ok-1'), valid('ok-2'), bad]
      const gql = await t.gql(BATCH, { events }, tenant.apiKey)
      expect(gql.data?.recordUsageBatch ?? null).toBeNull()
      const expected = gql.errors![0]!.extensions!
      expect(expected.code).toBe('BAD_USER_INPUT')

      const response = await post(eventsBody(events), tenant.apiKey)
      expect(response.status).toBe(400)
      expect(response.json.error).toMatchObject({ code: 'BAD_USER_INPUT', field: expected.field })
      expect(response.json.error.message).toEqual(expect.any(String))
      const viaNdjson = await post(ndjson(events), tenant.apiKey, 'application/x-ndjson')
      expect(viaNdjson.status).toBe(400)
      expect(viaNdjson.json.error).toEqual(response.json.error)
      expect(await countOf(tenant.id)).toBe(0)
    },
  )

  it('refuses more than 1,000 events as recordUsageBatch does', async () => {
    const tenant = await t.createTenant('big')
    const events = Array.from({ length: 1001 }, (_, i) => valid(`big-${i}`))
    const gql = await t.gql(BATCH, { events }, tenant.apiKey)
    const response = await post(eventsBody(events), tenant.apiKey)
    expect(response.status).toBe(400)
    expect(response.json.error).toEqual({
      code: 'BAD_USER_INPUT',
      message: gql.errors![0]!.message,
      field: gql.errors![0]!.extensions!.field,
    })
    expect(await countOf(tenant.id)).toBe(0)
  })

  it('answers an empty batch with no results', async () => {
    const response = await post(eventsBody([]), t.tenant.apiKey)
    expect(response).toEqual({ status: 200, json: { recorded: 0, duplicates: 0, rejected: 0, results: [] } })
  })

  it('refuses bodies that are not a batch, with a code, a message and a field', async () => {
    for (const body of ['{"events": [', '{"event": []}', '"events"', '{}']) {
      const response = await post(body, t.tenant.apiKey)
      expect(response.status).toBe(400)
      expect(response.json.error).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.any(String) })
      expect(response.json.error.field).toEqual(expect.any(String))
    }
    const badLine = await post(`${JSON.stringify(valid('l-1'))}\n{oops\n`, t.tenant.apiKey, 'application/x-ndjson')
    expect(badLine.status).toBe(400)
    expect(badLine.json.error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'events[1]' })
    expect(badLine.json.error.message).toMatch(/^line 2 /)
  })

  it('refuses a request without an ADMIN key, of another content type or compressed', async () => {
    const body = eventsBody([valid('auth-1')])
    const none = await post(body, null)
    expect(none.status).toBe(401)
    expect(none.json.error.code).toBe('UNAUTHENTICATED')
    const wrong = await post(body, 'br_sk_not_a_key')
    expect(wrong.status).toBe(401)

    const created = await t.gql('mutation($input: CreateApiKeyInput!){ createApiKey(input: $input){ secret } }', {
      input: { name: 'viewer', role: 'READ_ONLY' },
    })
    expect(created.errors).toBeUndefined()
    const readOnly = await post(body, created.data!.createApiKey.secret)
    expect(readOnly.status).toBe(403)
    expect(readOnly.json.error).toMatchObject({ code: 'FORBIDDEN', reason: 'READ_ONLY' })

    const viaHeader = await fetch(`${server.url}/v1/usage/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': t.tenant.apiKey },
      body,
    })
    expect(viaHeader.status).toBe(200)

    const text = await post(body, t.tenant.apiKey, 'text/plain')
    expect(text.status).toBe(415)
    expect(text.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
    const gzip = await post(body, t.tenant.apiKey, 'application/json', { 'content-encoding': 'gzip' })
    expect(gzip.status).toBe(415)
  })
})
