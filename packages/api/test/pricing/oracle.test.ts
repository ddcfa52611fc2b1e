import { calcPrice, waitForUpdate, type Provider } from '@pydantic/genai-prices'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * The oracle: for every model in the bundled genai-prices data, the cost we record through the
 * API equals what @pydantic/genai-prices' own calcPrice computes (float, so to 1e-9 relative), at
 * two dates (before and after the data's start_date price changes), with cached usage and with
 * long-context usage that crosses the tier thresholds.
 */
const clock = fixedClock('2026-11-23T12:00:00Z')
const TIMESTAMPS = ['2025-06-01T03:00:00Z', '2026-11-23T11:00:00Z']

let t: TestApp
let providers: Provider[]
beforeAll(async () => {
  t = await createTestApp({ clock })
  providers = (await waitForUpdate()) ?? []
})
afterAll(() => t.close())

interface Case {
  provider: string
  model: string
  timestamp: string
  usage: { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }
  tiered: boolean
  cached: boolean
}

function cases(): Case[] {
  const out: Case[] = []
  let n = 0
  for (const provider of providers) {
    for (const model of provider.models) {
      const priceSets = Array.isArray(model.prices) ? model.prices.map((p) => p.prices) : [model.prices]
      const keys = new Set(priceSets.flatMap((p) => Object.keys(p)))
      if (!keys.has('input_mtok') && !keys.has('output_mtok')) continue
      const tiered = priceSets.some((p) => Object.values(p).some((v) => typeof v === 'object'))
      for (const timestamp of TIMESTAMPS) {
        n += 1
        const long = tiered && n % 2 === 0
        const input = !keys.has('input_mtok') ? 0 : long ? 300_000 + (n % 977) : 12_345 + (n % 1000)
        const cacheRead = keys.has('cache_read_mtok') ? Math.floor(input / 3) : 0
        const cacheWrite = keys.has('cache_write_mtok') ? Math.floor(input / 7) : 0
        out.push({
          provider: provider.id,
          model: model.id,
          timestamp,
          // Only usage the model prices: calcPrice bills an unpriced usage type at 0, where we
          // leave the event UNPRICED (the no-silent-zero rule, tested below).
          usage: {
            input_tokens: input,
            output_tokens: keys.has('output_mtok') ? 2_000 + (n % 313) : 0,
            cache_read_tokens: cacheRead,
            cache_write_tokens: cacheWrite,
          },
          tiered: long,
          cached: cacheRead > 0 || cacheWrite > 0,
        })
      }
    }
  }
  return out
}

describe('pricing oracle: @pydantic/genai-prices calcPrice', () => {
  it('agrees with our recorded cost for every bundled model, tiered and cached usage included', async () => {
    const all = cases()
    const compared: { c: Case; ours: string; theirs: number }[] = []
    const unpricedByUs: Case[] = []
    for (let start = 0; start < all.length; start += 1000) {
      const chunk = all.slice(start, start + 1000)
      const events = chunk.map((c, i) => ({
        id: `oracle-${start + i}`,
        customerId: 'oracle',
        provider: c.provider,
        model: c.model,
        timestamp: c.timestamp,
        inputTokens: c.usage.input_tokens,
        outputTokens: c.usage.output_tokens,
        cacheReadTokens: c.usage.cache_read_tokens,
        cacheWriteTokens: c.usage.cache_write_tokens,
      }))
      const { data, errors } = await t.gql(
        `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { rejected results { status error { message } event { status cost } } } }`,
        { events },
      )
      expect(errors).toBeUndefined()
      expect(data!.recordUsageBatch.rejected).toBe(0)
      data!.recordUsageBatch.results.forEach((r: { event: { status: string; cost: string | null } }, i: number) => {
        const c = chunk[i]!
        const theirs = calcPrice(c.usage, c.model, { providerId: c.provider, timestamp: new Date(c.timestamp) })
        if (!theirs) return
        if (r.event.status !== 'PRICED') unpricedByUs.push(c)
        else compared.push({ c, ours: r.event.cost!, theirs: theirs.total_price })
      })
    }

    const mismatches = compared.filter(({ ours, theirs }) => {
      const diff = new Decimal(ours).minus(theirs.toString()).abs()
      return diff.greaterThan(new Decimal(Math.abs(theirs)).times('1e-9').plus('1e-15'))
    })
    expect(unpricedByUs.map((c) => `${c.provider}/${c.model}`)).toEqual([])
    expect(
      mismatches.map(({ c, ours, theirs }) => `${c.provider}/${c.model}@${c.timestamp}: ours ${ours} vs ${theirs}`),
    ).toEqual([])
    const models = new Set(compared.map(({ c }) => `${c.provider}/${c.model}`))
    expect(models.size).toBeGreaterThanOrEqual(50)
    expect(compared.filter(({ c }) => c.tiered).length).toBeGreaterThanOrEqual(20)
    expect(compared.filter(({ c }) => c.cached).length).toBeGreaterThanOrEqual(50)
  })
})
