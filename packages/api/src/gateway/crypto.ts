import { createSecretBox, parseMasterKey } from '../secrets/box.ts'

/** Provider keys at rest, bound to their tenant and provider (see secrets/box.ts). */
export interface KeyBox {
  seal(plaintext: string, tenantId: string, provider: string): string
  open(sealed: string, tenantId: string, provider: string): string
}

export function createKeyBox(masterKey: Buffer): KeyBox {
  const box = createSecretBox(masterKey)
  return {
    seal: (plaintext, tenantId, provider) => box.seal(plaintext, `${tenantId}/${provider}`),
    open: (sealed, tenantId, provider) => box.open(sealed, `${tenantId}/${provider}`),
  }
}

export const parseGatewayKey = (value: string) => parseMasterKey(value, 'GATEWAY_ENCRYPTION_KEY')

/** What the API shows instead of a key: its last four characters. */
export function keyHint(apiKey: string): string {
  return `…${apiKey.slice(-4)}`
}
