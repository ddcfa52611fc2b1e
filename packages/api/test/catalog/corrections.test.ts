import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const RECORD = `mutation($e: UsageEventInput!) { recordUsage(event: $e) { status event { status cost amount } } }`
const SUMMARY = `query($c: String!, $from: DateTime!, $to: DateTime!) { usageSummary(customerId: $c, from: $from, to: $to) { events unpricedEvents cost amount } }`
const REPRICE = `mutation { repriceUsage(from: "2026-11-15T00:00:00Z", to: "2026-11-23T00:00:00Z", model: "rocket-x", provider: "acme", reason: "genai-prices start_date correction") { examined corrected costDelta amountDelta } }`

/** A genai-prices data.json (the shape the package bundles) with one model; `entries` are its conditional prices. */
const dataJson = (prices: unknown) =>
  JSON.stringify([
    {
      id: 'acme',
      name: 'Acme',
      api_pattern: 'acme',
      models: [{ id: 'rocket-x', match: { equals: 'rocket-x' }, prices }],
    },
  ])

describe('a source correcting a past price with a stated start date', () => {
  let t: TestApp
  let file: string
  const clock = fixedClock('2026-11-20T12:00:00Z')

  beforeAll(async () => {
    t = await createTestApp({ clock, loadCatalog: false })
    file = join(await mkdtemp(join(tmpdir(), 'burnrate-genai-')), 'data.json')
  })
  afterAll(() => t?.close())

  it('applies the correction from the stated date, reports it, and repriceUsage (not the sync) corrects the billed event exactly', async () => {
    // v1: one undated price, $1 per million input tokens.
    await writeFile(file, dataJson({ input_mtok: 1, output_mtok: 4 }))
    const first = await t.app.services.catalog.syncSource('genai-prices-remote', { location: file })
    expect(first).toMatchObject({ rowsOpened: 2, corrections: [] })

    const recorded = await t.gql(RECORD, {
      e: {
        id: 'c-1',
        customerId: 'corr',
        model: 'rocket-x',
        provider: 'acme',
        timestamp: '2026-11-18T10:30:00Z',
        inputTokens: 1234,
      },
    })
    expect(recorded.data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.001234' })
    const range = { c: 'corr', from: '2026-11-18T00:00:00Z', to: '2026-11-19T00:00:00Z' }

    // v2, seen on 11-23: genai-prices now says input has cost $0.80 since 2026-11-15 (a start_date in the past).
    clock.set('2026-11-23T09:00:00Z')
    await writeFile(
      file,
      dataJson([
        { prices: { input_mtok: 1, output_mtok: 4 } },
        { constraint: { type: 'start_date', start_date: '2026-11-15' }, prices: { input_mtok: 0.8, output_mtok: 4 } },
      ]),
    )
    const corrected = await t.app.services.catalog.syncSource('genai-prices-remote', { location: file })
    expect(corrected).toMatchObject({ rowsOpened: 1, rowsClosed: 1, held: 0 })
    expect(corrected.corrections).toEqual([
      {
        provider: 'acme',
        model: 'rocket-x',
        usageType: 'input',
        timeWindow: null,
        from: new Date('2026-11-15T00:00:00Z'),
      },
    ])

    const history = await t.gql(
      `{ priceHistory(provider: "acme", model: "rocket-x") { usageType unitPrice effectiveFrom effectiveTo } }`,
    )
    expect(history.data!.priceHistory.filter((p: { usageType: string }) => p.usageType === 'input')).toEqual([
      {
        usageType: 'input',
        unitPrice: '0.000001',
        effectiveFrom: '1970-01-01T00:00:00.000Z',
        effectiveTo: '2026-11-15T00:00:00.000Z',
      },
      { usageType: 'input', unitPrice: '0.0000008', effectiveFrom: '2026-11-15T00:00:00.000Z', effectiveTo: null },
    ])
    const log = await t.gql(
      `{ priceChangeLog(provider: "acme", model: "rocket-x", first: 1) { usageType oldUnitPrice newUnitPrice effectiveFrom } }`,
    )
    expect(log.data!.priceChangeLog).toEqual([
      {
        usageType: 'input',
        oldUnitPrice: '0.000001',
        newUnitPrice: '0.0000008',
        effectiveFrom: '2026-11-15T00:00:00.000Z',
      },
    ])
    // The same log as a Relay connection, one entry per page: every entry once, in the same order.
    const whole = (await t.gql(`{ priceChangeLog(provider: "acme", model: "rocket-x") { id } }`)).data!.priceChangeLog
    expect(whole.length).toBeGreaterThan(1)
    const paged: string[] = []
    let after: string | null = null
    for (let pages = 0; pages <= whole.length; pages++) {
      const res: any = await t.gql(
        `query ($after: String) { priceChangeLogPage(provider: "acme", model: "rocket-x", first: 1, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      )
      const page: any = res.data!.priceChangeLogPage
      paged.push(...page.edges.map((e: any) => e.node.id))
      if (!page.pageInfo.hasNextPage) break
      after = page.pageInfo.endCursor
    }
    expect(paged).toEqual(whole.map((e: any) => e.id))
    const bad = await t.gql(`{ priceChangeLogPage(after: "nope") { edges { cursor } } }`)
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    const at = await t.gql(
      `{ providerPrices(provider: "acme", model: "rocket-x", at: "2026-11-18T10:30:00Z") { usageType unitPrice } }`,
    )
    expect(at.data!.providerPrices).toContainEqual({ usageType: 'input', unitPrice: '0.0000008' })

    // The sync never re-prices: the event is still billed at the old price.
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toEqual({
      events: 1,
      unpricedEvents: 0,
      cost: '0.001234',
      amount: '0.001234',
    })

    // repriceUsage writes the correction; usageSummary reflects it exactly: 1234 × 0.0000008.
    expect((await t.gql(REPRICE)).data!.repriceUsage).toMatchObject({
      examined: 1,
      corrected: 1,
      costDelta: '-0.0002468',
      amountDelta: '-0.0002468',
    })
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toEqual({
      events: 1,
      unpricedEvents: 0,
      cost: '0.0009872',
      amount: '0.0009872',
    })

    // Both the sync and the re-pricing are idempotent.
    clock.set('2026-11-23T10:00:00Z')
    expect(await t.app.services.catalog.syncSource('genai-prices-remote', { location: file })).toMatchObject({
      rowsOpened: 0,
      rowsClosed: 0,
      corrections: [],
    })
    expect((await t.gql(REPRICE)).data!.repriceUsage).toMatchObject({ corrected: 0, costDelta: '0' })
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toMatchObject({ cost: '0.0009872', amount: '0.0009872' })
  })
})
