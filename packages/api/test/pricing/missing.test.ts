import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

/**
 * The missing-price rule (README, "Pricing"): a reported quantity no price covers never bills 0.
 * A negotiated price leaves the usage types it does not name at their public price; with no price
 * anywhere the event is UNPRICED and says which usage type lacks one — at ingest, when late
 * pricing finds it, and when re-pricing would bill it.
 */
const RECORD = `mutation($e: UsageEventInput!) { recordUsage(event: $e) {
  status error { code message field }
  event { status cost unpricedReason { code usageTypes message } lines { usageType quantity unitPrice cost } } } }`
const EVENT = `query($c: String!) { usageEvents(customerId: $c, from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") {
  edges { node { id status cost unpricedReason { code usageTypes } lines { usageType quantity cost } } } } }`
const OVERRIDE = `mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { usageType } }`

const clock = fixedClock('2026-11-23T12:00:00Z')
const linesOf = (event: { lines: { usageType: string; quantity: string; cost: string }[] }) =>
  event.lines.map((l) => [l.usageType, l.quantity, l.cost])

async function feedFile(name: string, body: unknown): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'burnrate-missing-')), name)
  await writeFile(file, JSON.stringify(body))
  return file
}

describe('units: one documented name per unit', () => {
  let t: TestApp
  beforeAll(async () => {
    // Only LiteLLM prices whisper-1 here: its per-second input audio price.
    t = await createTestApp({ clock, loadCatalog: false })
    const feed = await feedFile('litellm.json', {
      'whisper-1': {
        litellm_provider: 'openai',
        mode: 'audio_transcription',
        input_cost_per_second: 0.0001,
        output_cost_per_second: 0.0001,
      },
    })
    clock.set('2026-11-23T09:00:00Z')
    await t.app.services.catalog.syncSource('litellm', { location: feed })
    clock.set('2026-11-23T12:00:00Z')
  })
  afterAll(() => t.close())

  const whisper = (id: string, unit: string) => ({
    e: {
      id,
      customerId: 'audio',
      model: 'whisper-1',
      provider: 'openai',
      timestamp: '2026-11-23T10:00:00Z',
      units: [{ unit, quantity: '60' }],
    },
  })

  it('prices whisper-1 audio given as audio_seconds (the alias) exactly like input_audio_seconds', async () => {
    for (const [id, unit] of [
      ['w-alias', 'audio_seconds'],
      ['w-canonical', 'input_audio_seconds'],
    ]) {
      const { data } = await t.gql(RECORD, whisper(id!, unit!))
      expect(data!.recordUsage.status).toBe('RECORDED')
      expect(data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.006', unpricedReason: null })
      expect(linesOf(data!.recordUsage.event)).toEqual([['input_audio_seconds', '60', '0.006']])
    }
    // Stored under the documented name; a replay as sent is a DUPLICATE.
    const replay = await t.gql(RECORD, whisper('w-alias', 'audio_seconds'))
    expect(replay.data!.recordUsage.status).toBe('DUPLICATE')
    const stored = await t.database.db
      .selectFrom('usage_events')
      .select('units')
      .where('id', '=', 'w-alias')
      .executeTakeFirstOrThrow()
    expect(stored.units).toEqual([{ unit: 'input_audio_seconds', quantity: '60' }])
  })

  it('rejects unknown unit names, token names and a unit given twice under two names, naming the field', async () => {
    const unknown = await t.gql(RECORD, whisper('w-bad', 'audio_minutes'))
    expect(unknown.data!.recordUsage.status).toBe('REJECTED')
    expect(unknown.data!.recordUsage.error).toMatchObject({ code: 'INVALID_INPUT', field: 'units[0].unit' })
    expect(unknown.data!.recordUsage.error.message).toContain('unknown unit "audio_minutes"')
    expect(unknown.data!.recordUsage.error.message).toContain('input_audio_seconds')
    expect(unknown.data!.recordUsage.error.message).not.toMatch(/\baudio_seconds\b/)

    const token = await t.gql(RECORD, whisper('w-token', 'output_tokens'))
    expect(token.data!.recordUsage.error).toEqual({
      code: 'INVALID_INPUT',
      message: '"output_tokens" is not a unit: give it in outputTokens',
      field: 'units[0].unit',
    })

    const twice = await t.gql(RECORD, {
      e: {
        ...whisper('w-twice', 'x').e,
        units: [
          { unit: 'input_audio_seconds', quantity: '1' },
          { unit: 'audio_seconds', quantity: '1' },
        ],
      },
    })
    expect(twice.data!.recordUsage.error).toMatchObject({ code: 'INVALID_INPUT', field: 'units[1].unit' })
    const count = await t.database.db
      .selectFrom('usage_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('id', 'in', ['w-bad', 'w-token', 'w-twice'])
      .executeTakeFirstOrThrow()
    expect(Number(count.n)).toBe(0)
  })
})

describe('whisper-1 priced per audio second by genai-prices (audio_seconds and input_audio_seconds rows)', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ clock })
  })
  afterAll(() => t.close())

  it('prices 60 audio seconds under either name instead of rejecting input_audio_seconds', async () => {
    for (const [id, unit] of [
      ['g-1', 'input_audio_seconds'],
      ['g-2', 'audio_seconds'],
    ]) {
      const { data } = await t.gql(RECORD, {
        e: {
          id,
          customerId: 'audio',
          model: 'whisper-1',
          provider: 'openai',
          timestamp: '2026-11-23T10:00:00Z',
          units: [{ unit, quantity: '60' }],
        },
      })
      expect(data!.recordUsage.error).toBeNull()
      expect(data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.006' })
      expect(linesOf(data!.recordUsage.event)).toEqual([['input_audio_seconds', '60', '0.006']])
    }
  })
})

describe('a negotiated price that names input only', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ clock })
  })
  afterAll(() => t.close())

  it('bills output at the public price in force, exactly', async () => {
    await t.gql(OVERRIDE, {
      i: {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        unitPrice: '0.000002',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    const { data } = await t.gql(RECORD, {
      e: {
        id: 'n-1',
        customerId: 'neg',
        model: 'gpt-4o',
        timestamp: '2026-11-23T10:00:00Z',
        inputTokens: 1000,
        outputTokens: 1000,
      },
    })
    // 1000 × 0.000002 (negotiated) + 1000 × 0.00001 (public gpt-4o output)
    expect(data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.012' })
    expect(linesOf(data!.recordUsage.event)).toEqual([
      ['input', '1000', '0.002'],
      ['output', '1000', '0.01'],
    ])
  })

  it('leaves output UNPRICED, naming it, when no public price exists either (ingest)', async () => {
    await t.gql(OVERRIDE, {
      i: {
        provider: 'acme',
        model: 'rocket-in',
        usageType: 'input',
        unitPrice: '0.000002',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    const { data } = await t.gql(RECORD, {
      e: {
        id: 'n-2',
        customerId: 'neg',
        model: 'rocket-in',
        provider: 'acme',
        timestamp: '2026-11-23T10:00:00Z',
        inputTokens: 1000,
        outputTokens: 10,
      },
    })
    expect(data!.recordUsage.status).toBe('RECORDED')
    expect(data!.recordUsage.event).toMatchObject({
      status: 'UNPRICED',
      cost: null,
      lines: [],
      unpricedReason: {
        code: 'MISSING_USAGE_PRICE',
        usageTypes: ['output'],
        message: 'no price in force for output, neither negotiated nor public',
      },
    })
    // Input alone is priced: the rule is about quantities, not about the model.
    const inputOnly = await t.gql(RECORD, {
      e: {
        id: 'n-3',
        customerId: 'neg',
        model: 'rocket-in',
        provider: 'acme',
        timestamp: '2026-11-23T10:00:00Z',
        inputTokens: 1000,
      },
    })
    expect(inputOnly.data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.002' })
  })

  it('late pricing keeps it UNPRICED until output has a price, then prices it in full', async () => {
    const recorded = await t.gql(RECORD, {
      e: {
        id: 'l-1',
        customerId: 'late',
        model: 'rocket-late',
        provider: 'acme',
        timestamp: '2026-11-23T10:00:00Z',
        inputTokens: 1000,
        outputTokens: 10,
      },
    })
    expect(recorded.data!.recordUsage.event).toMatchObject({
      status: 'UNPRICED',
      unpricedReason: { code: 'UNKNOWN_MODEL', usageTypes: [] },
    })

    await t.gql(OVERRIDE, {
      i: {
        provider: 'acme',
        model: 'rocket-late',
        usageType: 'input',
        unitPrice: '0.000002',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    await t.app.services.repricing.priceUnpriced({ tenantId: t.tenant.id })
    const waiting = (await t.gql(EVENT, { c: 'late' })).data!.usageEvents.edges[0].node
    expect(waiting).toMatchObject({
      status: 'UNPRICED',
      cost: null,
      unpricedReason: { code: 'MISSING_USAGE_PRICE', usageTypes: ['output'] },
    })

    await t.gql(OVERRIDE, {
      i: {
        provider: 'acme',
        model: 'rocket-late',
        usageType: 'output',
        unitPrice: '0.00001',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    await t.app.services.repricing.priceUnpriced({ tenantId: t.tenant.id })
    const priced = (await t.gql(EVENT, { c: 'late' })).data!.usageEvents.edges[0].node
    expect(priced).toMatchObject({ status: 'PRICED', cost: '0.0021', unpricedReason: null })
    expect(linesOf(priced)).toEqual([
      ['input', '1000', '0.002'],
      ['output', '10', '0.0001'],
    ])
  })

  it('re-pricing never re-bills a usage type at zero when its price is gone: the event keeps its bill', async () => {
    const feed = (body: Record<string, number>) =>
      feedFile('litellm.json', { 'acme/rocket-re': { litellm_provider: 'acme', mode: 'chat', ...body } })
    clock.set('2026-11-23T09:00:00Z')
    await t.app.services.catalog.syncSource('litellm', {
      location: await feed({ input_cost_per_token: 1e-6, output_cost_per_token: 4e-6 }),
    })
    clock.set('2026-11-23T12:00:00Z')
    const recorded = await t.gql(RECORD, {
      e: {
        id: 'r-1',
        customerId: 're',
        model: 'rocket-re',
        provider: 'acme',
        timestamp: '2026-11-23T10:30:00Z',
        inputTokens: 1000,
        outputTokens: 100,
      },
    })
    expect(recorded.data!.recordUsage.event).toMatchObject({ status: 'PRICED', cost: '0.0014' })

    // The feed corrects the past from 10:00: input is cheaper, and output is no longer stated.
    const summary = await t.app.services.catalog.syncSource('litellm', {
      location: await feed({ input_cost_per_token: 8e-7 }),
      correctFrom: new Date('2026-11-23T10:00:00Z'),
    })
    expect(summary.rowsClosed).toBeGreaterThanOrEqual(1)
    const REPRICE = `mutation { repriceUsage(from: "2026-11-23T10:00:00Z", to: "2026-11-23T11:00:00Z", model: "rocket-re", provider: "acme") {
      examined corrected costDelta unpriced unpricedReasons { code usageTypes } } }`
    expect((await t.gql(REPRICE)).data!.repriceUsage).toEqual({
      examined: 1,
      corrected: 0,
      costDelta: '0',
      unpriced: 1,
      unpricedReasons: [{ code: 'MISSING_USAGE_PRICE', usageTypes: ['output'] }],
    })
    const corrections = await t.gql(
      `{ usageCorrections(from: "2026-11-23T10:00:00Z", to: "2026-11-23T11:00:00Z", customerId: "re") { eventId } }`,
    )
    expect(corrections.data!.usageCorrections).toEqual([])
  })
})
