import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../catalog-sync/test/fixtures/${name}`, import.meta.url), 'utf8')) as Record<
    string,
    any
  >

const RECORD = `mutation($e: UsageEventInput!) {
  recordUsage(event: $e) { status error { code message field } event { status cost lines { usageType quantity unitPrice cost priceId } } }
}`

/** OpenRouter's feed with an o3 entry whose completion price is given. */
function openRouterBody(o3Completion: unknown): string {
  const feed = fixture('openrouter-models.json')
  feed.data.push({
    id: 'openai/o3',
    name: 'OpenAI: o3',
    architecture: { modality: 'text+image->text', input_modalities: ['text', 'image'], output_modalities: ['text'] },
    pricing: {
      prompt: '0.000002',
      completion: o3Completion,
      request: '0',
      image: '0.00153',
      web_search: '0',
      internal_reasoning: '0',
    },
  })
  return JSON.stringify(feed)
}

describe('catalog feeds: bad rows, their trace, units and first-seen dates (issue 12, items 1-4)', () => {
  let t: TestApp
  let server: Server
  let base: string
  const clock = fixedClock('2026-12-01T10:00:00Z')
  const bodies = new Map<string, string>()

  beforeAll(async () => {
    t = await createTestApp({ clock })
    server = createServer((req, res) => {
      const body = bodies.get(req.url ?? '')
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(body ?? '')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
    await t.close()
  })

  const o3Event = (id: string, timestamp: string) => ({
    id,
    customerId: 'c1',
    provider: 'openrouter',
    model: 'openai/o3',
    timestamp,
    inputTokens: 1000,
    outputTokens: 100,
    units: [{ unit: 'input_images', quantity: '2' }],
  })

  it('prices a model first seen without a date from the sync that saw it, not before (item 4)', async () => {
    bodies.set('/models', openRouterBody('0.000008'))
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/models` })
    expect(summary.rejected).toHaveLength(2)
    const before = await t.gql(RECORD, { e: o3Event('o3-before', '2026-12-01T09:59:59Z') })
    expect(before.data!.recordUsage).toMatchObject({ status: 'RECORDED', event: { status: 'UNPRICED', cost: null } })
    const after = await t.gql(RECORD, { e: o3Event('o3-after', '2026-12-01T10:00:00Z') })
    expect(after.data!.recordUsage.event.status).toBe('PRICED')
  })

  it('prices per input image from OpenRouter’s image price, exactly (item 3)', async () => {
    clock.set('2026-12-01T11:00:00Z')
    const result = await t.gql(RECORD, { e: o3Event('o3-images', '2026-12-01T10:30:00Z') })
    const event = result.data!.recordUsage.event
    expect(
      event.lines.map((l: { usageType: string; quantity: string; unitPrice: string; cost: string }) => [
        l.usageType,
        l.quantity,
        l.unitPrice,
        l.cost,
      ]),
    ).toEqual([
      ['input', '1000', '0.000002', '0.002'],
      ['output', '100', '0.000008', '0.0008'],
      ['input_images', '2', '0.00153', '0.00306'],
    ])
    expect(event.cost).toBe('0.00586')
  })

  it('a malformed o3 completion in a re-sync keeps the o3 price in force and is recorded (items 1, 2)', async () => {
    clock.set('2026-12-02T10:00:00Z')
    bodies.set('/models', openRouterBody('not-a-number'))
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/models` })
    expect(summary).toMatchObject({ rowsClosed: 0, rowsOpened: 0 })
    clock.set('2026-12-02T11:00:00Z')
    const result = await t.gql(RECORD, { e: o3Event('o3-later', '2026-12-02T10:30:00Z') })
    expect(result.data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.00586' })

    const { data, errors } = await t.gql(`{
      catalogSources { source }
      catalogSyncRuns(source: "openrouter") { id source rejected skipped rowsClosed
        issues(kind: REJECTED) { source model field rawValue reason kind } }
    }`)
    expect(errors).toBeUndefined()
    const [latest, first] = data!.catalogSyncRuns
    expect(first).toMatchObject({ source: 'openrouter', rejected: 2 })
    expect(latest).toMatchObject({ source: 'openrouter', rejected: 3, rowsClosed: 0 })
    expect(latest.issues).toContainEqual({
      source: 'openrouter',
      model: 'openai/o3',
      field: 'completion',
      rawValue: '"not-a-number"',
      reason: 'price "not-a-number" is not a decimal number',
      kind: 'REJECTED',
    })
    expect(latest.issues).toContainEqual(
      expect.objectContaining({
        model: 'openrouter/auto',
        field: 'prompt',
        rawValue: '"-1"',
        reason: 'negative price -1',
      }),
    )
  })

  it('lists every issue with paging, per run and across runs; sample_spec and unknown units included (item 2)', async () => {
    const litellm = fixture('litellm-prices.json')
    bodies.set('/litellm.json', JSON.stringify(litellm))
    const summary = await t.app.services.catalog.syncSource('litellm', { location: `${base}/litellm.json` })
    expect(summary.syncRunId).not.toBeNull()
    const all = await t.gql(
      `query($run: ID!) { catalogFeedIssues(syncRunId: $run, first: 500) { id kind model field rawValue reason } }`,
      { run: String(summary.syncRunId) },
    )
    expect(all.errors).toBeUndefined()
    const issues = all.data!.catalogFeedIssues
    expect(issues).toHaveLength(summary.skipped + summary.rejected.length)
    expect(issues).toContainEqual(
      expect.objectContaining({
        kind: 'SKIPPED',
        model: 'sample_spec',
        field: null,
        reason: 'documentation entry, not a model',
      }),
    )
    expect(issues).toContainEqual(
      expect.objectContaining({
        kind: 'REJECTED',
        model: 'broken-model',
        field: 'input_cost_per_token',
        rawValue: '-0.000001',
      }),
    )

    const pages: string[] = []
    let after: string | null = null
    for (;;) {
      const page: any = await t.gql(
        `query($after: ID) { catalogFeedIssues(source: "litellm", first: 2, after: $after) { id } }`,
        { after },
      )
      const ids = page.data!.catalogFeedIssues.map((i: { id: string }) => i.id)
      if (ids.length === 0) break
      pages.push(...ids)
      after = ids.at(-1)
    }
    expect(pages).toEqual(issues.map((i: { id: string }) => i.id))

    const sources = await t.gql(`{ catalogSources { source } }`)
    expect(sources.errors).toBeUndefined()
  })

  it('is for tenant keys: no key is refused, a widget session is forbidden, bad arguments are clear', async () => {
    const anonymous = await t.gql(`{ catalogFeedIssues { id } }`, undefined, null)
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    const session = await t.gql(`mutation { createWidgetSession(customerId: "c1") { token } }`)
    const widget = await t.gql(`{ catalogSyncRuns { id } }`, undefined, session.data!.createWidgetSession.token)
    expect(widget.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    const bad = await t.gql(`{ catalogFeedIssues(after: "x; drop table") { id } }`)
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    const missing = await t.gql(`{ catalogFeedIssues(syncRunId: "999999") { id } }`)
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')
  })
})
