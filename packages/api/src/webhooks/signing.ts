import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** The header every delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's scheme). */
export const SIGNATURE_HEADER = 'Burnrate-Signature'
export const SECRET_PREFIX = 'whsec_'

export function newEndpointSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url')
}

export function signPayload(secret: string, body: string, timestampSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')
  return `t=${timestampSeconds},v1=${mac}`
}

/**
 * The receiver's side, documented for tenants: parse the header, recompute the HMAC over the raw
 * body, compare in constant time, and refuse stale timestamps (replays). Several v1 entries may be
 * present (secret rotation); any match passes.
 */
export function verifySignature(secret: string, body: string, header: string, nowSeconds: number, toleranceSeconds = 300): boolean {
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
