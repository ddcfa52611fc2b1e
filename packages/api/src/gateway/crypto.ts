import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * Provider keys at rest: AES-256-GCM under GATEWAY_ENCRYPTION_KEY, a fresh 96-bit IV per value,
 * and `tenantId/provider` as additional authenticated data, so a ciphertext copied to another
 * tenant's (or provider's) row fails to decrypt instead of lending out someone else's key.
 * Format: `v1.<iv>.<tag>.<ciphertext>` (base64url).
 */
export interface KeyBox {
  seal(plaintext: string, tenantId: string, provider: string): string
  open(sealed: string, tenantId: string, provider: string): string
}

/** The master key: 32 bytes written as 64 hex characters or base64. */
export function parseMasterKey(value: string): Buffer {
  const trimmed = value.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64')
  if (key.length !== 32) throw new Error('GATEWAY_ENCRYPTION_KEY must be 32 bytes: 64 hex characters or 44 base64 characters')
  return key
}

export function createKeyBox(masterKey: Buffer): KeyBox {
  const aad = (tenantId: string, provider: string) => Buffer.from(`${tenantId}/${provider}`, 'utf8')
  return {
    seal(plaintext, tenantId, provider) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv)
      cipher.setAAD(aad(tenantId, provider))
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.')
    },
    open(sealed, tenantId, provider) {
      const [version, iv, tag, ciphertext] = sealed.split('.')
      if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unrecognised provider key format')
      const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(iv, 'base64url'))
      decipher.setAAD(aad(tenantId, provider))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
    },
  }
}

/** What the API shows instead of a key: its last four characters. */
export function keyHint(apiKey: string): string {
  return `…${apiKey.slice(-4)}`
}
