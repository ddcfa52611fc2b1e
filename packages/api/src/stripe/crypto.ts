import { parseMasterKey } from '../secrets/box.ts'

export { createSecretBox, type SecretBox } from '../secrets/box.ts'

/** Stripe secrets are bound to their tenant: the tenant id is the box's context. */
export const parseStripeKey = (value: string) => parseMasterKey(value, 'STRIPE_ENCRYPTION_KEY')

/** What the API shows instead of a key: its kind and last four characters. */
export function keyHint(secretKey: string): string {
  const kind = /^(sk|rk)_(live|test)_/.exec(secretKey)?.[0] ?? ''
  return `${kind}…${secretKey.slice(-4)}`
}
