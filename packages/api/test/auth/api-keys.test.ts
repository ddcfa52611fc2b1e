/**
 * API keys with roles: the tenant's first key is ADMIN; a READ_ONLY key runs every query and is
 * refused every mutation of the schema (enumerated, so a mutation added later is covered); keys are
 * created and revoked through the API and every change lands in the audit log with its author.
 */
import { getNamedType, isObjectType, isInterfaceType, isUnionType, type GraphQLField } from 'graphql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildSchema } from '../../src/schema/index.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

let t: TestApp

beforeAll(async () => {
  t = await createTestApp({ loadCatalog: false })
})
afterAll(() => t?.close())

const VIEWER = '{ viewer { role keyId keyName authMethod tenant { id name } } }'
const CREATE = `mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name role prefix createdAt revokedAt } }
}`

async function createKey(role: 'ADMIN' | 'READ_ONLY', name = `${role} key`) {
  const res = await t.gql(CREATE, { input: { name, role } })
  expect(res.errors).toBeUndefined()
  return res.data!.createApiKey as {
    secret: string
    apiKey: { id: string; name: string; role: string; prefix: string }
  }
}

/** A document calling one Mutation field with every argument as a variable (none given). */
function mutationDocument(field: GraphQLField<unknown, unknown>): string {
  const vars = field.args.map((a) => `$${a.name}: ${a.type.toString()}`)
  const args = field.args.map((a) => `${a.name}: $${a.name}`)
  const named = getNamedType(field.type)
  const composite = isObjectType(named) || isInterfaceType(named) || isUnionType(named)
  return `mutation${vars.length ? `(${vars.join(', ')})` : ''} { ${field.name}${args.length ? `(${args.join(', ')})` : ''}${composite ? ' { __typename }' : ''} }`
}

describe('roles', () => {
  it("the tenant's own key is its ADMIN key named default", async () => {
    const res = await t.gql(VIEWER)
    expect(res.errors).toBeUndefined()
    expect(res.data!.viewer).toMatchObject({
      role: 'ADMIN',
      keyName: 'default',
      authMethod: 'BEARER',
      tenant: { id: t.tenant.id, name: 'Test tenant' },
    })
    const keys = await t.gql('{ apiKeys { id name role prefix revokedAt } }')
    expect(keys.data!.apiKeys).toEqual([
      {
        id: res.data!.viewer.keyId,
        name: 'default',
        role: 'ADMIN',
        prefix: t.tenant.apiKey.slice(0, 12),
        revokedAt: null,
      },
    ])
  })

  it('a READ_ONLY key runs queries', async () => {
    const { secret, apiKey } = await createKey('READ_ONLY', 'auditor')
    expect(secret).toMatch(/^br_sk_/)
    expect(apiKey).toMatchObject({ name: 'auditor', role: 'READ_ONLY', prefix: secret.slice(0, 12) })
    const viewer = await t.gql(VIEWER, {}, secret)
    expect(viewer.data!.viewer).toMatchObject({ role: 'READ_ONLY', keyId: apiKey.id, keyName: 'auditor' })
    const read = await t.gql(
      `{ tenant { id } apiKeys { id } pricingPlan { kind percent }
         usageSummary(from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") { events cost }
         auditLog(first: 5) { edges { node { action } } } }`,
      {},
      secret,
    )
    expect(read.errors).toBeUndefined()
    expect(read.data!.tenant.id).toBe(t.tenant.id)
  })

  it('a READ_ONLY key is refused every mutation of the schema, and nothing changes', async () => {
    const { secret } = await createKey('READ_ONLY')
    const fields = Object.values(buildSchema().getMutationType()!.getFields())
    expect(fields.length).toBeGreaterThan(20)
    for (const field of fields) {
      const res = await t.gql(mutationDocument(field), {}, secret)
      expect(res.errors?.[0]?.extensions, field.name).toMatchObject({ code: 'FORBIDDEN', reason: 'READ_ONLY' })
      expect(res.errors![0]!.message).toMatch(/read-only/)
      expect(res.data ?? null, field.name).toBeNull()
    }
    // With valid arguments too: nothing is written.
    const plan = await t.gql(
      'mutation { setPricingPlan(input: { kind: MARKUP, percent: "40" }) { percent } }',
      {},
      secret,
    )
    expect(plan.errors![0]!.extensions!.code).toBe('FORBIDDEN')
    const now = await t.gql('{ pricingPlan { kind percent } }')
    expect(now.data!.pricingPlan).toEqual({ kind: 'MARKUP', percent: '0' })
    const created = await t.gql(CREATE, { input: { name: 'sneaky', role: 'ADMIN' } }, secret)
    expect(created.errors![0]!.extensions!.code).toBe('FORBIDDEN')
    const keys = await t.gql('{ apiKeys { name } }')
    expect(keys.data!.apiKeys.map((k: { name: string }) => k.name)).not.toContain('sneaky')
  })

  it('an ADMIN key created through the API can change things', async () => {
    const { secret } = await createKey('ADMIN', 'ops')
    const res = await t.gql(
      'mutation { setPricingPlan(input: { kind: MARGIN, percent: "20" }) { kind percent } }',
      {},
      secret,
    )
    expect(res.errors).toBeUndefined()
    expect(res.data!.setPricingPlan).toEqual({ kind: 'MARGIN', percent: '20' })
  })

  it('refuses a bad name', async () => {
    const res = await t.gql(CREATE, { input: { name: '   ', role: 'ADMIN' } })
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.name' })
  })

  it('a widget session cannot see the viewer or keys', async () => {
    const session = await t.gql('mutation { createWidgetSession(customerId: "c1") { token } }')
    const token = session.data!.createWidgetSession.token as string
    const res = await t.gql('{ apiKeys { id } }', {}, token)
    expect(res.errors![0]!.extensions!.code).toBe('FORBIDDEN')
    const audit = await t.gql('{ auditLog { edges { node { id } } } }', {}, token)
    expect(audit.errors![0]!.extensions!.code).toBe('FORBIDDEN')
  })
})

describe('revoking', () => {
  it('a revoked key stops working at once; the last ADMIN key cannot be revoked', async () => {
    const other = await t.createTenant('Revoker')
    const { secret, apiKey } = await createKeyFor(other.apiKey, 'READ_ONLY')
    expect((await t.gql(VIEWER, {}, secret)).data!.viewer.keyId).toBe(apiKey.id)
    const revoked = await t.gql(
      'mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }',
      { id: apiKey.id },
      other.apiKey,
    )
    expect(revoked.errors).toBeUndefined()
    expect(revoked.data!.revokeApiKey.revokedAt).not.toBeNull()
    const after = await t.gql(VIEWER, {}, secret)
    expect(after.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED')
    expect((await t.gql('{ apiKeys { id } }', {}, other.apiKey)).data!.apiKeys).toHaveLength(1)
    expect((await t.gql('{ apiKeys(includeRevoked: true) { id } }', {}, other.apiKey)).data!.apiKeys).toHaveLength(2)

    const me = (await t.gql(VIEWER, {}, other.apiKey)).data!.viewer.keyId
    const last = await t.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: me }, other.apiKey)
    expect(last.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' })
    expect((await t.gql(VIEWER, {}, other.apiKey)).data!.viewer.keyId).toBe(me)
  })

  it("another tenant's key is NOT_FOUND and stays active", async () => {
    const other = await t.createTenant('Victim')
    const victimKey = (await t.gql(VIEWER, {}, other.apiKey)).data!.viewer.keyId
    const res = await t.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: victimKey })
    expect(res.errors![0]!.extensions!.code).toBe('NOT_FOUND')
    expect((await t.gql(VIEWER, {}, other.apiKey)).data!.viewer.keyId).toBe(victimKey)
  })
})

async function createKeyFor(adminKey: string, role: 'ADMIN' | 'READ_ONLY') {
  const res = await t.gql(CREATE, { input: { name: `${role} key`, role } }, adminKey)
  expect(res.errors).toBeUndefined()
  return res.data!.createApiKey as { secret: string; apiKey: { id: string } }
}

describe('audit log of key changes', () => {
  it('records who created and revoked a key, with the request id, and pages newest first', async () => {
    const tenant = await t.createTenant('Audited')
    const adminId = (await t.gql(VIEWER, {}, tenant.apiKey)).data!.viewer.keyId
    const response = await t.app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${tenant.apiKey}`,
        'x-request-id': 'req-audit-1',
      },
      body: JSON.stringify({ query: CREATE, variables: { input: { name: 'ci', role: 'READ_ONLY' } } }),
    })
    const created = ((await response.json()) as { data: { createApiKey: { apiKey: { id: string } } } }).data
      .createApiKey
    await t.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: created.apiKey.id }, tenant.apiKey)

    const LOG = `query($filter: AuditLogFilter, $first: Int, $after: String) {
      auditLog(filter: $filter, first: $first, after: $after) {
        edges { cursor node { action entityType entityId actorKeyId actorKeyName actorRole actorAuthMethod before after requestId at } }
        pageInfo { hasNextPage endCursor }
      } }`
    const page1 = await t.gql(LOG, { first: 1 }, tenant.apiKey)
    expect(page1.errors).toBeUndefined()
    const revoke = page1.data!.auditLog.edges[0].node
    expect(revoke).toMatchObject({
      action: 'apiKey.revoke',
      entityType: 'ApiKey',
      entityId: created.apiKey.id,
      actorKeyId: adminId,
      actorKeyName: 'default',
      actorRole: 'ADMIN',
      actorAuthMethod: 'BEARER',
      before: { id: created.apiKey.id, name: 'ci', role: 'READ_ONLY', revokedAt: null },
    })
    expect(revoke.after.revokedAt).not.toBeNull()
    expect(JSON.stringify(revoke)).not.toMatch(/key_hash|signing/)
    expect(JSON.stringify(revoke)).not.toContain(tenant.apiKey)
    expect(page1.data!.auditLog.pageInfo.hasNextPage).toBe(true)

    const page2 = await t.gql(LOG, { first: 1, after: page1.data!.auditLog.pageInfo.endCursor }, tenant.apiKey)
    expect(page2.data!.auditLog.edges[0].node).toMatchObject({
      action: 'apiKey.create',
      requestId: 'req-audit-1',
      before: null,
      after: { name: 'ci', role: 'READ_ONLY', revokedAt: null },
    })
    expect(page2.data!.auditLog.pageInfo.hasNextPage).toBe(false)

    const filtered = await t.gql(LOG, { filter: { action: 'apiKey.create' } }, tenant.apiKey)
    expect(filtered.data!.auditLog.edges.map((e: { node: { action: string } }) => e.node.action)).toEqual([
      'apiKey.create',
    ])
    const byActor = await t.gql(
      LOG,
      { filter: { actorKeyId: adminId, entityType: 'ApiKey', entityId: created.apiKey.id } },
      tenant.apiKey,
    )
    expect(byActor.data!.auditLog.edges).toHaveLength(2)
    const future = await t.gql(LOG, { filter: { from: '2999-01-01T00:00:00Z' } }, tenant.apiKey)
    expect(future.data!.auditLog.edges).toEqual([])

    // The test tenant sees none of this tenant's entries.
    const mine = await t.gql(LOG, { filter: { entityId: created.apiKey.id } })
    expect(mine.data!.auditLog.edges).toEqual([])
  })

  it('refuses a foreign cursor and a bad range', async () => {
    const bad = await t.gql('{ auditLog(after: "nope") { edges { cursor } } }')
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    const range = await t.gql(
      '{ auditLog(filter: { from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }) { edges { cursor } } }',
    )
    expect(range.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter.from' })
  })
})
