/**
 * Schema-driven fuzz: at least 10,000 hostile requests against every Query, Mutation and
 * Subscription field (taken from the built schema, so new operations are covered without editing
 * this file), as a tenant, a widget session, another tenant, a wrong key and nobody, plus broken
 * bodies and headers. Asserts no 5xx, no INTERNAL_SERVER_ERROR (nor any error without a code), the
 * server alive afterwards, and no partial writes: a mutation answered with an error committed no
 * insert, update or delete in any table. Fixed seed: a failure prints the request, and FUZZ_SEED /
 * FUZZ_RUNS replay it (FUZZ_TRACE=1 lists every finding).
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/clock.ts'
import { buildSchema } from '../../src/schema/index.ts'
import { createStripeTestApp, type StripeTestApp } from '../stripe/stripe-support.ts'
import {
  expandMarkers,
  operationArb,
  operationsOf,
  type GeneratedOperation,
  type Plausible,
  type SchemaOperation,
} from '../support/hostile.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20261206)
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_500)
const BATCH = 250

let t: StripeTestApp
let otherTenantKey: string
let widgetToken: string
let plausible: Plausible

type Principal = 'tenant' | 'widget' | 'other-tenant' | 'none' | 'wrong-key' | 'widget-wrong-origin'

interface FuzzRequest {
  kind: 'graphql' | 'raw'
  label: string
  principal: Principal
  init: { method: string; headers: Record<string, string>; body?: string }
  path: string
  mutation: boolean
  subscription: boolean
}

const gql = async (query: string, variables?: Record<string, unknown>) => {
  const result = await t.gql(query, variables)
  if (result.errors) throw new Error(`setup failed: ${JSON.stringify(result.errors)}`)
  return result.data as Record<string, any>
}

beforeAll(async () => {
  t = await createStripeTestApp({ clock: systemClock, config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: false } })
  otherTenantKey = (await t.app.services.tenants.create({ name: 'Other tenant' })).apiKey
  // Rows for plausible arguments to point at, so requests reach services and SQL, not just "not found".
  await gql('mutation { upsertCustomer(input: { id: "cust-1", name: "One" }) { id } }')
  await gql('mutation { upsertCustomer(input: { id: "cust-2", stripeCustomerId: "cus_fuzz2" }) { id } }')
  const at = new Date(Date.now() - 3600_000).toISOString()
  for (let i = 0; i < 5; i++) {
    await gql('mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }', {
      e: {
        id: `seed-${i}`,
        customerId: 'cust-1',
        model: 'gpt-4o',
        timestamp: at,
        inputTokens: 1000 + i,
        outputTokens: 10,
        metadata: { seed: i },
      },
    })
  }
  await gql(
    'mutation { setBudget(input: { customerId: "cust-1", limit: "10.00", period: MONTH, hardLimit: true }) { id } }',
  )
  const endpoint = await gql(
    'mutation { createWebhookEndpoint(url: "https://hooks.example.com/burnrate", eventTypes: ["budget.alert"]) { endpoint { id } } }',
  )
  await gql(
    'mutation { setStripeCredentials(input: { secretKey: "sk_test_burnrateFuzz0001", webhookSecret: "whsec_fuzzfuzz01" }) { keyHint } }',
  )
  const session = await gql('mutation { createWidgetSession(customerId: "cust-1", ttlSeconds: 86400) { token } }')
  widgetToken = session.createWidgetSession.token
  const now = Date.now()
  const overrideDoc = (tenantId: string) =>
    JSON.stringify({
      overrides: [
        {
          tenant: tenantId,
          provider: 'openai',
          model: 'gpt-4o',
          usageType: 'input',
          unitPrice: '0.000002',
          effectiveFrom: new Date(now - 86400_000).toISOString(),
        },
      ],
    })
  plausible = {
    ids: [endpoint.createWebhookEndpoint.endpoint.id, '00000000-0000-0000-0000-000000000000', 'not-an-id', '1'],
    byName: {
      default: ['cust-1', 'gpt-4o', 'a'],
      id: ['seed-0', `fuzz-${now}`, 'cust-1', 'cust-3', endpoint.createWebhookEndpoint.endpoint.id],
      customerId: ['cust-1', 'cust-2', 'cust-new'],
      model: ['gpt-4o', 'claude-3-5-sonnet-latest', 'whisper-1', 'no-such-model'],
      provider: ['openai', 'anthropic', 'google', 'nope'],
      url: ['https://hooks.example.com/b', 'http://127.0.0.1:9/x', 'ftp://example.com'],
      eventTypes: ['budget.alert', 'price.change', 'stripe.push_failed', 'nope'],
      budgetTimeZone: ['Europe/Paris', 'UTC', 'Mars/Olympus'],
      timeZone: ['Europe/Paris', 'UTC', 'Mars/Olympus'],
      widgetOrigins: ['https://app.example.com', 'not an origin'],
      secretKey: ['sk_test_burnrateFuzz0001', 'sk_test_burnrateOther0002', 'bad-key', 'rk_test_x'],
      webhookSecret: ['whsec_fuzzfuzz01'],
      apiKey: ['sk_test_burnrateFuzz0001', 'bad-key'],
      document: [overrideDoc(t.tenant.id), overrideDoc('someone-else'), 'overrides: [', '{"overrides": 5}'],
      identifiers: ['x', 'ident-1'],
      usageType: ['input', 'output', 'cache_read', 'audio_seconds', 'nope'],
      unit: ['token', 'image', 'second', 'nope'],
      name: ['images', 'audio_seconds', 'web_searches', 'Fuzz'],
      reservationId: ['res-1'],
      after: ['', 'bm90IGEgY3Vyc29y', 'x'],
      before: ['1', 'x'],
    },
  }
  await trackWrites()
})

afterAll(async () => {
  await t?.close()
})

/**
 * Test-only row triggers on every table count committed writes per table and operation. They run
 * inside the writer's transaction, so a rolled-back write leaves no count: exactly the
 * "committed, then answered with an error" we look for, updates included, at one read per request.
 */
async function trackWrites(): Promise<void> {
  const db = t.app.services.db
  await sql`create table fuzz_writes (table_name text, op text, n bigint not null, primary key (table_name, op))`.execute(
    db,
  )
  await sql`create function fuzz_count_write() returns trigger language plpgsql as $$
    begin
      insert into fuzz_writes values (TG_TABLE_NAME, TG_OP, 1)
        on conflict (table_name, op) do update set n = fuzz_writes.n + 1;
      return null;
    end $$`.execute(db)
  // Tables and partitioned tables, not their partitions: a row trigger on a partitioned table is
  // cloned onto every partition (usage_events' months), present and future.
  const found = await sql<{ table_name: string }>`select c.relname as table_name from pg_class c
    where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
      and c.relname not like 'kysely_%' and c.relname <> 'fuzz_writes'`.execute(db)
  for (const { table_name: name } of found.rows) {
    await sql
      .raw(
        `create trigger fuzz_count_write after insert or update or delete on "${name}" for each row execute function fuzz_count_write()`,
      )
      .execute(db)
  }
}

async function writeCounts(): Promise<Map<string, number>> {
  const result = await sql<{
    table_name: string
    op: string
    n: string | number
  }>`select table_name, op, n from fuzz_writes`.execute(t.app.services.db)
  return new Map(result.rows.map((r) => [`${r.op} ${r.table_name}`, Number(r.n)]))
}

function authHeaders(principal: Principal): Record<string, string> {
  switch (principal) {
    case 'tenant':
      return { authorization: `Bearer ${t.tenant.apiKey}` }
    case 'other-tenant':
      return { authorization: `Bearer ${otherTenantKey}` }
    case 'widget':
      return { authorization: `Bearer ${widgetToken}` }
    case 'widget-wrong-origin':
      return { authorization: `Bearer ${widgetToken}`, origin: 'https://evil.example.com' }
    case 'wrong-key':
      return { authorization: 'Bearer sk_live_0000000000000000000000000000' }
    case 'none':
      return {}
  }
}

const principalArb: fc.Arbitrary<Principal> = fc.oneof(
  { weight: 12, arbitrary: fc.constant('tenant' as const) },
  { weight: 3, arbitrary: fc.constant('widget' as const) },
  { weight: 1, arbitrary: fc.constant('widget-wrong-origin' as const) },
  { weight: 2, arbitrary: fc.constant('other-tenant' as const) },
  { weight: 1, arbitrary: fc.constant('wrong-key' as const) },
  { weight: 1, arbitrary: fc.constant('none' as const) },
)

const headerNoiseArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Record<string, string>>(
      { 'x-request-id': 'r'.repeat(5000) },
      { 'x-request-id': '../../etc' },
      { authorization: 'Basic YTpi' },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${'k'.repeat(10_000)}` },
      { authorization: 'Bearer a b c' },
      { 'content-type': 'application/json; charset=latin1' },
      { 'content-type': 'application/graphql+json' },
      { accept: 'application/graphql-response+json' },
      { accept: '*/*' },
    ),
  },
)

function graphqlRequestArb(operations: SchemaOperation[]): fc.Arbitrary<FuzzRequest> {
  const perOperation = operations.map((op) => ({ op, arb: operationArb(op, plausible) }))
  return (
    fc
      // Subscriptions are held open for a moment each: fewer of them keep the run short.
      .tuple(
        fc.oneof(
          ...perOperation.map(({ op, arb }) => ({ weight: op.kind === 'subscription' ? 1 : 4, arbitrary: arb })),
        ),
        principalArb,
        headerNoiseArb,
      )
      .map(([generated, principal, noise]: [GeneratedOperation, Principal, Record<string, string>]) => {
        const subscription = generated.operation.startsWith('subscription.')
        return {
          kind: 'graphql',
          label: generated.operation,
          principal,
          path: '/graphql',
          mutation: generated.operation.startsWith('mutation.'),
          subscription,
          init: {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(subscription ? { accept: 'text/event-stream' } : {}),
              ...authHeaders(principal),
              ...noise,
            },
            body: expandMarkers(JSON.stringify({ query: generated.query, variables: generated.variables })),
          },
        }
      })
  )
}

/** Broken bodies and documents: what a client library or an attacker may send instead of a request. */
interface RawRequest {
  label: string
  body?: string
  contentType?: string
  method?: 'GET' | 'POST'
  /** Path and query string; default /graphql. */
  path?: string
  headers?: Record<string, string>
}

const UPSERT_PLAIN = 'mutation { upsertCustomer(input: {id: \\"plain\\"}) { id } }'

const RAW_BODIES: RawRequest[] = [
  { label: 'invalid JSON', body: '{"query": ' },
  { label: 'empty body', body: '' },
  { label: 'JSON null', body: 'null' },
  { label: 'JSON array', body: '[{"query": "{ tenant { id } }"}]' },
  { label: 'no query', body: '{}' },
  { label: 'query not a string', body: '{"query": 5}' },
  {
    label: 'variables a string',
    body: '{"query": "query ($a: String) { customer(id: $a) { id } }", "variables": "x"}',
  },
  { label: 'variables an array', body: '{"query": "{ tenant { id } }", "variables": [1]}' },
  {
    label: 'extensions junk',
    body: '{"query": "{ tenant { id } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "x"}}}',
  },
  { label: 'unknown operationName', body: '{"query": "{ tenant { id } }", "operationName": "Nope"}' },
  { label: 'two operations, none named', body: '{"query": "query A { tenant { id } } query B { tenant { id } }"}' },
  { label: 'syntax error', body: '{"query": "{ tenant { id "}' },
  { label: 'unknown field', body: '{"query": "{ nope }"}' },
  { label: 'NUL in query text', body: JSON.stringify({ query: '{ customer(id: "a\u0000b") { id } }' }) },
  { label: 'lone surrogate in query text', body: JSON.stringify({ query: '{ customer(id: "\ud800") { id } }' }) },
  { label: 'escaped NUL literal', body: JSON.stringify({ query: '{ customer(id: "a\\u0000b") { id } }' }) },
  { label: 'escaped surrogate literal', body: JSON.stringify({ query: '{ customer(id: "\\ud800") { id } }' }) },
  { label: 'subscription without SSE', body: '{"query": "subscription { budgetAlerts { id } }"}' },
  { label: 'introspection', body: '{"query": "{ __schema { queryType { name } } }"}' },
  { label: 'mutation as text/plain', body: `{"query": "${UPSERT_PLAIN}"}`, contentType: 'text/plain' },
  {
    label: 'huge string literal',
    body: JSON.stringify({ query: `{ customer(id: "${'y'.repeat(500_000)}") { id } }` }),
  },
  {
    label: 'many aliases',
    body: JSON.stringify({ query: `{ ${Array.from({ length: 200 }, (_, i) => `a${i}: tenant { id }`).join(' ')} }` }),
  },
  { label: 'UTF-8 BOM', body: '\ufeff{"query": "{ tenant { id } }"}' },
  // What HTTP clients get wrong: refused as a whole, before anything runs.
  { label: 'mutation with Accept: image/png', body: `{"query": "${UPSERT_PLAIN}"}`, headers: { accept: 'image/png' } },
  {
    label: 'form-encoded mutation',
    body: `query=${encodeURIComponent('mutation { upsertCustomer(input: {id: "form"}) { id } }')}`,
    contentType: 'application/x-www-form-urlencoded',
  },
  {
    label: 'garbage multipart',
    body: '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{bad\r\n--x--',
    contentType: 'multipart/form-data; boundary=x',
  },
  { label: 'multipart without boundary', body: 'junk', contentType: 'multipart/form-data' },
  {
    label: 'GET malformed variables',
    method: 'GET',
    path: `/graphql?query=${encodeURIComponent('query ($a: String) { customer(id: $a) { id } }')}&variables=%7Bbad`,
  },
  { label: 'GET malformed percent-encoding', method: 'GET', path: '/graphql?query=%E0%A4%A' },
  {
    label: 'GET variables an array',
    method: 'GET',
    path: `/graphql?query=${encodeURIComponent('{ tenant { id } }')}&variables=%5B1%5D`,
  },
  {
    label: 'GET mutation',
    method: 'GET',
    path: `/graphql?query=${encodeURIComponent('mutation { upsertCustomer(input: {id: "get"}) { id } }')}`,
  },
  { label: '3,000-deep query', body: JSON.stringify({ query: '{ tenant '.repeat(3000) + '}'.repeat(3000) }) },
  {
    label: '3,000-deep list literal',
    body: JSON.stringify({ query: `{ customer(id: ${'['.repeat(3000)}"a"${']'.repeat(3000)}) { id } }` }),
  },
]

const rawRequestArb: fc.Arbitrary<FuzzRequest> = fc
  .tuple(fc.constantFrom(...RAW_BODIES), principalArb)
  .map(([raw, principal]) => {
    const text = `${raw.path ?? ''} ${raw.body ?? ''}`
    const method = raw.method ?? 'POST'
    return {
      kind: 'raw',
      label: `raw: ${raw.label}`,
      principal,
      path: raw.path ?? '/graphql',
      mutation: /mutation/.test(decodeURIComponentSafe(text)),
      subscription: text.includes('subscription'),
      init: {
        method,
        headers: {
          ...(method === 'POST' ? { 'content-type': raw.contentType ?? 'application/json' } : {}),
          ...authHeaders(principal),
          ...raw.headers,
        },
        ...(method === 'POST' ? { body: raw.body ?? '' } : {}),
      },
    }
  })

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

interface Outcome {
  status: number
  errors: { message: string; extensions?: Record<string, unknown> }[]
}

/** Reads a JSON response, or the first SSE events of a subscription (then hangs up: it would never end). */
async function send(request: FuzzRequest): Promise<Outcome> {
  const abort = new AbortController()
  const response = await t.app.yoga.fetch(`http://burnrate.test${request.path}`, {
    ...request.init,
    signal: abort.signal,
  })
  const streamed = /text\/event-stream|multipart\/mixed/.test(response.headers.get('content-type') ?? '')
  if (request.subscription && streamed) {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    // An accepted subscription sends nothing until an event happens; a refused one sends its errors at once.
    const deadline = new Promise<'idle'>((resolve) => setTimeout(() => resolve('idle'), 40))
    for (;;) {
      const next = await Promise.race([reader.read(), deadline])
      if (next === 'idle' || next.done) break
      text += decoder.decode(next.value, { stream: true })
      if (/event: (next|complete)/.test(text) && text.endsWith('\n\n')) break
    }
    abort.abort()
    await reader.cancel().catch(() => {})
    const errors = [...text.matchAll(/^data: (.*)$/gm)].flatMap((m) => {
      try {
        return ((JSON.parse(m[1]!) as { errors?: Outcome['errors'] }).errors ?? []) as Outcome['errors']
      } catch {
        return []
      }
    })
    return { status: response.status, errors }
  }
  const text = await response.text()
  let errors: Outcome['errors'] = []
  try {
    const parsed = JSON.parse(text) as { errors?: Outcome['errors'] }
    errors = parsed.errors ?? []
  } catch {
    if (response.status >= 400)
      errors = [{ message: text.slice(0, 200), extensions: { code: `HTTP_${response.status}` } }]
  }
  return { status: response.status, errors }
}

const describeRequest = (r: FuzzRequest) =>
  `${r.label} as ${r.principal}: ${r.init.method} ${r.path.slice(0, 200)} ${(r.init.body ?? '').slice(0, 600)}`

describe('schema-driven fuzz', () => {
  it(
    `answers ${RUNS} hostile requests with 4xx-class errors only, and changes nothing when it refuses`,
    { timeout: 1_200_000 },
    async () => {
      const operations = operationsOf(buildSchema())
      expect(operations.length).toBeGreaterThan(50)
      const requestArb = fc.oneof(
        { weight: 19, arbitrary: graphqlRequestArb(operations) },
        { weight: 1, arbitrary: rawRequestArb },
      )

      const statuses = new Map<number, number>()
      const codes = new Map<string, number>()
      const covered = new Map<string, number>()
      const failures: string[] = []
      const partialWrites: string[] = []
      let sent = 0
      for (let batch = 0; sent < RUNS; batch++) {
        const requests = fc.sample(requestArb, { seed: SEED + batch, numRuns: Math.min(BATCH, RUNS - sent) })
        for (const request of requests) {
          const before = request.mutation ? await writeCounts() : null
          let outcome: Outcome
          try {
            outcome = await send(request)
          } catch (error) {
            failures.push(`threw ${String(error)}: ${describeRequest(request)}`)
            sent++
            continue
          }
          sent++
          covered.set(request.label, (covered.get(request.label) ?? 0) + 1)
          statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1)
          for (const error of outcome.errors) {
            const code = String(error.extensions?.code ?? 'NO_CODE')
            codes.set(code, (codes.get(code) ?? 0) + 1)
            if (code === 'INTERNAL_SERVER_ERROR' || code === 'NO_CODE')
              failures.push(`${code} "${error.message.slice(0, 200)}": ${describeRequest(request)}`)
          }
          if (outcome.status >= 500) failures.push(`HTTP ${outcome.status}: ${describeRequest(request)}`)
          if (before && (outcome.errors.length > 0 || outcome.status >= 400)) {
            const after = await writeCounts()
            const changed = [...after]
              .filter(([key, n]) => before.get(key) !== n)
              .map(([key, n]) => `${key} ×${n - (before.get(key) ?? 0)}`)
            if (changed.length)
              partialWrites.push(
                `${changed.join(', ')} after ${JSON.stringify(outcome.errors.map((e) => e.message.slice(0, 120)))}: ${describeRequest(request)}`,
              )
          }
        }
      }

      // FUZZ_TRACE=1 lists every finding, not only the first 20 the assertions show.
      if (process.env.FUZZ_TRACE) console.log([...failures, ...partialWrites].join('\n'))
      const alive = await t.gql('{ tenant { id } }')
      const rootFields = operations.map((op) => `${op.kind}.${op.field.name}`)
      const uncovered = rootFields.filter((name) => !covered.has(name))
      const histogram = [...statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')
      const topCodes = [...codes.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')
      console.log(
        [
          `fuzz: ${sent} requests (seed ${SEED}), ${rootFields.length - uncovered.length}/${rootFields.length} root fields covered`,
          `fuzz: HTTP status ${histogram}`,
          `fuzz: error codes ${topCodes}`,
          `fuzz: ${failures.length} 5xx, internal or uncoded errors; ${partialWrites.length} partial writes`,
        ].join('\n'),
      )
      expect(alive.data?.tenant?.id).toBe(t.tenant.id)
      expect(sent).toBeGreaterThanOrEqual(10_000)
      expect(uncovered).toEqual([])
      expect(failures.slice(0, 20)).toEqual([])
      expect(partialWrites.slice(0, 20)).toEqual([])
    },
  )
})
