/**
 * Run by meter-spool.test.ts, several at once on one spool dir whose lock was left by a dead
 * process: each prints "won" (then holds the dir for `holdMs`) or "refused".
 *
 *   node --import tsx spool-lock-child.ts <dir> <holdMs>
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createMeter, SpoolLockedError } from '../src/index.ts'

const [dir, holdMs] = process.argv.slice(2) as [string, string]
try {
  const meter = createMeter({
    url: 'http://127.0.0.1:9/graphql',
    apiKey: 'br_sk_test',
    flushIntervalMs: 60_000,
    spool: { dir },
  })
  process.stdout.write('won')
  await sleep(Number(holdMs))
  await meter.close({ timeoutMs: 100 })
} catch (error) {
  if (!(error instanceof SpoolLockedError)) throw error
  process.stdout.write('refused')
}
