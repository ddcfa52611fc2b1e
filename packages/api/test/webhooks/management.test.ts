import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { createWebhookDispatcher, type DispatcherOptions } from '../../src/webhooks/dispatcher.ts'
import { decodeDeliveryCursor, encodeDeliveryCursor } from '../../src/webhooks/deliveries.ts'
import { rotationGraceSeconds } from '../../src/webhooks/endpoints.ts'
import { enqueueWebhookEvent, type WebhookEventType } from '../../src/webhooks/events.ts'
import { signPayload, signingSecrets, verifySignature } from '../../src/webhooks/signing.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { receiverVerifies, startWebhookReceiver as receiver, type Delivery } from '../support/webhook-receiver.ts'

const clock = fixedClock('2026-11-23T10:00:00Z')
const logger = createLogger('silent')
const OPTIONS: DispatcherOptions = {
  timeoutMs: 3_000,
  backoffBaseMs: 60_000,
  pollIntervalMs: 50,
  random: () => 0.5,
  allowPrivateTargets: true,
}
let t: TestApp

const v1Count = (d: Delivery) =>
  String(d.headers['burnrate-signature'])
    .split(',')
    .filter((p) => p.startsWith('v1=')).length
const nowSeconds = () => Math.floor(clock.now().getTime() / 1000)

async function createEndpoint(url: string, eventTypes: string[], key: string) {
  const reply = await t.gql(
    `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret endpoint { id } } }`,
    { u: url, e: eventTypes },
    key,
  )
  expect(reply.errors).toBeUndefined()
  return reply.data!.createWebhookEndpoint as { secret: string; endpoint: { id: string } }
}

let n = 0
async function enqueue(tenantId: string, type: WebhookEventType = 'budget.alert') {
  n += 1
  return enqueueWebhookEvent(
    t.app.services.db,
    { tenantId, type, dedupeKey: `mgmt:${n}`, payload: { n } },
    clock.now(),
    t.app.services.config.WEBHOOK_MAX_ATTEMPTS,
  )
}

const dispatcher = () => createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })

const ROTATE = `mutation ($id: ID!, $s: Int) { rotateWebhookSecret(id: $id, expiresPreviousInSeconds: $s) {
  secret previousSecretExpiresAt endpoint { id secretRotatedAt previousSecretExpiresAt } } }`
const UPDATE = `mutation ($id: ID!, $i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $i) { id url eventTypes description enabled } }`
const PAGE = `query ($e: ID, $f: Int, $a: String) { webhookDeliveriesPage(endpointId: $e, first: $f, after: $a) {
  edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor } } }`

beforeAll(async () => {
  t = await createTestApp({
    clock,
    loadCatalog: false,
    config: { WEBHOOK_MAX_ATTEMPTS: 3, WEBHOOK_ALLOW_PRIVATE_TARGETS: true },
  })
})

afterAll(async () => {
  await t?.close()
})

describe('webhook secret rotation', () => {
  it('signs with both secrets during the grace period, then only with the new one', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Rotation')
      const { secret: oldSecret, endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)

      const rotated = await t.gql(ROTATE, { id: endpoint.id, s: 3600 }, tenant.apiKey)
      expect(rotated.errors).toBeUndefined()
      const r = rotated.data!.rotateWebhookSecret
      const newSecret = r.secret as string
      expect(newSecret).toMatch(/^whsec_/)
      expect(newSecret).not.toBe(oldSecret)
      const graceEnd = new Date(clock.now().getTime() + 3600_000).toISOString()
      expect(r.previousSecretExpiresAt).toBe(graceEnd)
      expect(r.endpoint).toEqual({
        id: endpoint.id,
        secretRotatedAt: clock.now().toISOString(),
        previousSecretExpiresAt: graceEnd,
      })

      // During the grace period: one header, two v1 signatures, one per secret.
      await enqueue(tenant.id)
      expect(await dispatcher().runOnce()).toBe(1)
      const during = hooks.received[0]!
      expect(v1Count(during)).toBe(2)
      const header = String(during.headers['burnrate-signature'])
      expect(verifySignature(oldSecret, during.body, header, nowSeconds())).toBe(true)
      expect(verifySignature(newSecret, during.body, header, nowSeconds())).toBe(true)
      expect(receiverVerifies(oldSecret, during, nowSeconds())).toBe(true)
      expect(receiverVerifies(newSecret, during, nowSeconds())).toBe(true)
      expect(receiverVerifies('whsec_someone_else', during, nowSeconds())).toBe(false)
      // The current secret signs first: receivers that only read the first v1 keep working after rotating.
      const [, firstV1] = header.split(',')
      expect(firstV1).toBe(signPayload(newSecret, during.body, Number(header.split(',')[0]!.slice(2))).split(',')[1])

      // Past the grace end: only the new secret.
      clock.advance(3600_000)
      await enqueue(tenant.id)
      expect(await dispatcher().runOnce()).toBe(1)
      const after = hooks.received[1]!
      expect(v1Count(after)).toBe(1)
      expect(receiverVerifies(newSecret, after, nowSeconds())).toBe(true)
      expect(receiverVerifies(oldSecret, after, nowSeconds())).toBe(false)
      const listed = await t.gql(`{ webhookEndpoints { id previousSecretExpiresAt } }`, {}, tenant.apiKey)
      expect(listed.data?.webhookEndpoints).toEqual([{ id: endpoint.id, previousSecretExpiresAt: null }])
    } finally {
      await hooks.close()
    }
  })

  it('with a grace of 0 the old secret stops at once; rotating again drops the older previous secret', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Rotation twice')
      const { secret: first, endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      const second = (await t.gql(ROTATE, { id: endpoint.id }, tenant.apiKey)).data!.rotateWebhookSecret
      // Default grace: 24 h.
      expect(second.previousSecretExpiresAt).toBe(new Date(clock.now().getTime() + 24 * 3600_000).toISOString())
      const third = (await t.gql(ROTATE, { id: endpoint.id, s: 600 }, tenant.apiKey)).data!.rotateWebhookSecret
      await enqueue(tenant.id)
      await dispatcher().runOnce()
      const d1 = hooks.received[0]!
      expect(v1Count(d1)).toBe(2)
      expect(receiverVerifies(third.secret, d1, nowSeconds())).toBe(true)
      expect(receiverVerifies(second.secret, d1, nowSeconds())).toBe(true)
      expect(receiverVerifies(first, d1, nowSeconds())).toBe(false)

      const fourth = (await t.gql(ROTATE, { id: endpoint.id, s: 0 }, tenant.apiKey)).data!.rotateWebhookSecret
      expect(fourth.previousSecretExpiresAt).toBeNull()
      await enqueue(tenant.id)
      await dispatcher().runOnce()
      const d2 = hooks.received[1]!
      expect(v1Count(d2)).toBe(1)
      expect(receiverVerifies(fourth.secret, d2, nowSeconds())).toBe(true)
      expect(receiverVerifies(third.secret, d2, nowSeconds())).toBe(false)
    } finally {
      await hooks.close()
    }
  })

  it('bounds the grace period and keeps tenants apart', async () => {
    const tenant = await t.createTenant('Rotation bounds')
    const { endpoint } = await createEndpoint('https://example.com/rotate', ['price.change'], tenant.apiKey)
    for (const s of [-1, 7 * 24 * 3600 + 1]) {
      const reply = await t.gql(ROTATE, { id: endpoint.id, s }, tenant.apiKey)
      expect(reply.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'expiresPreviousInSeconds' })
    }
    // Another tenant's key (the test app's own tenant) does not find it.
    const foreign = await t.gql(ROTATE, { id: endpoint.id })
    expect(foreign.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' })
    expect((await t.gql(ROTATE, { id: 'we_nope' }, tenant.apiKey)).errors?.[0]?.extensions).toMatchObject({
      code: 'NOT_FOUND',
    })
    expect(rotationGraceSeconds(null)).toBe(86_400)
    expect(
      signingSecrets({ secret: 'a', previousSecret: 'b', previousSecretExpiresAt: new Date(1000) }, new Date(999)),
    ).toEqual(['a', 'b'])
    expect(
      signingSecrets({ secret: 'a', previousSecret: 'b', previousSecretExpiresAt: new Date(1000) }, new Date(1000)),
    ).toEqual(['a'])
  })
})

describe('webhook endpoint update', () => {
  it('changes URL and event types for the next event; the attempt log keeps where each attempt went', async () => {
    const a = await receiver()
    const b = await receiver()
    try {
      const tenant = await t.createTenant('Update')
      const { secret, endpoint } = await createEndpoint(a.url, ['budget.alert'], tenant.apiKey)
      await enqueue(tenant.id)
      await dispatcher().runOnce()
      expect(a.received).toHaveLength(1)

      const updated = await t.gql(
        UPDATE,
        {
          id: endpoint.id,
          i: { url: b.url, eventTypes: ['price.change', 'stripe.push_failed'], description: 'moved' },
        },
        tenant.apiKey,
      )
      expect(updated.errors).toBeUndefined()
      expect(updated.data?.updateWebhookEndpoint).toEqual({
        id: endpoint.id,
        url: b.url,
        eventTypes: ['price.change', 'stripe.push_failed'],
        description: 'moved',
        enabled: true,
      })

      // No longer subscribed to budget.alert: nothing is enqueued for it.
      expect(await enqueue(tenant.id, 'budget.alert')).toBeNull()
      clock.advance(1_000)
      expect(await enqueue(tenant.id, 'price.change')).not.toBeNull()
      expect(await dispatcher().runOnce()).toBe(1)
      expect(a.received).toHaveLength(1)
      expect(b.received).toHaveLength(1)
      expect(JSON.parse(b.received[0]!.body)).toMatchObject({ type: 'price.change' })
      // The secret did not change with the URL.
      expect(receiverVerifies(secret, b.received[0]!, nowSeconds())).toBe(true)

      const log = await t.gql(
        `query ($e: ID) { webhookDeliveries(endpointId: $e) { eventType attemptLog { url } } }`,
        { e: endpoint.id },
        tenant.apiKey,
      )
      expect(log.data?.webhookDeliveries).toEqual([
        { eventType: 'price.change', attemptLog: [{ url: b.url }] },
        { eventType: 'budget.alert', attemptLog: [{ url: a.url }] },
      ])

      // Partial: only the description changes (and null clears it).
      const cleared = await t.gql(UPDATE, { id: endpoint.id, i: { description: null } }, tenant.apiKey)
      expect(cleared.data?.updateWebhookEndpoint).toEqual({
        id: endpoint.id,
        url: b.url,
        eventTypes: ['price.change', 'stripe.push_failed'],
        description: null,
        enabled: true,
      })
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('refuses bad input with the field at fault and changes nothing; another tenant gets NOT_FOUND', async () => {
    const tenant = await t.createTenant('Update refused')
    const { endpoint } = await createEndpoint('https://example.com/original', ['budget.alert'], tenant.apiKey)
    const before = {
      id: endpoint.id,
      url: 'https://example.com/original',
      eventTypes: ['budget.alert'],
      description: null,
      enabled: true,
    }
    const refused = async (i: Record<string, unknown>, key = tenant.apiKey) =>
      (await t.gql(UPDATE, { id: endpoint.id, i }, key)).errors?.[0]?.extensions

    expect(await refused({ url: 'not a url', description: 'should not stick' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.url',
    })
    expect(await refused({ url: 'ftp://example.com/x' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.url' })
    expect(await refused({ url: 'https://user:pw@example.com/x' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.url',
    })
    // A valid URL with a bad event type: neither is applied.
    expect(await refused({ url: 'https://example.com/new', eventTypes: ['budget.alerts'] })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.eventTypes',
    })
    expect(await refused({ eventTypes: [] })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.eventTypes' })
    expect(await refused({ description: 'x'.repeat(501) })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.description',
    })
    // Another tenant (the test app's own) cannot change it, nor learn it exists.
    expect(await refused({ url: 'https://attacker.example/x' }, t.tenant.apiKey)).toMatchObject({ code: 'NOT_FOUND' })
    expect(
      (await t.gql(UPDATE, { id: 'we_nope', i: { enabled: true } }, tenant.apiKey)).errors?.[0]?.extensions,
    ).toMatchObject({ code: 'NOT_FOUND' })

    const listed = await t.gql(`{ webhookEndpoints { id url eventTypes description enabled } }`, {}, tenant.apiKey)
    expect(listed.data?.webhookEndpoints).toEqual([before])
  })

  it('refuses private targets (SSRF) when they are not allowed', async () => {
    const strict = await createTestApp({ clock, loadCatalog: false })
    try {
      const created = await strict.gql(
        `mutation { createWebhookEndpoint(url: "https://example.com/x", eventTypes: ["budget.alert"]) { endpoint { id } } }`,
      )
      const id = created.data!.createWebhookEndpoint.endpoint.id
      for (const url of [
        'http://127.0.0.1:8080/x',
        'http://localhost/x',
        'http://169.254.169.254/latest',
        'http://[::1]/x',
        'http://10.1.2.3/x',
      ]) {
        const reply = await strict.gql(UPDATE, { id, i: { url } })
        expect(reply.errors?.[0]?.extensions, url).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.url' })
      }
    } finally {
      await strict.close()
    }
  })

  it('disables and re-enables: pending deliveries die on disable, new events flow again after re-enabling', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Reenable')
      const { endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      await enqueue(tenant.id)
      const off = await t.gql(UPDATE, { id: endpoint.id, i: { enabled: false } }, tenant.apiKey)
      expect(off.data?.updateWebhookEndpoint.enabled).toBe(false)
      expect(await enqueue(tenant.id)).toBeNull()
      expect(await dispatcher().runOnce()).toBe(0)

      const on = await t.gql(UPDATE, { id: endpoint.id, i: { enabled: true } }, tenant.apiKey)
      expect(on.data?.updateWebhookEndpoint.enabled).toBe(true)
      clock.advance(1_000)
      await enqueue(tenant.id)
      expect(await dispatcher().runOnce()).toBe(1)
      const log = await t.gql(
        `query ($e: ID) { webhookDeliveries(endpointId: $e) { status lastError } }`,
        { e: endpoint.id },
        tenant.apiKey,
      )
      expect(log.data?.webhookDeliveries).toEqual([
        { status: 'SUCCEEDED', lastError: null },
        { status: 'DEAD', lastError: 'endpoint disabled' },
      ])
      expect(hooks.received).toHaveLength(1)
    } finally {
      await hooks.close()
    }
  })
})

describe('webhook delivery log pages', () => {
  it('pages newest first with an opaque cursor: no duplicates or gaps with deliveries added between pages', async () => {
    const tenant = await t.createTenant('Pages')
    const { endpoint } = await createEndpoint('https://example.com/pages', ['budget.alert'], tenant.apiKey)
    // 8 deliveries over three instants: equal timestamps are ordered by id.
    for (const step of [3, 3, 2]) {
      for (let i = 0; i < step; i++) await enqueue(tenant.id)
      clock.advance(1_000)
    }
    const all = async () =>
      (
        await t.gql(
          `query ($e: ID) { webhookDeliveries(endpointId: $e, first: 500) { id } }`,
          { e: endpoint.id },
          tenant.apiKey,
        )
      ).data!.webhookDeliveries.map((d: { id: string }) => d.id) as string[]
    const original = await all()
    expect(original).toHaveLength(8)

    type Page = {
      edges: { cursor: string; node: { id: string; createdAt: string } }[]
      pageInfo: { hasNextPage: boolean; endCursor: string | null }
    }
    const page = async (after: string | null) => {
      const reply = await t.gql(PAGE, { e: endpoint.id, f: 3, a: after }, tenant.apiKey)
      expect(reply.errors).toBeUndefined()
      return reply.data!.webhookDeliveriesPage as Page
    }
    const p1 = await page(null)
    // New deliveries arrive between pages (newer than anything listed): later pages are not shifted.
    await enqueue(tenant.id)
    await enqueue(tenant.id)
    const p2 = await page(p1.pageInfo.endCursor)
    clock.advance(1_000)
    await enqueue(tenant.id)
    const p3 = await page(p2.pageInfo.endCursor)

    expect([p1, p2, p3].map((p) => p.edges.length)).toEqual([3, 3, 2])
    expect([p1, p2, p3].map((p) => p.pageInfo.hasNextPage)).toEqual([true, true, false])
    const ids = [p1, p2, p3].flatMap((p) => p.edges.map((e) => e.node.id))
    expect(ids).toEqual(original)
    expect(new Set(ids).size).toBe(8)
    expect(p3.pageInfo.endCursor).toBe(p3.edges.at(-1)!.cursor)
    // Newest first on (createdAt, id).
    const nodes = [p1, p2, p3].flatMap((p) => p.edges.map((e) => e.node))
    for (let i = 1; i < nodes.length; i++) {
      const [prev, cur] = [nodes[i - 1]!, nodes[i]!]
      expect(prev.createdAt > cur.createdAt || (prev.createdAt === cur.createdAt && prev.id > cur.id)).toBe(true)
    }
    // From the top again: the three new ones first, then the same order.
    const fresh = await all()
    expect(fresh).toHaveLength(11)
    expect(fresh.slice(3)).toEqual(original)

    // The cursor is opaque and checked; another tenant's page is empty.
    expect(decodeDeliveryCursor(encodeDeliveryCursor({ createdAt: new Date(0), id: 'whd_x' }))).toEqual({
      createdAt: new Date(0),
      id: 'whd_x',
    })
    for (const a of [
      'nope!',
      Buffer.from('["x"]').toString('base64url'),
      Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000Z', 'id'])).toString('base64url'),
    ]) {
      const reply = await t.gql(PAGE, { e: endpoint.id, f: 3, a }, tenant.apiKey)
      expect(reply.errors?.[0]?.extensions, a).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    }
    for (const f of [0, 501]) {
      expect((await t.gql(PAGE, { e: endpoint.id, f }, tenant.apiKey)).errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'first',
      })
    }
    const foreign = await t.gql(PAGE, { e: endpoint.id, f: 3 })
    expect(foreign.data?.webhookDeliveriesPage).toEqual({
      edges: [],
      pageInfo: { hasNextPage: false, endCursor: null },
    })
  })
})
