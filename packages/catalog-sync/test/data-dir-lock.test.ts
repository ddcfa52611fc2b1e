import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquireDataDirLock, DataDirLockedError, lockPathOf } from '../src/data-dir-lock.ts'

/** The pid of a process that has exited: nothing runs under it any more (until the kernel reuses it). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  const pid = child.pid!
  await new Promise((resolve) => child.once('exit', resolve))
  return pid
}

describe('the lock of an embedded data dir', () => {
  let root: string
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'burnrate-lock-'))
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  it('is held by one holder at a time and names it to the next', () => {
    const dir = join(root, 'one', 'pglite')
    const lock = acquireDataDirLock(dir, 'the Burnrate API')
    expect(JSON.parse(readFileSync(lockPathOf(dir), 'utf8'))).toMatchObject({
      holder: 'the Burnrate API',
      pid: process.pid,
      hostname: hostname(),
    })
    let refusal: unknown
    try {
      acquireDataDirLock(dir, 'catalog-sync')
    } catch (error) {
      refusal = error
    }
    expect(refusal).toBeInstanceOf(DataDirLockedError)
    expect((refusal as DataDirLockedError).owner).toMatchObject({ holder: 'the Burnrate API', pid: process.pid })
    expect((refusal as Error).message).toContain(`in use by the Burnrate API (pid ${process.pid}`)
    lock.release()
    expect(existsSync(lockPathOf(dir))).toBe(false)
    acquireDataDirLock(dir, 'catalog-sync').release()
  })

  it('takes over a lock whose process is gone (kill -9 leaves the file behind)', async () => {
    const dir = join(root, 'stale', 'pglite')
    const pid = await deadPid()
    mkdirSync(join(root, 'stale'))
    writeFileSync(
      lockPathOf(dir),
      JSON.stringify({ holder: 'the Burnrate API', pid, hostname: hostname(), since: '2026-12-06T00:00:00Z' }),
    )
    const lock = acquireDataDirLock(dir, 'catalog-sync')
    expect(JSON.parse(readFileSync(lockPathOf(dir), 'utf8'))).toMatchObject({
      holder: 'catalog-sync',
      pid: process.pid,
    })
    lock.release()
  })

  it('takes over an unreadable lock file, but never a live one of another host', () => {
    const dir = join(root, 'garbage', 'pglite')
    mkdirSync(join(root, 'garbage'))
    writeFileSync(lockPathOf(dir), 'not json')
    acquireDataDirLock(dir, 'catalog-sync').release()
    writeFileSync(
      lockPathOf(dir),
      JSON.stringify({ holder: 'the Burnrate API', pid: 1, hostname: `${hostname()}-elsewhere`, since: 'x' }),
    )
    expect(() => acquireDataDirLock(dir, 'catalog-sync')).toThrow(DataDirLockedError)
  })
})
