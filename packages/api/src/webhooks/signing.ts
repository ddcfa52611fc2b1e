import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * The header every delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's
 * scheme). While a rotated-out secret is in its grace period the header has one `v1` per secret, the
 * current one first: `t=…,v1=<with new secret>,v1=<with previous secret>`; receivers accept any match.
 */
export const SIGNATURE_HEADER = 'Burnrate-Signature'
const SECRET_PREFIX = 'whsec_'

export function newEndpointSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url')
}

/** One `v1` entry per secret, in the order given (the current secret first), under one timestamp. */
export function signPayload(secrets: string | readonly string[], body: string, timestampSeconds: number): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets
  if (list.length === 0) throw new Error('signPayload needs at least one secret')
  const macs = list.map(
    (secret) => `v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`,
  )
  return [`t=${timestampSeconds}`, ...macs].join(',')
}

/** The secrets that sign at `at`: the current one, and the previous one until its grace period ends. */
export function signingSecrets(
  endpoint: { secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null },
  at: Date,
): string[] {
  const previousValid =
    endpoint.previousSecret !== null &&
    endpoint.previousSecretExpiresAt !== null &&
    at.getTime() < endpoint.previousSecretExpiresAt.getTime()
  return previousValid ? [endpoint.secret, endpoint.previousSecret!] : [endpoint.secret]
}

/**
 * The receiver's side, documented for tenants: parse the header, recompute the HMAC over the raw
 * body, compare in constant time, and refuse stale timestamps (replays). Several v1 entries may be
 * present (secret rotation); any match passes.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = header.split(',').map((p) => p.trim().split('='))
  const t = Number(parts.find(([k]) => k === 't')?.[1])
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'))
  return parts
    .filter(([k, v]) => k === 'v1' && v !== undefined)
    .some(([, v]) => {
      const given = Buffer.from(v!)
      return given.length === expected.length && timingSafeEqual(given, expected)
    })
}
