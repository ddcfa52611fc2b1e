import { describe, expect, it } from 'vitest'
import { canonicalDecimal, canonicalEventString, signEvent, verifyCanonicalSignature } from '../../src/usage/signing.ts'

const event = {
  id: 'req_1',
  customerId: 'acme',
  model: 'gpt-4o',
  timestamp: '2026-11-20T10:00:00+01:00',
  inputTokens: 100,
  outputTokens: 20,
  units: [
    { unit: 'web_searches', quantity: '2.50' },
    { unit: 'requests', quantity: '1' },
  ],
  metadata: { b: 1, a: { d: 2, c: 3 } },
}

describe('canonical form', () => {
  it('is stable under key order, timestamp offset, absent fields and decimal spelling', () => {
    expect(canonicalEventString(event)).toBe(
      '["burnrate.usage.v1","req_1","acme","gpt-4o",null,"2026-11-20T09:00:00.000Z",100,20,0,0,0,[["requests","1"],["web_searches","2.5"]],null,{"a":{"c":3,"d":2},"b":1}]',
    )
    const same = {
      ...event,
      timestamp: '2026-11-20T09:00:00Z',
      metadata: { a: { c: 3, d: 2 }, b: 1 },
      cacheReadTokens: 0,
      units: [...event.units].reverse(),
    }
    expect(canonicalEventString(same)).toBe(canonicalEventString(event))
  })

  it('normalizes decimals', () => {
    expect(['+001.500', '.5', '-0.0', '10', '0.000'].map(canonicalDecimal)).toEqual(['1.5', '0.5', '0', '10', '0'])
    expect(() => canonicalDecimal('1e3')).toThrow()
  })
})

describe('signatures', () => {
  const secret = 'br_whsec_test'
  it('verifies the signature of the same content and rejects any changed field', () => {
    const signature = signEvent(event, secret)
    expect(signature).toMatch(/^[0-9a-f]{64}$/)
    expect(verifyCanonicalSignature(canonicalEventString(event), signature, secret)).toBe(true)
    for (const changed of [
      { inputTokens: 101 },
      { model: 'gpt-4o-mini' },
      { customerId: 'other' },
      { metadata: { b: 2 } },
    ]) {
      expect(verifyCanonicalSignature(canonicalEventString({ ...event, ...changed }), signature, secret)).toBe(false)
    }
    expect(verifyCanonicalSignature(canonicalEventString(event), signature, 'another secret')).toBe(false)
    expect(verifyCanonicalSignature(canonicalEventString(event), 'not-hex', secret)).toBe(false)
  })
})
