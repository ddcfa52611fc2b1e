import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * Every mutation that changes money or configuration leaves an audit entry naming the key that
 * made it, with the entity before and after, and no secret in either.
 */
let t: TestApp
let key: string
let keyId: string

async function as(query: string, variables?: Record<string, unknown>) {
  const r = await t.gql(query, variables, key)
  expect(r.errors).toBeUndefined()
  return r.data!
}

const ENTRY = `query ($f: AuditLogFilter) { auditLog(filter: $f, first: 5) { edges { node {
  action entityType entityId actorKeyId actorKeyName actorRole actorAuthMethod before after } } } }`

/** The newest entry of an action, checked for its author. */
async function entry(action: string) {
  const r = await t.gql(ENTRY, { f: { action } })
  expect(r.errors).toBeUndefined()
  const node = r.data!.auditLog.edges[0]?.node
  expect(node, `an audit entry for ${action}`).toBeDefined()
  expect(node).toMatchObject({ actorKeyId: keyId, actorKeyName: 'ops', actorRole: 'ADMIN', actorAuthMethod: 'BEARER' })
  return node
}

const noSecret = (node: unknown, ...secrets: string[]) => {
  const text = JSON.stringify(node)
  for (const s of secrets) expect(text).not.toContain(s)
}

beforeAll(async () => {
  // The system clock: entries are listed newest first by time.
  t = await createTestApp({
    config: {
      STRIPE_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    },
  })
  const made = await t.gql(`mutation { createApiKey(input: { name: "ops", role: ADMIN }) { secret apiKey { id } } }`)
  key = made.data!.createApiKey.secret
  keyId = made.data!.createApiKey.apiKey.id
})
afterAll(() => t.close())

describe('audit wiring', () => {
  it('budgets: set (before null, then the old limit) and delete (after null)', async () => {
    const set = `mutation ($l: Decimal!) { setBudget(input: { customerId: "c1", period: MONTH, limit: $l }) { id } }`
    const id = (await as(set, { l: '10' })).setBudget.id
    let e = await entry('budget.set')
    expect(e).toMatchObject({
      entityType: 'Budget',
      entityId: id,
      before: null,
      after: { limit: '10', customerId: 'c1' },
    })
    await as(set, { l: '25' })
    e = await entry('budget.set')
    expect(e).toMatchObject({ before: { limit: '10' }, after: { limit: '25' } })
    expect((await as(`mutation ($id: ID!) { deleteBudget(id: $id) }`, { id })).deleteBudget).toBe(id)
    e = await entry('budget.delete')
    expect(e).toMatchObject({ entityType: 'Budget', entityId: id, before: { limit: '25' }, after: null })
    expect((await as(`query { budgets(customerId: "c1") { id } }`)).budgets).toEqual([])
    const again = await t.gql(`mutation ($id: ID!) { deleteBudget(id: $id) }`, { id }, key)
    expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' })
  })

  it('price overrides (set, import) and re-pricing', async () => {
    const i = {
      provider: 'acme',
      model: 'rocket-9',
      usageType: 'input',
      unitPrice: '0.000002',
      effectiveFrom: '2026-11-01T00:00:00Z',
    }
    await as(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, { i })
    let e = await entry('priceOverride.set')
    expect(e.entityId).toBe('acme/rocket-9/input')
    expect(e.before).toEqual([])
    expect(JSON.stringify(e.after)).toContain('0.000002')
    await as(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
      i: { ...i, unitPrice: '0.000003', effectiveFrom: '2026-11-10T00:00:00Z' },
    })
    e = await entry('priceOverride.set')
    expect(JSON.stringify(e.before)).toContain('0.000002')

    const tenantId = (await as(`query { viewer { tenant { id } } }`)).viewer.tenant.id
    const document = `overrides:\n  - { tenant: ${tenantId}, provider: acme, model: rocket-9, usageType: output, unitPrice: "0.000004", effectiveFrom: "2026-11-01T00:00:00Z" }`
    await as(`mutation ($d: String!) { importPriceOverrides(document: $d) { rowsOpened } }`, { d: document })
    e = await entry('priceOverride.import')
    expect(e.after.summaries[0].rowsOpened).toBeGreaterThan(0)

    await as(
      `mutation { repriceUsage(model: "rocket-9", provider: "acme", from: "2026-11-01T00:00:00Z", to: "2026-11-20T00:00:00Z", reason: "negotiated") { examined } }`,
    )
    e = await entry('usage.reprice')
    expect(e).toMatchObject({ entityId: 'acme/rocket-9', after: { request: { reason: 'negotiated' } } })
    expect(e.after.result).toHaveProperty('examined')
  })

  it('webhook endpoints: create, update, rotate the secret, disable — no secret in the log', async () => {
    const made = await as(
      `mutation { createWebhookEndpoint(url: "https://example.com/hook", eventTypes: ["budget.alert"]) { secret endpoint { id } } }`,
    )
    const id = made.createWebhookEndpoint.endpoint.id
    let e = await entry('webhookEndpoint.create')
    expect(e).toMatchObject({ entityType: 'WebhookEndpoint', entityId: String(id), before: null })
    noSecret(e, made.createWebhookEndpoint.secret)
    await as(`mutation ($id: ID!) { updateWebhookEndpoint(id: $id, input: { description: "ops" }) { id } }`, { id })
    e = await entry('webhookEndpoint.update')
    expect(e.before).toMatchObject({ url: 'https://example.com/hook' })
    expect(e.after).toMatchObject({ description: 'ops' })
    const rotated = await as(`mutation ($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id })
    e = await entry('webhookEndpoint.rotateSecret')
    expect(e.entityId).toBe(String(id))
    noSecret(e, made.createWebhookEndpoint.secret, rotated.rotateWebhookSecret.secret)
    await as(`mutation ($id: ID!) { disableWebhookEndpoint(id: $id) { id } }`, { id })
    e = await entry('webhookEndpoint.disable')
    expect(e.entityId).toBe(String(id))
  })

  it('Stripe credentials, gateway provider keys, reconciliation keys and tolerance', async () => {
    await as(
      `mutation { setStripeCredentials(input: { secretKey: "sk_test_auditAudit0001", webhookSecret: "whsec_auditaudit01" }) { keyHint } }`,
    )
    let e = await entry('stripe.setCredentials')
    expect(e.entityType).toBe('StripeAccount')
    noSecret(e, 'sk_test_auditAudit0001', 'whsec_auditaudit01')

    await as(`mutation { setProviderKey(input: { provider: OPENAI, apiKey: "sk-audit-provider-1234" }) { hint } }`)
    e = await entry('providerKey.set')
    expect(e).toMatchObject({ entityType: 'GatewayProviderKey', entityId: 'openai', before: null })
    noSecret(e, 'sk-audit-provider-1234')
    await as(`mutation { deleteProviderKey(provider: OPENAI) }`)
    e = await entry('providerKey.delete')
    expect(e).toMatchObject({ entityId: 'openai', after: null })
    expect(e.before).not.toBeNull()

    await as(`mutation { setProviderAdminKey(input: { provider: OPENAI, apiKey: "sk-admin-audit-5678" }) { hint } }`)
    e = await entry('providerAdminKey.set')
    expect(e).toMatchObject({ entityType: 'ProviderAdminKey', entityId: 'openai' })
    noSecret(e, 'sk-admin-audit-5678')
    await as(`mutation { deleteProviderAdminKey(provider: OPENAI) }`)
    e = await entry('providerAdminKey.delete')
    expect(e).toMatchObject({ entityId: 'openai', after: null })

    const before = (await as(`query { reconciliationTolerance }`)).reconciliationTolerance
    await as(`mutation { setReconciliationTolerance(percent: "2.5") }`)
    e = await entry('reconciliation.setTolerance')
    expect(e).toMatchObject({ before: { percent: before }, after: { percent: '2.5' } })
  })

  it('a refused mutation leaves no entry', async () => {
    const bad = await t.gql(`mutation { setReconciliationTolerance(percent: "-1") }`, undefined, key)
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    const r = await t.gql(ENTRY, { f: { action: 'reconciliation.setTolerance' } })
    expect(r.data!.auditLog.edges).toHaveLength(1)
  })
})
