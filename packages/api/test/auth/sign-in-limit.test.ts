/**
 * Console sign-in throttling: failed sign-ins per client IP and per key prefix in fixed windows;
 * past the limit, 429 with Retry-After (the key is not even checked) until the window ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSignInLimiter } from '../../src/auth/sign-in-limit.ts'
import { fixedClock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

describe('the limiter (pure)', () => {
  it('counts failures per IP and per key prefix in fixed windows', () => {
    const l = createSignInLimiter({ perIp: 3, perKeyPrefix: 2, windowMs: 60_000 })
    l.failed('1.1.1.1', 'br_sk_aaaaaa', 0)
    expect(l.retryAfter('1.1.1.1', 'br_sk_aaaaaa', 0)).toBeNull()
    l.failed('2.2.2.2', 'br_sk_aaaaaa', 1_000)
    // The prefix has 2 failures from two addresses: a third address is refused for it...
    expect(l.retryAfter('3.3.3.3', 'br_sk_aaaaaa', 10_000)).toBe(50)
    // ...but not for another prefix.
    expect(l.retryAfter('3.3.3.3', 'br_sk_bbbbbb', 10_000)).toBeNull()
    l.failed('1.1.1.1', 'br_sk_cccccc', 20_000)
    l.failed('1.1.1.1', 'br_sk_dddddd', 20_000)
    // 3 failures from 1.1.1.1 (any prefix): refused until its window (from t=0) ends.
    expect(l.retryAfter('1.1.1.1', 'br_sk_eeeeee', 30_000)).toBe(30)
    expect(l.retryAfter('1.1.1.1', 'br_sk_eeeeee', 60_000)).toBeNull()
    expect(l.retryAfter('3.3.3.3', 'br_sk_aaaaaa', 61_000)).toBeNull()
  })
})

describe('POST /console/api/session', () => {
  const clock = fixedClock('2026-11-20T12:00:00Z')
  let t: TestApp
  let server: RunningServer
  beforeAll(async () => {
    t = await createTestApp({
      clock,
      loadCatalog: false,
      config: {
        PORT: 0,
        CONSOLE_SIGN_IN_FAILURES_PER_IP: 5,
        CONSOLE_SIGN_IN_FAILURES_PER_KEY: 3,
        CONSOLE_SIGN_IN_WINDOW_SECONDS: 600,
      },
    })
    server = await startServer(t.app, t.app.services.config, createLogger('silent'))
  })
  afterAll(async () => {
    await server?.close()
    await t?.close()
  })

  const signIn = async (key: string) => {
    const res = await fetch(server.url + '/console/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key }),
    })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as any }
  }

  it('answers 429 with Retry-After after too many failures for a key prefix, then again after the window', async () => {
    const wrong = 'br_sk_guessA' + 'x'.repeat(30)
    for (let i = 0; i < 3; i++) expect((await signIn(wrong + i)).status).toBe(401)
    const limited = await signIn(wrong + 'next')
    expect(limited.status).toBe(429)
    expect(limited.retryAfter).toBe('600')
    expect(limited.body.error).toMatchObject({ code: 'TOO_MANY_REQUESTS', retryAfterSeconds: 600 })
    clock.advance(300_000)
    expect((await signIn(wrong)).retryAfter).toBe('300')
    clock.advance(300_000)
    expect((await signIn(wrong)).status).toBe(401)
  })

  it('limits the address across prefixes, and a right key is refused too while limited; success does not count', async () => {
    clock.advance(600_000)
    expect((await signIn(t.tenant.apiKey)).status).toBe(200)
    expect((await signIn(t.tenant.apiKey)).status).toBe(200)
    for (let i = 0; i < 5; i++) expect((await signIn(`br_sk_other${i}` + 'y'.repeat(30))).status).toBe(401)
    const limited = await signIn(t.tenant.apiKey)
    expect(limited.status).toBe(429)
    expect(Number(limited.retryAfter)).toBeGreaterThan(0)
  })
})
