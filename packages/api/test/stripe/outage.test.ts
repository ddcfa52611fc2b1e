import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createStripeTestApp, expectNoErrors, SET_CREDENTIALS, SETUP, type StripeTestApp } from './stripe-support.ts'

/**
 * A Stripe outage while a tenant sets up billing is not the tenant's fault and not an internal
 * error: the mutation answers UNAVAILABLE with `retryable: true`, and the retry completes the set-up
 * (it is idempotent) once Stripe answers again.
 */
const clock = fixedClock(new Date('2026-11-20T00:00:00Z'))
let t: StripeTestApp

beforeAll(async () => {
  t = await createStripeTestApp({ clock, timeoutMs: 300 })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: 'sk_test_outageTenant00001' } }))
})
afterAll(async () => {
  await t?.close()
})

describe('setupStripeBilling during a Stripe outage', () => {
  for (const fault of ['hang', 'drop', 'server-error', 'rate-limit'] as const) {
    it(`answers UNAVAILABLE (retryable) when Stripe's meter call meets '${fault}', never INTERNAL_SERVER_ERROR`, async () => {
      t.fake.fault = ({ path }) => (path.startsWith('/v1/billing/meters') ? fault : null)
      const response = await t.gql(SETUP)
      expect(response.data?.setupStripeBilling ?? null).toBeNull()
      expect(response.errors).toHaveLength(1)
      const [error] = response.errors!
      expect(error!.extensions).toMatchObject({ code: 'UNAVAILABLE', retryable: true, requestId: expect.any(String) })
      expect(error!.message).toMatch(/^Stripe .*Retry the request\.$/)
    })
  }

  it('completes on retry once Stripe answers, with one meter', async () => {
    t.fake.fault = () => null
    const done = expectNoErrors(await t.gql(SETUP))
    expect(done.setupStripeBilling.account.meterId).toMatch(/^mtr_/)
    const again = expectNoErrors(await t.gql(SETUP))
    expect(again.setupStripeBilling.account.meterId).toBe(done.setupStripeBilling.account.meterId)
  })
})
