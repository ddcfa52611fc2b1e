import type * as Fs from 'node:fs'
import type { UsageEvent } from './types.ts'

/**
 * Durable spool for the meter (Node only): an append-only journal that lets a restarted process
 * deliver what a crashed one left queued.
 *
 * Layout of `dir`:
 *   lock                  the pid of the process that owns the dir (one meter per dir)
 *   000000000001.jsonl    journal segments, oldest first; only the newest one is ever appended to
 *
 * Each segment is JSON lines of two kinds:
 *   {"s":17,"e":{…event…}}   an accepted event with its spool sequence number
 *   {"a":[17,18,19]}         acks: those events were delivered (RECORDED / DUPLICATE) or definitively
 *                            rejected, and must not be sent again
 * Acks name sequence numbers, not event ids, so two events that happen to share an id are still told
 * apart; redelivery stays safe either way because the id is the API's idempotency key.
 *
 * Writes are kept off `record()`'s path: `append` only pushes the event onto an in-memory buffer
 * (durability 'batch'), and `writePending` serializes and writes the buffer with one `writeSync` —
 * called before every batch is sent and by a short timer. With durability 'sync', `append` writes the
 * line at once. Neither mode calls fsync: a written line is in the OS page cache, which survives the
 * process being killed (crash, SIGKILL, OOM killer) but not a kernel crash or power loss.
 *
 * Compaction: a new segment starts when the current one exceeds `segmentBytes`, and as soon as every
 * event in the journal is acked; segments are deleted oldest-first once all their events are acked.
 * Deleting only a prefix matters: acks live in the newest segment, so an older segment may be deleted
 * only when everything it holds is settled, never a newer one whose acks an older segment still needs.
 */
export interface SpoolOptions {
  /** Directory for the journal; created if missing. One meter (one process) per directory. */
  dir: string
  /**
   * 'batch' (default): `record()` only buffers; the journal is written before each batch is sent and
   * at most `writeIntervalMs` after an event was recorded, so a hard kill can lose the events recorded
   * in the last `writeIntervalMs`. 'sync': every `record()` writes its line at once (a `writeSync`
   * of a few hundred bytes, some microseconds): a hard kill loses nothing that `record()` accepted.
   */
  durability?: 'batch' | 'sync'
  /** Default 50 ms. */
  writeIntervalMs?: number
  /** A segment larger than this is closed and a new one started; default 4 MiB. */
  segmentBytes?: number
}

/** The spool sequence number of an event held by the meter; a symbol, so JSON and the wire never see it. */
const SPOOL_SEQ: unique symbol = Symbol('burnrate.spoolSeq')
export type SpooledEvent = UsageEvent & { [SPOOL_SEQ]?: number }

interface Segment {
  no: number
  /** Events written (or buffered) in this segment and not yet acked. */
  unacked: number
  /** Sequence numbers of this segment's events are ≥ firstSeq (and < the next segment's). */
  firstSeq: number
}

/** Directories locked by meters of this process: a lock file with our own pid but not in here was left by an earlier process that had the same pid (containers reuse pid 1). */
const lockedHere = new Set<string>()

export class SpoolLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `spool dir ${dir} is in use by process ${pid}${pid === process.pid ? ' (another meter in this process)' : ''}: use one spool dir per meter and process` +
        ' (if that process is gone and its pid was reused, delete the lock file)',
    )
    this.name = 'SpoolLockedError'
  }
}

function loadFs(): typeof Fs {
  // Loaded only when a spool is asked for, so the SDK still loads where there is no node:fs (browsers,
  // edge runtimes). process.getBuiltinModule is synchronous (Node ≥ 20.16), which keeps the Meter
  // constructor synchronous.
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule
  if (typeof get !== 'function') throw new Error('the meter spool needs Node.js ≥ 20.16 (process.getBuiltinModule)')
  return get('node:fs') as typeof Fs
}

export interface Recovery {
  /** Un-acked events left in the journal by an earlier run. */
  unacked: number
  /** Lines that could not be parsed: a torn last line (crash mid-write) or damage. */
  badLines: number
}

export class Spool {
  readonly durability: 'batch' | 'sync'
  readonly writeIntervalMs: number
  private readonly segmentBytes: number
  private readonly fs: typeof Fs
  private readonly dir: string
  private readonly lockPath: string
  private fd = -1
  private currentBytes = 0
  private segments: Segment[] = []
  private nextSeq = 1
  private buffer: SpooledEvent[] = []
  private acks: number[] = []
  /** Events in the journal not acked yet (including the backlog and lines still buffered). */
  unacked = 0
  /** Un-acked events of earlier runs still on disk, waiting for room in the meter's queue. */
  backlog = 0
  private backlogReader: Iterator<SpooledEvent> | null = null
  private readonly onExit = () => this.releaseOnExit()
  closed = false

  constructor(options: SpoolOptions) {
    this.fs = loadFs()
    this.dir = options.dir
    this.durability = options.durability ?? 'batch'
    this.writeIntervalMs = options.writeIntervalMs ?? 50
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024
    if (this.durability !== 'batch' && this.durability !== 'sync')
      throw new RangeError("spool.durability must be 'batch' or 'sync'")
    this.fs.mkdirSync(this.dir, { recursive: true })
    this.lockPath = `${this.dir}/lock`
    this.lock()
    process.on('exit', this.onExit)
  }

  /**
   * Reads what earlier runs left: every segment once to learn the acks, then a reader that yields the
   * un-acked events in journal order, one segment in memory at a time. New writes go to a new segment,
   * never after a possibly torn last line.
   */
  recover(): Recovery {
    const names = this.fs
      .readdirSync(this.dir)
      .filter((n) => /^\d{12}\.jsonl$/.test(n))
      .sort()
    const acked = new Set<number>()
    const seqsBySegment: { no: number; seqs: number[] }[] = []
    let badLines = 0
    for (const name of names) {
      const seqs: number[] = []
      for (const line of this.lines(name)) {
        const record = parseLine(line)
        if (!record) badLines += 1
        else if ('e' in record) seqs.push(record.s)
        else for (const s of record.a) acked.add(s)
      }
      seqsBySegment.push({ no: Number(name.slice(0, 12)), seqs })
    }
    let unacked = 0
    let maxSeq = 0
    for (const { no, seqs } of seqsBySegment) {
      let left = 0
      for (const s of seqs) {
        if (!acked.has(s)) left += 1
        if (s > maxSeq) maxSeq = s
      }
      this.segments.push({ no, unacked: left, firstSeq: seqs[0] ?? Number.MAX_SAFE_INTEGER })
      unacked += left
    }
    this.nextSeq = maxSeq + 1
    this.unacked = unacked
    this.backlog = unacked
    this.backlogReader = unacked > 0 ? this.readUnacked(names, acked) : null
    this.openSegment((this.segments.at(-1)?.no ?? 0) + 1)
    this.deleteSettledSegments()
    return { unacked, badLines }
  }

  /** Up to `max` events from the backlog, oldest first. */
  takeBacklog(max: number): SpooledEvent[] {
    const out: SpooledEvent[] = []
    while (this.backlogReader && out.length < max) {
      const next = this.backlogReader.next()
      if (next.done) {
        this.backlogReader = null
        break
      }
      out.push(next.value)
    }
    this.backlog -= out.length
    if (!this.backlogReader) this.backlog = 0
    return out
  }

  /** The hot path: gives the event its sequence number and buffers it (or, 'sync', writes it). */
  append(event: SpooledEvent): void {
    event[SPOOL_SEQ] = this.nextSeq++
    this.unacked += 1
    this.segments[this.segments.length - 1]!.unacked += 1
    if (this.durability === 'sync') this.write(`${JSON.stringify({ s: event[SPOOL_SEQ], e: event })}\n`)
    else this.buffer.push(event)
  }

  /** These events are settled (delivered or definitively rejected): they must not be replayed. */
  ack(events: readonly SpooledEvent[]): void {
    for (const event of events) {
      const seq = event[SPOOL_SEQ]
      if (seq === undefined) continue
      this.acks.push(seq)
      this.unacked -= 1
      const segment = this.segmentOf(seq)
      if (segment) segment.unacked -= 1
    }
  }

  get hasPendingWrites(): boolean {
    return this.buffer.length > 0 || this.acks.length > 0
  }

  /** Writes the buffered events and acks in one write, then rotates and compacts. Off the hot path. */
  writePending(): void {
    if (this.closed || this.fd < 0) return
    if (this.hasPendingWrites) {
      let text = ''
      for (const event of this.buffer) text += `${JSON.stringify({ s: event[SPOOL_SEQ], e: event })}\n`
      if (this.acks.length > 0) text += `${JSON.stringify({ a: this.acks })}\n`
      this.buffer = []
      this.acks = []
      this.write(text)
    }
    if (this.unacked === 0 && this.currentBytes > 0) {
      // Everything is settled: start afresh, so the journal does not grow while the API keeps up.
      this.openSegment(this.segments.at(-1)!.no + 1)
    } else if (this.currentBytes >= this.segmentBytes) {
      this.openSegment(this.segments.at(-1)!.no + 1)
    }
    this.deleteSettledSegments()
  }

  /** Segment files currently on disk (for tests and diagnostics). */
  files(): string[] {
    return this.fs
      .readdirSync(this.dir)
      .filter((n) => n.endsWith('.jsonl'))
      .sort()
  }

  /** Writes what is buffered and releases the dir. Un-acked events stay in the journal for the next run. */
  close(): void {
    if (this.closed) return
    this.writePending()
    this.closed = true
    if (this.fd >= 0) this.fs.closeSync(this.fd)
    this.fd = -1
    this.unlock()
    process.off('exit', this.onExit)
  }

  private write(text: string) {
    const bytes = Buffer.from(text, 'utf8')
    let offset = 0
    while (offset < bytes.length) offset += this.fs.writeSync(this.fd, bytes, offset)
    this.currentBytes += bytes.length
  }

  private openSegment(no: number) {
    if (this.fd >= 0) this.fs.closeSync(this.fd)
    this.fd = this.fs.openSync(`${this.dir}/${segmentName(no)}`, 'a')
    this.currentBytes = 0
    this.segments.push({ no, unacked: 0, firstSeq: this.nextSeq })
  }

  /** Deletes the oldest segments while all their events are acked; never the one being written. */
  private deleteSettledSegments() {
    while (this.segments.length > 1 && this.segments[0]!.unacked === 0) {
      const segment = this.segments.shift()!
      this.fs.rmSync(`${this.dir}/${segmentName(segment.no)}`, { force: true })
    }
  }

  private segmentOf(seq: number): Segment | undefined {
    // Few segments; the newest are the likeliest.
    for (let i = this.segments.length - 1; i >= 0; i--) if (this.segments[i]!.firstSeq <= seq) return this.segments[i]
    return undefined
  }

  private *lines(name: string): Generator<string> {
    let text: string
    try {
      text = this.fs.readFileSync(`${this.dir}/${name}`, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    let start = 0
    while (start < text.length) {
      let end = text.indexOf('\n', start)
      if (end < 0) end = text.length
      if (end > start) yield text.slice(start, end)
      start = end + 1
    }
  }

  private *readUnacked(names: string[], acked: Set<number>): Generator<SpooledEvent> {
    for (const name of names) {
      for (const line of this.lines(name)) {
        const record = parseLine(line)
        if (!record || !('e' in record) || acked.has(record.s)) continue
        const event = record.e as SpooledEvent
        event[SPOOL_SEQ] = record.s
        yield event
      }
    }
  }

  /**
   * Creating the lock file is atomic (`wx`). Taking over a stale one must be too, or two processes
   * restarting at once on a dead owner's dir could each remove the other's fresh lock and both go
   * on. So a stale lock is never deleted in place: it is renamed aside (a rename of one file
   * succeeds once), and the file moved is checked to be the stale lock that was judged — if another
   * starter had already replaced it with its own live lock, that lock is put back (a hard link,
   * which also refuses to overwrite) and this starter finds the dir taken on its next try.
   */
  private lock() {
    const dir = this.dir
    const code = (error: unknown) => (error as NodeJS.ErrnoException).code
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        this.fs.writeFileSync(this.lockPath, String(process.pid), { flag: 'wx' })
        lockedHere.add(dir)
        return
      } catch (error) {
        if (code(error) !== 'EEXIST') throw error
      }
      let owner: string
      try {
        owner = this.fs.readFileSync(this.lockPath, 'utf8')
      } catch (error) {
        if (code(error) === 'ENOENT') continue // released or moved aside meanwhile: try again
        throw error
      }
      const pid = Number.parseInt(owner, 10)
      if (Number.isInteger(pid) && pid > 0 && (pid === process.pid ? lockedHere.has(dir) : isAlive(pid)))
        throw new SpoolLockedError(dir, pid)
      // Left by a process that is gone (or unreadable): move exactly that file aside, then try again.
      const aside = `${this.lockPath}.stale-${process.pid}-${attempt}`
      try {
        this.fs.renameSync(this.lockPath, aside)
      } catch (error) {
        if (code(error) === 'ENOENT') continue // another starter moved it first
        throw error
      }
      if (this.fs.readFileSync(aside, 'utf8') !== owner) {
        // Not the stale lock any more: another starter's fresh one. Give it back.
        try {
          this.fs.linkSync(aside, this.lockPath)
        } catch (error) {
          if (code(error) !== 'EEXIST') throw error
        }
      }
      this.fs.rmSync(aside, { force: true })
    }
    throw new Error(`could not lock spool dir ${dir}`)
  }

  private unlock() {
    lockedHere.delete(this.dir)
    try {
      if (this.fs.readFileSync(this.lockPath, 'utf8') === String(process.pid))
        this.fs.rmSync(this.lockPath, { force: true })
    } catch {
      // Already gone.
    }
  }

  /** process.exit() or an uncaught exception: write what is buffered (sync is allowed in 'exit'). SIGKILL never gets here. */
  private releaseOnExit() {
    try {
      this.close()
    } catch {
      // Nothing more can be done on the way out.
    }
  }
}

function segmentName(no: number): string {
  return `${String(no).padStart(12, '0')}.jsonl`
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

type JournalRecord = { s: number; e: UsageEvent } | { a: number[] }

function parseLine(line: string): JournalRecord | null {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const record = value as Record<string, unknown>
  if (typeof record.s === 'number' && typeof record.e === 'object' && record.e !== null) return record as JournalRecord
  if (Array.isArray(record.a) && record.a.every((s) => typeof s === 'number')) return record as JournalRecord
  return null
}
