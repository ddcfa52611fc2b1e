/**
 * Reading and refusing request bodies on node:http without letting a client hold memory it has
 * no right to, and without losing the answer to a connection reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Admission } from '../shared/http-route.ts'

export type { Admission }

/** Bytes of request bodies held in memory right now, and the most ever held at once. */
export class BodyMeter {
  held = 0
  peak = 0
  add(bytes: number): void {
    this.held += bytes
    if (this.held > this.peak) this.peak = this.held
  }
  release(bytes: number): void {
    this.held -= bytes
  }
}

/**
 * After refusing a request whose body is still coming, how much of it is read and thrown away
 * before the socket closes. Closing a socket with unread input makes the kernel reset the
 * connection, and a client that writes its whole body before reading (Python's http.client,
 * many SDKs) then loses the answer: it sees a broken pipe instead of the 413 or 401. Discarding
 * costs no memory; past these bounds the client is not behaving and may get its reset.
 */
const LINGER_MAX_BYTES = 64 * 1024 * 1024
const LINGER_MAX_MS = 30_000

/**
 * Answers `status` with a JSON body at once, then keeps the connection open, discarding what the
 * client still sends, until its body has ended (or the linger bounds are reached); only then is
 * the connection closed. Nothing of the body is kept.
 */
export function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  // A route may answer in its own format: bytes as given, with the content type in `headers`.
  const raw = payload instanceof Uint8Array
  const body = raw ? payload : JSON.stringify(payload)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    ...(raw ? headers : { ...headers, 'content-type': 'application/json; charset=utf-8' }),
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  })
  const declared = Number(req.headers['content-length'] ?? 0)
  if (req.complete || req.destroyed || declared > LINGER_MAX_BYTES) {
    res.end(body)
    return
  }
  // The whole answer goes out now; ending the response is what closes the socket, so it waits.
  res.write(body)
  let discarded = 0
  const finish = () => {
    clearTimeout(timer)
    req.off('data', onData).off('end', finish).off('error', finish)
    if (!res.writableEnded) res.end()
  }
  const onData = (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > LINGER_MAX_BYTES) finish()
  }
  const timer = setTimeout(finish, LINGER_MAX_MS)
  timer.unref()
  req.on('data', onData).once('end', finish).once('error', finish)
  res.once('close', finish)
  req.resume()
}

export type BodyOutcome = Buffer | 'too-large' | 'aborted'

/**
 * The whole request body, refused as soon as it passes `limit` bytes (declared or actually sent), so a
 * lying or absent Content-Length cannot get past it. Every byte held is counted on `meter` until
 * the response closes.
 */
export function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  meter: BodyMeter,
): Promise<BodyOutcome> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve('too-large')
  let seen = 0
  res.once('close', () => meter.release(seen))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const settle = (outcome: BodyOutcome | Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
      if (outcome instanceof Error) reject(outcome)
      else resolve(outcome)
    }
    const onData = (chunk: Buffer) => {
      if (seen + chunk.length > limit) {
        req.pause()
        chunks.length = 0
        return settle('too-large')
      }
      seen += chunk.length
      meter.add(chunk.length)
      chunks.push(chunk)
    }
    const onEnd = () => settle(Buffer.concat(chunks))
    const onError = (error: Error) => settle(req.destroyed ? 'aborted' : error)
    const onClose = () => settle('aborted')
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose)
  })
}

export const payloadTooLarge = (limit: number) => ({
  errors: [{ message: `Request body is larger than ${limit} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
})
