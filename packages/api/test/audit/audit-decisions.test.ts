import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { createStripeTestApp, SET_CREDENTIALS, SETUP, type StripeTestApp } from '../stripe/stripe-support.ts'

/**
 * The audit entries of held price change decisions (confirm, reject) and of Stripe set-up
 * (credentials, billing set-up), read back through the auditLog query: who (the key), when, what,
 * the entity before and after; a refused decision leaves none.
 */
const ENTRY = `query ($f: AuditLogFilter) { auditLog(filter: $f, first: 10) { edges { node {
  id at action entityType entityId actorKeyId actorKeyName actorRole actorAuthMethod before after requestId } } } }`

type Gql = (query: string, variables?: Record<string, unknown>, key?: string) => Promise<{ data?: any; errors?: any }>

async function makeKey(gql: Gql, name: string) {
  const made = await gql(
    `mutation ($n: String!) { createApiKey(input: { name: $n, role: ADMIN }) { secret apiKey { id } } }`,
    {
      n: name,
    },
  )
  expect(made.errors).toBeUndefined()
  return { secret: made.data!.createApiKey.secret as string, id: made.data!.createApiKey.apiKey.id as string }
}

async function entries(gql: Gql, filter: Record<string, unknown>) {
  const r = await gql(ENTRY, { f: filter })
  expect(r.errors).toBeUndefined()
  return r.data!.auditLog.edges.map((e: { node: any }) => e.node) as any[]
}

const fixture = (name: string) =>
  readFileSync(new URL(`../../../catalog-sync/test/fixtures/${name}`, import.meta.url), 'utf8')

describe('audit: held price change decisions', () => {
  const clock = fixedClock('2026-11-23T12:00:00Z')
  let t: TestApp
  let server: Server
  let base: string
  const bodies = new Map<string, string>()
  let ops: { secret: string; id: string }
  let held: { id: string; usageType: string; oldUnitPrice: string; newUnitPrice: string }[]

  beforeAll(async () => {
    t = await createTestApp({ clock })
    server = createServer((req, res) => {
      const body = bodies.get(req.url ?? '')
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(body ?? '')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const models = JSON.parse(fixture('openrouter-models.json')) as {
      data: { id: string; pricing: Record<string, string> }[]
    }
    bodies.set('/v1', JSON.stringify(models))
    await t.app.services.catalog.syncSource('openrouter', { location: `${base}/v1` })
    // Input and output of gpt-4o move more than 10x: both held for a decision.
    const gpt = models.data.find((m) => m.id === 'openai/gpt-4o')!
    gpt.pricing.prompt = '0.00003'
    gpt.pricing.completion = '0.0002'
    bodies.set('/v2', JSON.stringify(models))
    clock.set('2026-11-23T13:00:00Z')
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/v2` })
    expect(summary.held).toBe(2)
    held = (await t.gql(`{ pendingPriceChanges { id usageType oldUnitPrice newUnitPrice } }`)).data!.pendingPriceChanges
    expect(held.map((h) => h.usageType).sort()).toEqual(['input', 'output'])
    ops = await makeKey(t.gql, 'catalog ops')
    t.app.services.config.CATALOG_ADMIN_TENANTS = [t.tenant.id]
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
    await t.close()
  })

  it('a decision refused (not a catalog admin, no such change) leaves no entry', async () => {
    t.app.services.config.CATALOG_ADMIN_TENANTS = []
    try {
      const forbidden = await t.gql(
        `mutation ($id: ID!) { confirmPriceChange(id: $id) { status } }`,
        { id: held[0]!.id },
        ops.secret,
      )
      expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    } finally {
      t.app.services.config.CATALOG_ADMIN_TENANTS = [t.tenant.id]
    }
    const missing = await t.gql(`mutation { rejectPriceChange(id: "999999") { status } }`, undefined, ops.secret)
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')
    expect(await entries(t.gql, { entityType: 'PendingPriceChange' })).toEqual([])
  })

  it('confirm: who, when, the held change before (PENDING) and after (CONFIRMED)', async () => {
    const input = held.find((h) => h.usageType === 'input')!
    clock.set('2026-11-23T14:05:00Z')
    const r = await t.gql(
      `mutation ($id: ID!) { confirmPriceChange(id: $id) { id status } }`,
      { id: input.id },
      ops.secret,
    )
    expect(r.errors).toBeUndefined()
    expect(r.data!.confirmPriceChange.status).toBe('CONFIRMED')
    const [e, ...rest] = await entries(t.gql, { action: 'priceChange.confirm' })
    expect(rest).toEqual([])
    expect(e).toMatchObject({
      at: '2026-11-23T14:05:00.000Z',
      action: 'priceChange.confirm',
      entityType: 'PendingPriceChange',
      entityId: input.id,
      actorKeyId: ops.id,
      actorKeyName: 'catalog ops',
      actorRole: 'ADMIN',
      actorAuthMethod: 'BEARER',
      before: {
        provider: 'openrouter',
        model: 'openai/gpt-4o',
        usage_type: 'input',
        old_unit_price: '0.0000025',
        new_unit_price: '0.00003',
        status: 'PENDING',
      },
      after: { provider: 'openrouter', model: 'openai/gpt-4o', usage_type: 'input', status: 'CONFIRMED' },
    })
    expect(e.requestId).toEqual(expect.any(String))
    // Confirming the input price decides that one only: the output move still waits for its decision.
    const pending = await t.gql(`{ pendingPriceChanges { usageType status } }`)
    expect(pending.data!.pendingPriceChanges).toEqual([{ usageType: 'output', status: 'PENDING' }])
    // The entry is found by the change it names, too.
    expect((await entries(t.gql, { entityType: 'PendingPriceChange', entityId: input.id })).map((x) => x.id)).toEqual([
      e.id,
    ])
  })

  it('reject: the held change before (PENDING) and after (REJECTED); the price in force stays', async () => {
    const output = held.find((h) => h.usageType === 'output')!
    clock.set('2026-11-23T14:10:00Z')
    const r = await t.gql(
      `mutation ($id: ID!) { rejectPriceChange(id: $id) { status } }`,
      { id: output.id },
      ops.secret,
    )
    expect(r.errors).toBeUndefined()
    expect(r.data!.rejectPriceChange.status).toBe('REJECTED')
    const [e] = await entries(t.gql, { action: 'priceChange.reject' })
    expect(e).toMatchObject({
      at: '2026-11-23T14:10:00.000Z',
      entityType: 'PendingPriceChange',
      entityId: output.id,
      actorKeyId: ops.id,
      before: {
        usage_type: 'output',
        old_unit_price: output.oldUnitPrice,
        new_unit_price: '0.0002',
        status: 'PENDING',
      },
      after: { usage_type: 'output', status: 'REJECTED' },
    })
    const prices = await t.gql(
      `{ providerPrices(provider: "openrouter", model: "openai/gpt-4o", at: "2026-11-23T14:30:00Z") { usageType unitPrice } }`,
    )
    expect(prices.data!.providerPrices).toEqual(
      expect.arrayContaining([
        { usageType: 'input', unitPrice: '0.00003' },
        { usageType: 'output', unitPrice: output.oldUnitPrice },
      ]),
    )
    // Deciding it again: no such pending change, no second entry.
    const again = await t.gql(
      `mutation ($id: ID!) { confirmPriceChange(id: $id) { status } }`,
      { id: output.id },
      ops.secret,
    )
    expect(again.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')
    expect(await entries(t.gql, { entityType: 'PendingPriceChange' })).toHaveLength(2)
  })
})

describe('audit: Stripe set-up', () => {
  const clock = fixedClock('2026-11-23T12:00:00Z')
  let t: StripeTestApp
  let ops: { secret: string; id: string }

  beforeAll(async () => {
    t = await createStripeTestApp({ clock })
    ops = await makeKey(t.gql, 'billing ops')
  })
  afterAll(async () => {
    await t?.close()
  })

  it('credentials: set (before null), replaced (before: the old hint) — who, when, no secret', async () => {
    clock.set('2026-11-23T12:01:00Z')
    const first = await t.gql(
      SET_CREDENTIALS,
      { input: { secretKey: 'sk_test_auditStripe00001111', webhookSecret: 'whsec_auditstripe01' } },
      ops.secret,
    )
    expect(first.errors).toBeUndefined()
    const hint1 = first.data!.setStripeCredentials.keyHint
    clock.set('2026-11-23T12:02:00Z')
    const second = await t.gql(SET_CREDENTIALS, { input: { secretKey: 'sk_test_auditStripe00002222' } }, ops.secret)
    expect(second.errors).toBeUndefined()
    const hint2 = second.data!.setStripeCredentials.keyHint
    expect(hint2).not.toBe(hint1)

    const [newer, older, ...rest] = await entries(t.gql, { action: 'stripe.setCredentials' })
    expect(rest).toEqual([])
    const who = { actorKeyId: ops.id, actorKeyName: 'billing ops', actorRole: 'ADMIN', actorAuthMethod: 'BEARER' }
    expect(older).toMatchObject({
      ...who,
      at: '2026-11-23T12:01:00.000Z',
      entityType: 'StripeAccount',
      before: null,
      after: { key_hint: hint1, mode: 'AMOUNT', meter_id: null },
    })
    expect(newer).toMatchObject({
      ...who,
      at: '2026-11-23T12:02:00.000Z',
      before: { key_hint: hint1 },
      after: { key_hint: hint2 },
    })
    const text = JSON.stringify([newer, older])
    for (const s of ['sk_test_auditStripe00001111', 'sk_test_auditStripe00002222', 'whsec_auditstripe01'])
      expect(text).not.toContain(s)
  })

  it('billing set-up: before (no meter), after (the meter, product and price it created)', async () => {
    clock.set('2026-11-23T12:05:00Z')
    const r = await t.gql(SETUP, { input: { createCustomers: true } }, ops.secret)
    expect(r.errors).toBeUndefined()
    const account = r.data!.setupStripeBilling.account
    expect(account.meterId).toEqual(expect.any(String))
    const [e, ...rest] = await entries(t.gql, { action: 'stripe.setup' })
    expect(rest).toEqual([])
    expect(e).toMatchObject({
      at: '2026-11-23T12:05:00.000Z',
      entityType: 'StripeAccount',
      actorKeyId: ops.id,
      actorKeyName: 'billing ops',
      actorRole: 'ADMIN',
    })
    expect(e.before).toMatchObject({ key_hint: expect.stringMatching(/2222$/), meter_id: null, setup_at: null })
    expect(e.after).toMatchObject({
      account: {
        meter_id: account.meterId,
        product_id: account.productId,
        price_id: account.priceId,
        setup_at: '2026-11-23T12:05:00.000Z',
      },
    })
    expect(JSON.stringify(e)).not.toContain('sk_test_auditStripe')
  })

  it('a refused set-up (mode changed once the meter exists) leaves no entry', async () => {
    const r = await t.gql(SETUP, { input: { mode: 'ITEMIZED' } }, ops.secret)
    expect(r.errors?.[0]?.extensions?.code).toEqual(expect.any(String))
    expect(await entries(t.gql, { action: 'stripe.setup' })).toHaveLength(1)
  })
})
