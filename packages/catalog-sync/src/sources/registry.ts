import { readFile } from 'node:fs/promises'
import type { SourceSnapshot } from '../types.ts'
import { SourceError, type FetchOptions } from './fetch.ts'
import { fetchGenaiPrices, fromGenaiPricesJson, GENAI_PRICES_DATA_URL, loadBundledGenaiPrices } from './genai-prices.ts'
import { fetchLitellm, fromLitellm, LITELLM_PRICES_URL } from './litellm.ts'
import { fetchOpenRouter, fromOpenRouter, OPENROUTER_MODELS_URL } from './openrouter.ts'

/** Public sources by name; `genai-prices-remote` is the same source as the bundled data, newer. */
export const PUBLIC_SOURCES = ['genai-prices', 'genai-prices-remote', 'openrouter', 'litellm'] as const
export type PublicSourceName = (typeof PUBLIC_SOURCES)[number]

export const DEFAULT_SOURCE_URLS: Readonly<Record<Exclude<PublicSourceName, 'genai-prices'>, string>> = {
  'genai-prices-remote': GENAI_PRICES_DATA_URL,
  openrouter: OPENROUTER_MODELS_URL,
  litellm: LITELLM_PRICES_URL,
}

/** The environment variable naming where each fetched source is read from (the API's and the CLI's alike). */
export const SOURCE_URL_ENV: Readonly<Record<Exclude<PublicSourceName, 'genai-prices'>, string>> = {
  'genai-prices-remote': 'GENAI_PRICES_URL',
  openrouter: 'OPENROUTER_MODELS_URL',
  litellm: 'LITELLM_PRICES_URL',
}

export function isPublicSource(name: string): name is PublicSourceName {
  return (PUBLIC_SOURCES as readonly string[]).includes(name)
}

/**
 * Reads one public source: the bundled data, a URL (http/https) or a local file in the source's
 * wire format. Every failure is a SourceError.
 */
export async function loadPublicSource(
  name: PublicSourceName,
  location?: string | null,
  options: FetchOptions = {},
): Promise<SourceSnapshot> {
  if (name === 'genai-prices' && !location) return loadBundledGenaiPrices()
  const where = location || DEFAULT_SOURCE_URLS[name as Exclude<PublicSourceName, 'genai-prices'>]
  if (!/^https?:\/\//.test(where)) {
    let json: unknown
    try {
      json = JSON.parse(await readFile(where, 'utf8'))
    } catch (error) {
      throw new SourceError(
        name,
        'malformed',
        `cannot read ${where}: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
    if (name === 'openrouter') return fromOpenRouter(json)
    if (name === 'litellm') return fromLitellm(json)
    return fromGenaiPricesJson(json)
  }
  if (name === 'openrouter') return fetchOpenRouter(where, options)
  if (name === 'litellm') return fetchLitellm(where, options)
  return fetchGenaiPrices(where, options)
}

/** Retries a load with exponential backoff; the last error is rethrown. */
export async function withRetry<T>(
  run: () => Promise<T>,
  options: {
    attempts?: number
    baseMs?: number
    maxMs?: number
    onRetry?: (error: unknown, attempt: number, delayMs: number) => void
    sleep?: (ms: number) => Promise<void>
  } = {},
): Promise<T> {
  const attempts = options.attempts ?? 3
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (error) {
      // A schema change will not fix itself in a few seconds: retrying only delays the report.
      if (attempt >= attempts || (error instanceof SourceError && error.kind === 'schema')) throw error
      const delayMs = Math.min(options.maxMs ?? 30_000, (options.baseMs ?? 1_000) * 2 ** (attempt - 1))
      options.onRetry?.(error, attempt, delayMs)
      await sleep(delayMs)
    }
  }
}
