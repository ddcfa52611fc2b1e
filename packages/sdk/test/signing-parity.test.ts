import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as api from '../../api/src/usage/signing.ts'
import * as sdk from '../src/signing.ts'

// The SDK carries its own copy of the canonical form (it must not depend on the API package).
// Any drift between the two would make every signed event from the SDK fail with INVALID_SIGNATURE.
const decimal = fc.tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^\d{1,6}$/), fc.option(fc.stringMatching(/^\d{0,6}$/))).map(([s, i, f]) => (f === null ? `${s}${i}` : `${s}${i}.${f}`))
const json = fc.jsonValue({ maxDepth: 3 })
const event = fc.record(
  {
    id: fc.string({ minLength: 1 }),
    customerId: fc.string({ minLength: 1 }),
    model: fc.string({ minLength: 1 }),
    provider: fc.option(fc.string()),
    timestamp: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
    inputTokens: fc.option(fc.nat()),
    outputTokens: fc.option(fc.nat()),
    cacheReadTokens: fc.option(fc.nat()),
    cacheWriteTokens: fc.option(fc.nat()),
    reasoningTokens: fc.option(fc.nat()),
    units: fc.option(fc.array(fc.record({ unit: fc.string(), quantity: decimal }), { maxLength: 4 })),
    feature: fc.option(fc.string()),
    metadata: fc.option(fc.dictionary(fc.string(), json, { maxKeys: 5 })),
  },
  { requiredKeys: ['id', 'customerId', 'model', 'timestamp'] },
)

describe('SDK signing matches the API', () => {
  it('identical canonical strings and signatures for arbitrary events', () => {
    fc.assert(
      fc.property(event, fc.string({ minLength: 1 }), (e, secret) => {
        expect(sdk.canonicalEventString(e)).toBe(api.canonicalEventString(e))
        expect(sdk.signEvent(e, secret)).toBe(api.signEvent(e, secret))
      }),
      { numRuns: 300 },
    )
  })

  it('identical decimal canonicalization', () => {
    fc.assert(
      fc.property(decimal, (d) => {
        expect(sdk.canonicalDecimal(d)).toBe(api.canonicalDecimal(d))
      }),
    )
  })
})
