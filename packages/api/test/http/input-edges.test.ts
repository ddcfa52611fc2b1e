/**
 * Values PostgreSQL or JavaScript cannot hold get a clear BAD_USER_INPUT naming the field, before
 * anything is written: NUL and lone surrogates in any string, timestamps outside 1970–9999, JSON too
 * deep or too big. Also: an empty settings update, invoice totals past 32 bits, and a Stripe key that
 * Stripe refuses.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/clock.ts'
import { createStripeTestApp, type StripeTestApp } from '../stripe/stripe-support.ts'

// The documented limits of JSON inputs (README, Input limits).
const JSON_LIMITS = { maxDepth: 20, maxBytes: 65_536 }

let t: StripeTestApp

beforeAll(async () => {
  t = await createStripeTestApp({ clock: systemClock })
})
afterAll(async () => {
  await t?.close()
})

const RECORD = 'mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { code } } }'
const UPSERT = 'mutation ($input: CustomerInput!) { upsertCustomer(input: $input) { id name } }'
const event = (overrides: Record<string, unknown> = {}) => ({
  id: `ev-${Math.random().toString(36).slice(2)}`,
  customerId: 'cust-edges',
  model: 'gpt-4o',
  timestamp: new Date(Date.now() - 60_000).toISOString(),
  inputTokens: 10,
  outputTokens: 5,
  ...overrides,
})

async function count(table: 'usage_events' | 'customers'): Promise<number> {
  const row = await t.app.services.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

function badInput(res: { errors?: { message: string; extensions?: Record<string, unknown> }[] }) {
  expect(res.errors, JSON.stringify(res)).toHaveLength(1)
  expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT')
  return { message: res.errors![0]!.message, field: res.errors![0]!.extensions?.field }
}

describe('text PostgreSQL cannot store', () => {
  it('refuses a NUL character in a variable, naming its path, and stores nothing', async () => {
    const before = await count('customers')
    const refused = badInput(await t.gql(UPSERT, { input: { id: 'nul-customer', name: 'a\u0000b' } }))
    expect(refused.field).toBe('input.name')
    expect(refused.message).toMatch(/NUL/)
    expect(await count('customers')).toBe(before)
  })

  it('refuses a NUL character written inline in the query', async () => {
    const refused = badInput(await t.gql('mutation { upsertCustomer(input: { id: "x\\u0000" }) { id } }'))
    expect(refused.field).toBe('input.id')
  })

  it('refuses lone surrogates instead of storing them altered', async () => {
    const before = await count('usage_events')
    const lone = badInput(await t.gql(RECORD, { e: event({ customerId: 'cust-\ud800' }) }))
    expect(lone.field).toBe('e.customerId')
    expect(lone.message).toMatch(/surrogate/)
    const reversed = badInput(await t.gql('query ($id: String!) { customer(id: $id) { id } }', { id: '\udc00\ud800x' }))
    expect(reversed.field).toBe('id')
    // Written into the query text, graphql-js's lexer refuses them already.
    const literal = await t.gql('{ customer(id: "\\ud800") { id } }')
    expect(literal.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED')
    expect(await count('usage_events')).toBe(before)
    // A proper pair (an emoji) is text like any other.
    const fine = await t.gql(UPSERT, { input: { id: 'emoji-customer', name: 'Burn 🔥' } })
    expect(fine.data?.upsertCustomer).toEqual({ id: 'emoji-customer', name: 'Burn 🔥' })
  })

  it('checks JSON keys and values too, inside lists', async () => {
    const key = badInput(await t.gql(RECORD, { e: event({ metadata: { 'a\u0000': 1 } }) }))
    expect(key.field).toBe('e.metadata')
    const batch = badInput(
      await t.gql('mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { recorded } }', {
        events: [event(), event({ metadata: { note: 'x\udfff' } })],
      }),
    )
    expect(batch.field).toBe('events.1.metadata.note')
  })
})

describe('timestamps', () => {
  it('refuses year 0000 and years past 9999 with the field, instead of failing in SQL', async () => {
    const before = await count('usage_events')
    for (const timestamp of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '+010000-01-01T00:00:00Z']) {
      const refused = badInput(await t.gql(RECORD, { e: event({ timestamp }) }))
      expect(refused.field).toBe('e.timestamp')
    }
    const summary = await t.gql('{ usageSummary(from: "0000-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { amount } }')
    expect(summary.errors?.[0]?.message).toMatch(/1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z/)
    expect(await count('usage_events')).toBe(before)
  })
})

describe('JSON inputs', () => {
  it(`refuses metadata nested deeper than ${JSON_LIMITS.maxDepth} levels, and says so`, async () => {
    // Built as text: JSON.stringify itself overflows the stack at this depth.
    const body = JSON.stringify({ query: RECORD, variables: { e: event({ metadata: '__DEEP__' }) } }).replace(
      '"__DEEP__"',
      '{"a":'.repeat(5000) + '1' + '}'.repeat(5000),
    )
    const response = await t.app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.tenant.apiKey}` },
      body,
    })
    const refused = badInput(
      (await response.json()) as { errors?: { message: string; extensions?: Record<string, unknown> }[] },
    )
    expect(refused.message).toMatch(new RegExp(`deeper than ${JSON_LIMITS.maxDepth} levels`))
    expect(refused.field).toBe('e.metadata')
    const big = badInput(await t.gql(RECORD, { e: event({ metadata: { note: 'x'.repeat(JSON_LIMITS.maxBytes) } }) }))
    expect(big.message).toMatch(new RegExp(`larger than ${JSON_LIMITS.maxBytes} bytes`))
  })
})

describe('updateTenantSettings', () => {
  it('with an empty input changes nothing and returns the settings in force', async () => {
    const set = await t.gql(
      'mutation { updateTenantSettings(input: { budgetTimeZone: "Europe/Paris" }) { budgetTimeZone } }',
    )
    expect(set.errors).toBeUndefined()
    const res = await t.gql('mutation { updateTenantSettings(input: {}) { id budgetTimeZone } }')
    expect(res.errors).toBeUndefined()
    expect(res.data?.updateTenantSettings).toEqual({ id: t.tenant.id, budgetTimeZone: 'Europe/Paris' })
  })
})

describe('Stripe', () => {
  it('reports invoice totals beyond 32 bits exactly', async () => {
    await t.app.services.db
      .insertInto('stripe_invoices')
      .values({
        tenant_id: t.tenant.id,
        invoice_id: 'in_big',
        stripe_customer_id: 'cus_big',
        customer_id: null,
        status: 'open',
        currency: 'usd',
        total: 99_999_999_999,
        period_start: null,
        period_end: null,
        hosted_invoice_url: null,
        event_created: 1,
      })
      .execute()
    const res = await t.gql('{ stripeInvoices { id total } }')
    expect(res.errors).toBeUndefined()
    expect(res.data?.stripeInvoices).toEqual([{ id: 'in_big', total: '99999999999' }])
  })

  it('answers a key Stripe refuses (401 Invalid API Key) as user input on secretKey, and leaves the account as it was', async () => {
    // A restricted-key shape we accept, which the fake Stripe (like Stripe for a revoked key) answers with 401.
    const stored = await t.gql(
      'mutation { setStripeCredentials(input: { secretKey: "rk_test_revokedKey0001" }) { mode } }',
    )
    expect(stored.errors).toBeUndefined()
    const before = await sql`select * from stripe_accounts where tenant_id = ${t.tenant.id}`.execute(t.app.services.db)
    const res = await t.gql('mutation { setupStripeBilling(input: { mode: ITEMIZED }) { account { meterId } } }')
    const refused = badInput(res)
    expect(refused.field).toBe('secretKey')
    expect(refused.message).toMatch(/Invalid API Key/)
    const after = await sql`select * from stripe_accounts where tenant_id = ${t.tenant.id}`.execute(t.app.services.db)
    expect(after.rows).toEqual(before.rows)
  })
})
