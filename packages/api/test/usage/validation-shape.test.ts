import { describe, expect, it } from 'vitest'
import { validateEvent } from '../../src/usage/validation.ts'

const now = new Date('2026-11-23T12:00:00Z')
const base = { id: 'e1', customerId: 'c1', model: 'gpt-4o', timestamp: new Date('2026-11-23T11:00:00Z') }

describe('validateEvent: reported quantities', () => {
  it('leaves zero token counts out of reported, keeps the others exactly', () => {
    const checked = validateEvent({ ...base, inputTokens: 1000, outputTokens: 0, cacheReadTokens: 400 }, now)
    expect(checked.ok).toBe(true)
    if (!checked.ok) return
    expect([...checked.event.reported.entries()].map(([k, v]) => [k, v.toFixed()])).toEqual([
      ['input_tokens', '1000'],
      ['cache_read_tokens', '400'],
    ])
    expect(checked.event.outputTokens).toBe(0)
  })

  it('still checks a zero token count as the whole its reported parts may not exceed', () => {
    const checked = validateEvent(
      { ...base, inputTokens: 0, units: [{ unit: 'input_audio_tokens', quantity: '100' }] },
      now,
    )
    expect(checked).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', field: 'units' } })
    if (checked.ok) return
    expect(checked.error.message).toBe('input_audio_tokens exceeds input_tokens (0)')
  })

  it('a part within its whole passes; a unit given twice is refused, a zero first occurrence included', () => {
    expect(
      validateEvent({ ...base, inputTokens: 100, units: [{ unit: 'input_audio_tokens', quantity: '100' }] }, now).ok,
    ).toBe(true)
    const twice = validateEvent(
      {
        ...base,
        units: [
          { unit: 'web_searches', quantity: '0' },
          { unit: 'web_searches', quantity: '2' },
        ],
      },
      now,
    )
    expect(twice).toMatchObject({ ok: false, error: { field: 'units[1].unit' } })
  })
})
