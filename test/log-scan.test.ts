import { describe, expect, it } from 'vitest'
import { redactString } from '../packages/api/src/logger.ts'
import { findSecretsInLogs } from './support/log-scan.ts'

describe('whole-run log scan', () => {
  const key = 'br_sk_' + 'a1B2c3D4e5F6g7H8i9J0'
  it('finds a handed-out credential and credential-shaped strings, and passes what the logger redacted', () => {
    const logs = [
      { file: '1.log', text: `{"msg":"ok","tenant":"t1"}\n{"msg":"leak ${key}"}\n` },
      {
        file: '2.log',
        text: `{"msg":"auth","h":"Bearer abcdefgh12345"}\n{"msg":"${redactString(`Bearer ${key}`)}"}\n`,
      },
      { file: '3.log', text: `{"err":"${redactString('sk_test_51Hxyzabcdef and sk-proj-abcdefghijklmnop')}"}\n` },
      { file: '4.log', text: `{"opaque":"tenant-secret-not-shaped-0001"}\n` },
    ]
    const found = findSecretsInLogs(logs, ['tenant-secret-not-shaped-0001'])
    expect(found.map((f) => f.split(':')[0])).toEqual(['1.log', '2.log', '4.log'])
  })
})
