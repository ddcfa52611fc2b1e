import { describe, expect, it } from 'vitest'
import { createBurnratePubSub, type PriceChangeEvent } from '../../src/pubsub.ts'
import { endAt } from '../../src/subscriptions/streams.ts'

const change = (i: number): PriceChangeEvent => ({
  provider: 'openai',
  model: `m-${i}`,
  usageType: 'input',
  oldUnitPrice: null,
  newUnitPrice: '1',
  effectiveFrom: '2026-11-23T00:00:00.000Z',
  source: 'test',
  tenantId: null,
})

describe('the pubsub', () => {
  it('survives a burst larger than a subscriber reads at once (a catalog sync publishes thousands)', async () => {
    const pubsub = createBurnratePubSub()
    const iterator = pubsub.subscribe('priceChange')[Symbol.asyncIterator]()
    const first = iterator.next()
    // Synchronously, in one tick: yoga's unbuffered subscription throws past 1,024 pending events.
    for (let i = 0; i < 5_000; i++) pubsub.publish('priceChange', change(i))
    expect((await first).value.model).toBe('m-0')
    expect((await iterator.next()).value.model).toBe('m-1')
    await iterator.return?.()
  })

  it('ends a stream at its deadline (a widget session that expires)', async () => {
    const pubsub = createBurnratePubSub()
    const stream = endAt(pubsub.subscribe('priceChange'), new Date(Date.now() + 50), new Date())
    const iterator = stream[Symbol.asyncIterator]()
    const next = iterator.next()
    pubsub.publish('priceChange', change(1))
    expect((await next).value.model).toBe('m-1')
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
  })
})
