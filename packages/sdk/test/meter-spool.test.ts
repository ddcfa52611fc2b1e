import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMeter, SpoolLockedError, type UsageEvent } from '../src/index.ts'
import { fakeApi } from './fake-api.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'burnrate-spool-'))
  dirs.push(dir)
  return dir
}

const event = (i: number): UsageEvent => ({
  id: `evt-${i}`,
  customerId: 'acme',
  model: 'gpt-4o',
  timestamp: '2026-11-23T10:00:00.000Z',
  inputTokens: 100 + i,
  outputTokens: 10,
})
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `evt-${from + i}`)
const fast = { apiKey: 'br_sk_test', retryDelayMs: 1, maxRetryDelayMs: 5, flushIntervalMs: 60_000 }
const segments = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.jsonl'))
const journal = (dir: string) =>
  segments(dir)
    .sort()
    .map((n) => readFileSync(join(dir, n), 'utf8'))
    .join('')

/** Runs spool-child.ts, which ends itself with SIGKILL; resolves with the stats it printed just before. */
function crashingChild(dir: string, url: string, durability: 'batch' | 'sync', killDelayMs: number) {
  const script = new URL('./spool-child.ts', import.meta.url).pathname
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, url, durability, String(killDelayMs)], {
    cwd: new URL('../../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  return new Promise<{ signal: NodeJS.Signals | null; stats: Record<string, number> }>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}/${signal}: ${err}`))
      else resolve({ signal, stats: JSON.parse(out) as Record<string, number> })
    }),
  )
}

describe('Meter spool', () => {
  for (const [durability, killDelayMs] of [
    ['sync', 0],
    ['batch', 60],
  ] as const) {
    it(`a process killed with SIGKILL leaves its queue on disk; a new meter on the dir delivers every event exactly once (durability ${durability})`, async () => {
      const dir = tempDir()
      // The child's first batch is stored and answered; the second is stored but its answer lost;
      // then the API is down until the child is dead.
      let down = true
      const api = await fakeApi((n) => (n === 1 ? 'ok' : n === 2 ? 'lost' : down ? { status: 503 } : 'ok'))
      const { stats } = await crashingChild(dir, api.url, durability, killDelayMs)
      expect(stats).toMatchObject({ sent: 5, queued: 12, spooled: 12 })
      expect(existsSync(join(dir, 'lock'))).toBe(true) // left by the dead process

      down = false
      const meter = createMeter({ url: api.url, ...fast, batchSize: 5, spool: { dir } })
      expect(meter.stats).toMatchObject({ replayed: 12, queued: 12, spooled: 12, spoolBacklog: 0 })
      expect(await meter.close()).toEqual({ done: true, remaining: 0 })
      // Every id stored once; evt-5…9 (stored, answer lost) came back DUPLICATE, evt-0…4 (acked) were never resent.
      expect([...api.stored.keys()].sort()).toEqual(ids(0, 17).sort())
      for (const id of ids(0, 5)) expect(api.received.get(id)).toBe(1)
      for (const id of ids(10, 17)) expect(api.received.get(id)).toBe(1)
      expect(meter.stats).toMatchObject({ sent: 7, duplicates: 5, rejected: 0, spooled: 0 })
      expect(existsSync(join(dir, 'lock'))).toBe(false)
    })
  }

  it("durability 'batch': a kill right after record() can lose what was recorded in the last writeIntervalMs (the documented window)", async () => {
    const dir = tempDir()
    let down = true
    const api = await fakeApi((n) => (n === 1 ? 'ok' : n === 2 ? 'lost' : down ? { status: 503 } : 'ok'))
    await crashingChild(dir, api.url, 'batch', 0)
    down = false
    const meter = createMeter({ url: api.url, ...fast, batchSize: 5, spool: { dir } })
    // evt-5…9 were journaled before their batch was first sent, so they come back; evt-10…16 were
    // recorded in the same synchronous turn as the kill, before any write: lost, as documented.
    expect(meter.stats.replayed).toBe(5)
    await meter.close()
    expect([...api.stored.keys()].sort()).toEqual(ids(0, 10).sort())
  })

  it('a torn last line (crash mid-write) is skipped; everything before it is delivered', async () => {
    const dir = tempDir()
    // The first meter talks to an API that stays down (a retry still in flight when close() gives up
    // must not reach the API the second meter uses: that would be a legitimate, but here confusing, redelivery).
    const downApi = await fakeApi(() => ({ status: 503 }))
    const first = createMeter({ url: downApi.url, ...fast, spool: { dir } })
    for (let i = 0; i < 4; i++) first.record(event(i))
    expect(await first.close({ timeoutMs: 20 })).toMatchObject({ done: false, remaining: 4 })
    const [last] = segments(dir).sort().reverse()
    appendFileSync(join(dir, last!), '{"s":5,"e":{"id":"evt-4","customerId":"ac')

    const api = await fakeApi()
    const second = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(second.stats).toMatchObject({ replayed: 4, spooled: 4 })
    expect(second.stats.lastError).toMatch(/skipped 1 unreadable journal line/)
    expect(await second.close()).toEqual({ done: true, remaining: 0 })
    expect([...api.stored.keys()]).toEqual(ids(0, 4))
    // New lines never follow the torn one: it stays where it was until its segment is compacted away.
    expect(journal(dir)).not.toContain('"customerId":"ac{')
  })

  it('events acked before a restart are not redelivered; the rest are, in order', async () => {
    const dir = tempDir()
    let down = false
    const firstApi = await fakeApi(() => (down ? { status: 503 } : 'ok'))
    const first = createMeter({ url: firstApi.url, ...fast, spool: { dir } })
    for (let i = 0; i < 5; i++) first.record(event(i))
    expect(await first.flush()).toEqual({ done: true, remaining: 0 })
    down = true
    for (let i = 5; i < 8; i++) first.record(event(i))
    expect(await first.close({ timeoutMs: 20 })).toEqual({ done: false, remaining: 3 })
    expect(first.stats).toMatchObject({ sent: 5, spooled: 3 })

    // The restarted meter talks to a second server: firstApi stays down, so only the restart delivers.
    const api = await fakeApi()
    const second = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(second.stats).toMatchObject({ replayed: 3 })
    await second.close()
    expect(api.batches.flat().map((e) => e.id)).toEqual(ids(5, 8))
    expect([...api.received.values()].every((n) => n === 1)).toBe(true)

    // A third start finds nothing to replay.
    const third = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(third.stats).toMatchObject({ replayed: 0, spooled: 0, queued: 0 })
    await third.close()
  })

  it('what does not fit in the queue stays on disk and is delivered as room frees up, never dropped', async () => {
    const dir = tempDir()
    const downApi = await fakeApi(() => ({ status: 503 }))
    const first = createMeter({ url: downApi.url, ...fast, spool: { dir } })
    for (let i = 0; i < 25; i++) first.record(event(i))
    await first.close({ timeoutMs: 20 })

    const api = await fakeApi()
    const second = createMeter({ url: api.url, ...fast, batchSize: 4, maxQueueSize: 10, spool: { dir } })
    expect(second.stats).toMatchObject({ queued: 10, replayed: 10, spoolBacklog: 15, spooled: 25, dropped: 0 })
    expect(await second.close()).toEqual({ done: true, remaining: 0 })
    expect(api.batches.flat().map((e) => e.id)).toEqual(ids(0, 25))
    expect(second.stats).toMatchObject({ replayed: 25, spoolBacklog: 0, spooled: 0, sent: 25, dropped: 0 })
  })

  it('compaction: segments rotate by size and are deleted once everything in them is acked', async () => {
    const dir = tempDir()
    let down = true
    const api = await fakeApi(() => (down ? { status: 503 } : 'ok'))
    const meter = createMeter({ url: api.url, ...fast, batchSize: 10, spool: { dir, segmentBytes: 1_000 } })
    for (let chunk = 0; chunk < 4; chunk++) {
      for (let i = chunk * 10; i < chunk * 10 + 10; i++) meter.record(event(i))
      await meter.flush({ timeoutMs: 20 }) // writes the journal; a segment rotates after a write that takes it past 1 kB
    }
    // API down: ~150 bytes per event line, so 40 events span several 1 kB segments, all kept.
    expect(segments(dir).length).toBeGreaterThan(3)
    expect(meter.stats.spooled).toBe(40)

    down = false
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    // Everything acked: one fresh, empty segment is left.
    expect(segments(dir)).toHaveLength(1)
    expect(journal(dir)).toBe('')
    expect(meter.stats.spooled).toBe(0)

    // While the API keeps up the journal stays small.
    for (let i = 40; i < 140; i++) meter.record(event(i))
    await meter.flush()
    expect(segments(dir)).toHaveLength(1)
    expect(journal(dir).length).toBeLessThan(1_000)
    await meter.close()
  })

  it('one spool dir per meter: a second meter on a locked dir is refused; a lock left by a dead process is taken over', async () => {
    const dir = tempDir()
    const api = await fakeApi()
    const first = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(() => createMeter({ url: api.url, ...fast, spool: { dir } })).toThrow(SpoolLockedError)
    await first.close()
    expect(existsSync(join(dir, 'lock'))).toBe(false)

    // A pid that cannot be alive (above the kernel's pid_max).
    writeFileSync(join(dir, 'lock'), '99999999')
    const second = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(String(process.pid))
    await second.close()
  })

  it('a stale lock is taken over by exactly one of several processes starting at once', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'lock'), '99999999') // left by a dead process
    const script = new URL('./spool-lock-child.ts', import.meta.url).pathname
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, dir, '3000'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let out = ''
        let err = ''
        child.stdout.on('data', (c: Buffer) => (out += c.toString()))
        child.stderr.on('data', (c: Buffer) => (err += c.toString()))
        child.on('exit', (exitCode) =>
          exitCode === 0 ? resolve(out) : reject(new Error(`child exited ${exitCode}: ${err}`)),
        )
      })
    const outcomes = await Promise.all(Array.from({ length: 4 }, run))
    expect(outcomes.sort()).toEqual(['refused', 'refused', 'refused', 'won'])
    // Nothing moved aside is left behind.
    expect(readdirSync(dir).filter((n) => n.startsWith('lock'))).toEqual([])
  }, 30_000)

  it('rejected events are acked too: not replayed after a restart', async () => {
    const dir = tempDir()
    const api = await fakeApi()
    const first = createMeter({ url: api.url, ...fast, spool: { dir } })
    first.record({ ...event(1), model: 'reject-me' })
    await first.close()
    expect(first.stats).toMatchObject({ rejected: 1, spooled: 0 })
    const second = createMeter({ url: api.url, ...fast, spool: { dir } })
    expect(second.stats).toMatchObject({ replayed: 0 })
    await second.close()
  })

  it('without the spool option nothing touches the file system: node:fs is never even loaded', async () => {
    const getBuiltinModule = vi.spyOn(process, 'getBuiltinModule')
    try {
      const api = await fakeApi(() => ({ status: 503 }))
      const meter = createMeter({ url: api.url, ...fast })
      for (let i = 0; i < 5; i++) meter.record(event(i))
      await meter.close({ timeoutMs: 20 })
      expect(meter.stats).toMatchObject({ spooled: 0, replayed: 0, spoolBacklog: 0 })
      expect(getBuiltinModule).not.toHaveBeenCalled()
    } finally {
      getBuiltinModule.mockRestore()
    }
    // …and no SDK source imports node:fs statically (the spool loads it only when asked for).
    const sources = readdirSync(new URL('../src', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((n) =>
      n.endsWith('.ts'),
    )
    for (const name of sources) {
      const text = readFileSync(new URL(`../src/${name}`, import.meta.url), 'utf8')
      expect(text, name).not.toMatch(/^import (?!type)[^\n]*['"](node:)?fs(\/promises)?['"]/m)
    }
  })
})
