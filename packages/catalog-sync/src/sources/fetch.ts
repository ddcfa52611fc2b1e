import { createHash } from 'node:crypto'

/** Why a source could not be read; the sync leaves the catalog as it was and reports this. */
export class SourceError extends Error {
  constructor(
    readonly source: string,
    readonly kind: 'http' | 'timeout' | 'network' | 'malformed' | 'schema',
    message: string,
  ) {
    super(`${source}: ${message}`)
    this.name = 'SourceError'
  }
}

export interface FetchOptions {
  timeoutMs?: number
  fetch?: typeof fetch
  headers?: Record<string, string>
}

export const DEFAULT_FETCH_TIMEOUT_MS = 30_000

/** GET a JSON document with a timeout; every failure is a SourceError saying what went wrong. */
export async function fetchJson(
  source: string,
  url: string,
  options: FetchOptions = {},
): Promise<{ json: unknown; etag: string | null; lastModified: string | null }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
  const doFetch = options.fetch ?? fetch
  let response: Response
  let text: string
  try {
    response = await doFetch(url, {
      headers: { accept: 'application/json', ...options.headers },
      signal: AbortSignal.timeout(timeoutMs),
    })
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined)
      throw new SourceError(source, 'http', `GET ${url} answered HTTP ${response.status}`)
    }
    text = await response.text()
  } catch (error) {
    if (error instanceof SourceError) throw error
    const name = error instanceof Error ? error.name : ''
    if (name === 'TimeoutError' || name === 'AbortError')
      throw new SourceError(source, 'timeout', `GET ${url} timed out after ${timeoutMs} ms`)
    throw new SourceError(
      source,
      'network',
      `GET ${url} failed: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  try {
    return {
      json: JSON.parse(text),
      etag: response.headers.get('etag'),
      lastModified: response.headers.get('last-modified'),
    }
  } catch (error) {
    throw new SourceError(
      source,
      'malformed',
      `GET ${url} is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
}

/** A short content hash, for feeds that carry no version of their own. */
export function contentVersion(json: unknown): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(json)).digest('hex').slice(0, 16)}`
}
