/** One Server-Sent Event as received: its exact text (blank line included) and its joined data. */
export interface RawSseEvent {
  raw: string
  data: string | null
}

/**
 * Splits an SSE byte stream into whole events without altering a byte of them, so the gateway can
 * forward each event exactly as the provider sent it (or hold one back) while reading its data.
 * Line endings may be LF, CRLF or CR, as the SSE format allows.
 */
export class SseEventSplitter {
  private readonly decoder = new TextDecoder()
  private buffer = ''
  private raw = ''
  private data: string[] = []

  push(bytes: Uint8Array): RawSseEvent[] {
    this.buffer += this.decoder.decode(bytes, { stream: true })
    const out: RawSseEvent[] = []
    let match: RegExpExecArray | null
    const lineEnd = /\r\n|\r|\n/g
    let consumed = 0
    while ((match = lineEnd.exec(this.buffer)) !== null) {
      // A CR at the very end may be the first half of a CRLF still in flight.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break
      const line = this.buffer.slice(consumed, match.index)
      this.raw += this.buffer.slice(consumed, lineEnd.lastIndex)
      consumed = lineEnd.lastIndex
      if (line === '') {
        out.push({ raw: this.raw, data: this.data.length > 0 ? this.data.join('\n') : null })
        this.raw = ''
        this.data = []
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
      }
    }
    this.buffer = this.buffer.slice(consumed)
    return out
  }

  /** Whatever followed the last complete event (a stream cut mid-event). */
  rest(): string {
    return this.raw + this.buffer + this.decoder.decode()
  }
}
