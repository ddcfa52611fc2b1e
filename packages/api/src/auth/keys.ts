import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

const KEY_PREFIX = 'br_sk_'
const SECRET_PREFIX = 'br_whsec_'

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(24).toString('base64url')
}

export function generateSigningSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url')
}

/** Keys are 192-bit random, so a fast hash is enough: nothing to brute-force, nothing to salt. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** What we may show of a key: enough to tell keys apart, nothing to use. */
export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6)
}

/** Constant-time equality of two tokens (CSRF), false when either is missing. */
export function tokensMatch(given: string | null | undefined, expected: string): boolean {
  if (!given) return false
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
