import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

// The one implementation of the canonical form: the API verifies with it (packages/api/src/usage/signing.ts
// re-exports this module), the SDK signs with it.

/**
 * The canonical form of a usage event: what signatures cover and what idempotency compares.
 * Self-contained on purpose (node:crypto only) so tenants can copy it into their own code.
 *
 *   JSON.stringify([
 *     "burnrate.usage.v1", id, customerId, model, provider ?? null,
 *     new Date(timestamp).toISOString(),               // UTC, millisecond precision
 *     inputTokens ?? 0, outputTokens ?? 0, cacheReadTokens ?? 0, cacheWriteTokens ?? 0, reasoningTokens ?? 0,
 *     units sorted by unit, as [[unit, canonicalDecimal(quantity)], …]  (absent: []),
 *     feature ?? null,
 *     metadata with object keys sorted recursively ?? null,
 *   ])
 *
 * signature = hex(HMAC-SHA256(signingSecret, canonical form))
 */
export interface SignableEvent {
  id: string
  customerId: string
  model: string
  provider?: string | null
  timestamp: string | Date
  inputTokens?: number | null
  outputTokens?: number | null
  cacheReadTokens?: number | null
  cacheWriteTokens?: number | null
  reasoningTokens?: number | null
  units?: readonly { unit: string; quantity: string | number }[] | null
  feature?: string | null
  metadata?: unknown
}

/** "+001.500" → "1.5", ".5" → "0.5", "-0.0" → "0". Plain decimal strings only. */
export function canonicalDecimal(value: string | number): string {
  const text = String(value).trim()
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text)
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) throw new Error(`not a decimal: ${text}`)
  const int = (match[2] ?? '').replace(/^0+(?=\d)/, '') || '0'
  const frac = (match[3] ?? '').replace(/0+$/, '')
  const body = frac ? `${int}.${frac}` : int
  return match[1] === '-' && body !== '0' ? `-${body}` : body
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    )
  }
  return value
}

export function canonicalEventString(event: SignableEvent): string {
  const units = [...(event.units ?? [])]
    .map((u) => [u.unit, canonicalDecimal(u.quantity)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return JSON.stringify([
    'burnrate.usage.v1',
    event.id,
    event.customerId,
    event.model,
    event.provider ?? null,
    new Date(event.timestamp).toISOString(),
    event.inputTokens ?? 0,
    event.outputTokens ?? 0,
    event.cacheReadTokens ?? 0,
    event.cacheWriteTokens ?? 0,
    event.reasoningTokens ?? 0,
    units,
    event.feature ?? null,
    event.metadata === undefined || event.metadata === null ? null : sortKeys(event.metadata),
  ])
}

/** The signature a tenant sends in `UsageEventInput.signature`. */
export function signEvent(event: SignableEvent, signingSecret: string): string {
  return createHmac('sha256', signingSecret).update(canonicalEventString(event)).digest('hex')
}

/** Constant-time check of a hex signature over an already computed canonical form. */
export function verifyCanonicalSignature(canonical: string, signature: string, signingSecret: string): boolean {
  const expected = createHmac('sha256', signingSecret).update(canonical).digest()
  const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0)
  // timingSafeEqual needs equal lengths; compare against the expected value itself to keep timing flat.
  return given.length === expected.length
    ? timingSafeEqual(given, expected)
    : (timingSafeEqual(expected, expected), false)
}

/** Identity of an event's content, for telling a replay from a conflicting reuse of its id. */
export function contentHash(canonical: string): string {
  return createHash('sha256').update(canonical).digest('base64url')
}
