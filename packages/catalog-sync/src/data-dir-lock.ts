import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname } from 'node:path'

/**
 * PGlite is single-writer: two processes opening one data directory each believe they own it and
 * one's commits are lost (or the files corrupted). Every process that opens an embedded data dir —
 * the API, the catalog-sync CLI, tenant:create — first takes this lock, a file beside the data dir
 * that names the holder; whoever finds it held refuses instead of opening. A lock left by a killed
 * process (kill -9, a crash: no chance to remove it) is taken over once its pid is gone.
 */

export interface DataDirLockOwner {
  /** Who holds it, in words for the refusal message: "the Burnrate API", "catalog-sync". */
  holder: string
  pid: number
  hostname: string
  since: string
}

/** How the API names itself in the lock, so the CLI can tell it from another CLI run and point to the API's GraphQL. */
export const API_LOCK_HOLDER = 'the Burnrate API'

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly owner: DataDirLockOwner,
  ) {
    super(`${dataDir} is in use by ${owner.holder} (pid ${owner.pid} on ${owner.hostname}, since ${owner.since})`)
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  readonly path: string
  /** Removes the lock if it is still this process's; safe to call more than once. */
  release(): void
}

/** The lock file of an embedded data dir: beside it, so PGlite never sees a foreign file inside its own directory. */
export const lockPathOf = (dataDir: string) => `${dataDir.replace(/\/+$/, '')}.lock`

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function parseOwner(text: string): DataDirLockOwner | null {
  try {
    const owner = JSON.parse(text) as Partial<DataDirLockOwner>
    if (
      typeof owner.pid !== 'number' ||
      !Number.isInteger(owner.pid) ||
      owner.pid <= 0 ||
      typeof owner.hostname !== 'string'
    )
      return null
    return {
      holder: String(owner.holder ?? 'another process'),
      pid: owner.pid,
      hostname: owner.hostname,
      since: String(owner.since ?? 'an unknown time'),
    }
  } catch {
    return null
  }
}

/** Locks held by this process, so a lock naming our own pid but not listed here is a dead predecessor's (pid reuse in containers). */
const heldHere = new Set<string>()

/** Alive on this host, or on another host (which cannot be checked from here: taken as alive). */
function ownerIsLive(owner: DataDirLockOwner, path: string): boolean {
  if (owner.hostname !== hostname()) return true
  if (owner.pid === process.pid) return heldHere.has(path)
  return isAlive(owner.pid)
}

/**
 * Takes the lock of `dataDir` for this process, or throws DataDirLockedError naming the live holder.
 * Creating the file is atomic (`wx`). A stale one is never deleted in place: it is renamed aside
 * (one rename of a file succeeds) and checked to be the file judged stale; if another starter had
 * meanwhile put its own live lock there, that one is linked back and this starter tries again.
 */
export function acquireDataDirLock(dataDir: string, holder: string): DataDirLock {
  const path = lockPathOf(dataDir)
  mkdirSync(dirname(path), { recursive: true })
  const code = (error: unknown) => (error as NodeJS.ErrnoException).code
  const mine = JSON.stringify({ holder, pid: process.pid, hostname: hostname(), since: new Date().toISOString() })
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      writeFileSync(path, mine, { flag: 'wx' })
      heldHere.add(path)
      return lockOf(path, mine)
    } catch (error) {
      if (code(error) !== 'EEXIST') throw error
    }
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (error) {
      if (code(error) === 'ENOENT') continue // released meanwhile
      throw error
    }
    const owner = parseOwner(text)
    if (owner && ownerIsLive(owner, path)) throw new DataDirLockedError(dataDir, owner)
    const aside = `${path}.stale-${process.pid}-${attempt}`
    try {
      renameSync(path, aside)
    } catch (error) {
      if (code(error) === 'ENOENT') continue // another starter moved it first
      throw error
    }
    if (readFileSync(aside, 'utf8') !== text) {
      try {
        linkSync(aside, path)
      } catch (error) {
        if (code(error) !== 'EEXIST') throw error
      }
    }
    rmSync(aside, { force: true })
  }
  throw new Error(`could not lock ${dataDir}: its lock file ${path} keeps changing`)
}

function lockOf(path: string, content: string): DataDirLock {
  let released = false
  const release = () => {
    if (released) return
    released = true
    heldHere.delete(path)
    process.off('exit', release)
    try {
      if (readFileSync(path, 'utf8') === content) rmSync(path, { force: true })
    } catch {
      // Already gone.
    }
  }
  // process.exit() and uncaught exceptions still run 'exit' handlers; only SIGKILL leaves the file (then stale).
  process.on('exit', release)
  return { path, release }
}
