import type { UsageCollector } from './providers/common.ts'
import type { MeteredUsage } from './types.ts'

/**
 * Passes a stream through unchanged while a collector reads its usage; `onUsage` runs exactly
 * once when the stream ends — completely, by an error, or because the consumer stopped early
 * (`break`) — with the usage seen so far (null when the provider reported none).
 *
 *   for await (const chunk of meterStream(stream, openai.chatCompletionStream(), (u) => u && meter.record({ ...u, customerId })))
 */
export async function* meterStream<Chunk>(
  stream: AsyncIterable<Chunk>,
  // NoInfer: the collectors take `unknown` chunks; the stream alone decides what the caller iterates over.
  collector: UsageCollector<NoInfer<Chunk>>,
  onUsage: (usage: MeteredUsage | null, info: { complete: boolean }) => void,
): AsyncGenerator<Chunk, void, undefined> {
  let complete = false
  try {
    for await (const chunk of stream) {
      try {
        collector.push(chunk)
      } catch {
        // A collector never breaks the host's stream.
      }
      yield chunk
    }
    complete = true
  } finally {
    onUsage(collector.usage(), { complete })
  }
}

export interface SseEvent {
  event: string | null
  data: string
}

/**
 * Incremental Server-Sent Events parser (the WHATWG format providers stream in): feed it bytes
 * as they arrive, get complete events back. Handles CRLF, multi-line data and comments.
 */
export class SseParser {
  private buffer = ''
  private readonly decoder = new TextDecoder()
  private event: string | null = null
  private data: string[] = []

  push(chunk: Uint8Array | string): SseEvent[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true })
    const out: SseEvent[] = []
    let newline: number
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline)
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1
      // A lone \r at the end of the buffer may be the first half of \r\n: wait for more.
      if (width === 1 && this.buffer[newline] === '\r' && newline === this.buffer.length - 1) break
      this.buffer = this.buffer.slice(newline + width)
      if (line === '') {
        if (this.data.length > 0) out.push({ event: this.event, data: this.data.join('\n') })
        this.event = null
        this.data = []
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'data') this.data.push(value)
      else if (field === 'event') this.event = value
    }
    return out
  }
}

/** Each SSE `data:` payload of a stream parsed as JSON (`[DONE]` and non-JSON payloads skipped). */
export async function* sseJson(body: AsyncIterable<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  const parser = new SseParser()
  for await (const bytes of body) {
    for (const event of parser.push(bytes)) {
      if (event.data === '[DONE]') continue
      try {
        yield JSON.parse(event.data)
      } catch {
        // Not JSON: not a usage carrier.
      }
    }
  }
}
