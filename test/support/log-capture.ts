/**
 * Vitest global setup: every app a test builds with `createTestApp` logs at debug level into this
 * run's capture directory, and records the credentials it hands out (tenant keys, signing secrets).
 * When the run ends, every captured line is searched for a credential — the ones recorded, and any
 * string shaped like one of our keys or a provider's — and the run fails if one is found.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findSecretsInLogs } from './log-scan.ts'

export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'burnrate-test-logs-'))
  process.env.BURNRATE_TEST_LOG_DIR = dir
  return () => {
    const files = readdirSync(dir)
    const read = (suffix: string) =>
      files.filter((f) => f.endsWith(suffix)).map((f) => ({ file: f, text: readFileSync(join(dir, f), 'utf8') }))
    const secrets = read('.secrets').flatMap((s) => s.text.split('\n').filter(Boolean))
    const logs = read('.log')
    const lines = logs.reduce((n, l) => n + l.text.split('\n').length - 1, 0)
    const found = findSecretsInLogs(logs, secrets)
    if (found.length > 0) {
      process.exitCode = 1
      throw new Error(
        `credentials in the logs of this test run (${found.length}; kept in ${dir}):\n` + found.slice(0, 10).join('\n'),
      )
    }
    if (process.env.CI) console.log(`log scan: ${lines} lines from ${logs.length} workers, no credential found`)
    rmSync(dir, { recursive: true, force: true })
  }
}
