import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * Secrets at rest: AES-256-GCM under the master key (STRIPE_ENCRYPTION_KEY), a fresh 96-bit IV per
 * value, and the tenant id as additional authenticated data so a ciphertext copied to another
 * tenant's row fails to decrypt. Format: `v1.<iv>.<tag>.<ciphertext>` (base64url).
 */
export interface SecretBox {
  seal(plaintext: string, tenantId: string): string
  open(sealed: string, tenantId: string): string
}

/** The master key: 32 bytes as 64 hex characters or base64. */
export function parseMasterKey(value: string): Buffer {
  const trimmed = value.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64')
  if (key.length !== 32) throw new Error('STRIPE_ENCRYPTION_KEY must be 32 bytes: 64 hex characters or base64')
  return key
}

export function createSecretBox(masterKey: Buffer): SecretBox {
  return {
    seal(plaintext, tenantId) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv)
      cipher.setAAD(Buffer.from(tenantId, 'utf8'))
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.')
    },
    open(sealed, tenantId) {
      const [version, iv, tag, ciphertext] = sealed.split('.')
      if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unrecognised secret format')
      const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(iv, 'base64url'))
      decipher.setAAD(Buffer.from(tenantId, 'utf8'))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
    },
  }
}

/** What the API shows instead of a key: its kind and last four characters. */
export function keyHint(secretKey: string): string {
  const kind = /^(sk|rk)_(live|test)_/.exec(secretKey)?.[0] ?? ''
  return `${kind}…${secretKey.slice(-4)}`
}
