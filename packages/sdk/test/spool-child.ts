/**
 * Run by meter-spool.test.ts in a child process, which this script ends with a real SIGKILL (no
 * flush, no close, no 'exit' handlers): the crash the spool is for.
 *
 *   node --import tsx spool-child.ts <dir> <url> <durability> <killDelayMs>
 *
 * Records evt-0…9 (batches of 5), waits until the API has answered the first batch and been asked for
 * the second (acks on disk), then records evt-10…16 and kills itself `killDelayMs` later (0: at once,
 * right after the last record() returned).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createMeter } from '../src/index.ts'

const [dir, url, durability, killDelay] = process.argv.slice(2) as [string, string, 'batch' | 'sync', string]
const meter = createMeter({
  url,
  apiKey: 'br_sk_test',
  batchSize: 5,
  flushIntervalMs: 60_000,
  retryDelayMs: 1,
  maxRetryDelayMs: 5,
  spool: { dir, durability, writeIntervalMs: 10 },
})
const event = (i: number) => ({
  id: `evt-${i}`,
  customerId: 'acme',
  model: 'gpt-4o',
  timestamp: '2026-11-23T10:00:00.000Z',
  inputTokens: 100 + i,
  outputTokens: 10,
})

for (let i = 0; i < 10; i++) meter.record(event(i))
while (!(meter.stats.sent === 5 && meter.stats.retries >= 1)) await sleep(2)
await sleep(50)
for (let i = 10; i < 17; i++) meter.record(event(i))
if (Number(killDelay) > 0) await sleep(Number(killDelay))
process.stdout.write(JSON.stringify(meter.stats))
process.kill(process.pid, 'SIGKILL')
