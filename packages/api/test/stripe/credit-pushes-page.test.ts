import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StripeCreditPushStatus } from '../../src/db/column-types.ts'
import { insertCreditPushes } from '../../src/stripe/repository/credit-pushes.ts'
import { createTestApp, type GqlResponse, type TestApp } from '../support/app.ts'

/**
 * stripeCreditPushesPage: keyset pages of credit pushes, newest first on (createdAt, identifier),
 * filtered by customer and status, with the cursors and limits of every other page
 * (shared/pagination.ts). Pushes are stored the way the pusher's planner stores them
 * (insertCreditPushes), with chosen times, so ties on createdAt are certain.
 */
const PAGE = `query ($after: String, $first: Int, $c: String, $s: StripeCreditPushStatus) {
  stripeCreditPushesPage(first: $first, after: $after, customerId: $c, status: $s) {
    edges { cursor node { identifier customerId status createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`
const LIST = `query ($c: String, $s: StripeCreditPushStatus, $f: Int) { stripeCreditPushes(customerId: $c, status: $s, first: $f) { identifier } }`

const T0 = Date.UTC(2026, 11, 1, 12)
const PERIOD = new Date(Date.UTC(2026, 11, 1))
const STATUSES: StripeCreditPushStatus[] = ['PENDING', 'SENT', 'FAILED', 'CANCELLED', 'SUPERSEDED']

let t: TestApp
let seq = 0

interface Stored {
  identifier: string
  customer_id: string
  status: StripeCreditPushStatus
  created_at: Date
}
const stored: Stored[] = []

/** Stores credit pushes of the test tenant created at `at` (ms), one per customer and status given. */
async function store(tenantId: string, pushes: { customer: string; status: StripeCreditPushStatus; at: number }[]) {
  const rows = pushes.map((p) => {
    seq += 1
    return {
      tenant_id: tenantId,
      identifier: `brc_202612_${seq}_${randomBytes(16).toString('hex')}`,
      customer_id: p.customer,
      period_start: PERIOD,
      seq,
      kind: 'GRANT' as const,
      category: 'PAID' as const,
      amount_minor: 100 + seq,
      voids: null,
      stripe_customer_id: `cus_${p.customer}`,
      status: p.status,
      next_attempt_at: new Date(p.at),
      created_at: new Date(p.at),
    }
  })
  await insertCreditPushes(t.database.db, rows)
  if (tenantId === t.tenant.id) stored.push(...rows)
  return rows
}

/** What a page must list: newest first, ties broken by identifier (descending). */
const expected = (keep: (p: Stored) => boolean = () => true) =>
  stored
    .filter(keep)
    .sort(
      (a, b) =>
        b.created_at.getTime() - a.created_at.getTime() ||
        (a.identifier < b.identifier ? 1 : a.identifier > b.identifier ? -1 : 0),
    )
    .map((p) => p.identifier)

/** Reads every page (`between` runs before each next page) and returns the identifiers in order. */
async function readAll(variables: Record<string, unknown>, between: () => Promise<void> = async () => {}) {
  const seen: string[] = []
  let after: string | null = null
  for (let pages = 0; pages < 100; pages++) {
    const res: GqlResponse = await t.gql(PAGE, { ...variables, first: 2, after })
    expect(res.errors).toBeUndefined()
    const page: Record<string, any> = res.data!.stripeCreditPushesPage
    expect(page.edges.length).toBeLessThanOrEqual(2)
    expect(page.pageInfo.hasPreviousPage).toBe(after !== null)
    expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null)
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null)
    seen.push(...page.edges.map((e: { node: { identifier: string } }) => e.node.identifier))
    if (!page.pageInfo.hasNextPage) return seen
    after = page.pageInfo.endCursor
    await between()
  }
  throw new Error('pages did not end')
}

beforeAll(async () => {
  t = await createTestApp({ loadCatalog: false })
  // Three customers, every status, and several pushes sharing one createdAt (a planner round stores
  // all of a state's pushes with the same time).
  const pushes: { customer: string; status: StripeCreditPushStatus; at: number }[] = []
  for (let i = 0; i < 15; i++)
    pushes.push({ customer: ['ann', 'bob', 'cy'][i % 3]!, status: STATUSES[i % 5]!, at: T0 + Math.floor(i / 4) * 1000 })
  await store(t.tenant.id, pushes)
})

afterAll(async () => {
  await t?.close()
})

describe('stripeCreditPushesPage', () => {
  it('pages every credit push once, newest first, while new pushes are added between pages', async () => {
    const before = expected()
    let at = T0 + 3_600_000
    const seen = await readAll({}, async () => {
      // New pushes of every customer and status, as the pusher plans them while the caller pages.
      at += 1000
      await store(t.tenant.id, [
        { customer: 'ann', status: 'PENDING', at },
        { customer: 'bob', status: 'FAILED', at },
      ])
    })
    expect(seen).toEqual(before)
    expect(new Set(seen).size).toBe(seen.length)
    // A fresh read starts with the pushes added meanwhile, then the rest, still each once.
    expect(await readAll({})).toEqual(expected())
  })

  it('filters by customer, by status, and by both', async () => {
    expect(await readAll({ c: 'ann' })).toEqual(expected((p) => p.customer_id === 'ann'))
    expect(await readAll({ s: 'FAILED' })).toEqual(expected((p) => p.status === 'FAILED'))
    const both = await readAll({ c: 'bob', s: 'FAILED' })
    expect(both).toEqual(expected((p) => p.customer_id === 'bob' && p.status === 'FAILED'))
    expect(both.length).toBeGreaterThan(1)
    expect(await readAll({ c: 'nobody' })).toEqual([])
    // The capped list is the first page of the same order.
    const listed = await t.gql(LIST, { c: 'bob', s: 'FAILED', f: 2 })
    expect(listed.data!.stripeCreditPushes.map((p: { identifier: string }) => p.identifier)).toEqual(both.slice(0, 2))
  })

  it('the page after an endCursor continues the same order, to the end', async () => {
    const first = (await t.gql(PAGE, { first: 3 })).data!.stripeCreditPushesPage
    const rest = (await t.gql(PAGE, { first: 500, after: first.pageInfo.endCursor })).data!.stripeCreditPushesPage
    expect([...first.edges, ...rest.edges].map((e: { node: { identifier: string } }) => e.node.identifier)).toEqual(
      expected(),
    )
    expect(rest.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true })
  })

  it('refuses a bad cursor, first or customerId with BAD_USER_INPUT naming the field', async () => {
    const foreign = Buffer.from(JSON.stringify(['stripePushesPage', new Date(T0).toISOString(), 'br_x'])).toString(
      'base64url',
    )
    const tampered = Buffer.from(JSON.stringify(['stripeCreditPushesPage', 'yesterday', 'brc_x'])).toString('base64url')
    for (const after of ['not a cursor', 'bm90LWpzb24', foreign, tampered, 'x'.repeat(3000)]) {
      const res = await t.gql(PAGE, { first: 2, after })
      expect(res.data ?? null).toBeNull()
      expect(res.errors?.[0]).toMatchObject({
        message: 'after is not a cursor returned by stripeCreditPushesPage',
        extensions: { code: 'BAD_USER_INPUT', field: 'after' },
      })
    }
    for (const first of [0, -1, 501]) {
      const res = await t.gql(PAGE, { first })
      expect(res.errors?.[0]).toMatchObject({
        message: 'first must be between 1 and 500',
        extensions: { code: 'BAD_USER_INPUT', field: 'first' },
      })
    }
    const empty = await t.gql(PAGE, { c: '' })
    expect(empty.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'customerId' })
  })

  it("another tenant's page is its own", async () => {
    const other = await t.createTenant('Other')
    const [theirs] = await store(other.id, [{ customer: 'ann', status: 'FAILED', at: T0 }])
    const res = await t.gql(PAGE, { first: 500 }, other.apiKey)
    expect(
      res.data!.stripeCreditPushesPage.edges.map((e: { node: { identifier: string } }) => e.node.identifier),
    ).toEqual([theirs!.identifier])
    expect(await readAll({})).toEqual(expected())
  })
})
