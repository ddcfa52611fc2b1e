import { z } from 'zod'
import type { FeedIssue, NormalizedPrice, SourceSnapshot } from '../types.ts'
import { UNIT_BY_USAGE_TYPE } from '../units.ts'
import { contentVersion, fetchJson, SourceError, type FetchOptions } from './fetch.ts'
import { resolveGenaiPricesModel, SOURCE_EPOCH } from './genai-prices.ts'
import { modelKey } from '../model-key.ts'
import { parsePrice, rawValueText } from './price-value.ts'

export const OPENROUTER_SOURCE = 'openrouter'
export const OPENROUTER_MODELS_URL = 'https://openrouter.ai/api/v1/models'

/**
 * The part of OpenRouter's /api/v1/models answer we read; everything else may change freely. Price
 * values are checked one by one (parsePrice), so a malformed value rejects its model, never the feed.
 */
const openRouterModelsSchema = z.object({
  data: z.array(
    z.looseObject({
      id: z.string().min(1),
      pricing: z.record(z.string(), z.unknown()),
      architecture: z.unknown().optional(),
    }),
  ),
})
/** OpenRouter pricing key → our usage type. Prices are per token, per request, per search or per image already. */
const FIELDS: readonly { key: string; usageType: string; required: boolean }[] = [
  { key: 'prompt', usageType: 'input', required: true },
  { key: 'completion', usageType: 'output', required: true },
  { key: 'input_cache_read', usageType: 'cache_read', required: false },
  { key: 'input_cache_write', usageType: 'cache_write', required: false },
  { key: 'internal_reasoning', usageType: 'reasoning', required: false },
  { key: 'request', usageType: 'requests', required: false },
  { key: 'web_search', usageType: 'web_searches', required: false },
  // Per input image (OpenRouter's `image`), not per image token.
  { key: 'image', usageType: 'input_images', required: false },
]
const KNOWN_FIELDS = new Set(FIELDS.map((f) => f.key))

const isZero = (raw: unknown) => raw === undefined || raw === null || raw === '' || raw === '0' || raw === 0

/** An embedding model answers vectors, not tokens: its completion price of 0 is no output price at all. */
function isEmbedding(architecture: unknown): boolean {
  if (typeof architecture !== 'object' || architecture === null) return false
  const { output_modalities: outputs, modality } = architecture as { output_modalities?: unknown; modality?: unknown }
  if (Array.isArray(outputs) && outputs.includes('embeddings')) return true
  return typeof modality === 'string' && modality.endsWith('->embeddings')
}

/**
 * OpenRouter's model list as rows for provider `openrouter`: what a call routed through OpenRouter
 * costs. Model ids are OpenRouter's (`openai/gpt-4o`), matched to the genai-prices id of the same
 * OpenRouter model where there is one. Optional prices of "0" mean "not charged separately" (a
 * zero reasoning price would make reasoning free instead of billing it as output), so they add no
 * row; nor does an embedding model's completion price of 0. A price that is missing, negative
 * ("-1": variable, on the auto router) or not a number rejects the model with the reason, and the
 * model is listed as unreadable so the sync keeps the price in force for it. A priced key we have
 * no usage type for is skipped with a trace.
 */
export function fromOpenRouter(input: unknown, version = contentVersion(input)): SourceSnapshot {
  const parsed = openRouterModelsSchema.safeParse(input)
  if (!parsed.success)
    throw new SourceError(OPENROUTER_SOURCE, 'schema', `unexpected /models shape: ${z.prettifyError(parsed.error)}`)
  const prices: NormalizedPrice[] = []
  const skipped: FeedIssue[] = []
  const rejected: FeedIssue[] = []
  const unreadable: { provider: string; model: string }[] = []
  const seen = new Set<string>()
  let models = 0
  for (const entry of [...parsed.data.data].sort((a, b) => a.id.localeCompare(b.id))) {
    const model = resolveGenaiPricesModel(entry.id, OPENROUTER_SOURCE)?.model ?? entry.id.trim().toLowerCase()
    if (seen.has(model)) {
      skipped.push({
        model: entry.id,
        field: null,
        rawValue: null,
        reason: `alias of ${modelKey(OPENROUTER_SOURCE, model)}, whose first entry is used`,
      })
      continue
    }
    seen.add(model)
    const rows: NormalizedPrice[] = []
    const problems: FeedIssue[] = []
    const embedding = isEmbedding(entry.architecture)
    for (const field of FIELDS) {
      const raw = entry.pricing[field.key]
      if (isZero(raw) && (!field.required || (embedding && field.usageType === 'output'))) continue
      const value = parsePrice(raw)
      if (!value.ok) {
        problems.push({ model: entry.id, field: field.key, rawValue: rawValueText(raw), reason: value.reason })
        continue
      }
      rows.push({
        provider: OPENROUTER_SOURCE,
        model,
        usageType: field.usageType,
        unit: UNIT_BY_USAGE_TYPE.get(field.usageType)!.unit,
        unitPrice: value.unitPrice,
        currency: 'USD',
        tiers: null,
        timeWindow: null,
        effectiveFrom: SOURCE_EPOCH,
        effectiveTo: null,
      })
    }
    for (const [key, raw] of Object.entries(entry.pricing)) {
      if (KNOWN_FIELDS.has(key) || isZero(raw)) continue
      skipped.push({
        model: entry.id,
        field: key,
        rawValue: rawValueText(raw),
        reason: `unknown unit: no usage type for ${key}`,
      })
    }
    // A model with a bad price is refused whole (half a price list would under-bill), and kept as it was.
    if (problems.length > 0) {
      rejected.push(...problems)
      unreadable.push({ provider: OPENROUTER_SOURCE, model })
      continue
    }
    if (rows.length > 0) {
      prices.push(...rows)
      models++
    }
  }
  return {
    source: OPENROUTER_SOURCE,
    sourceVersion: version,
    prices,
    models,
    skipped,
    rejected,
    unreadable,
    undatedFromObservation: true,
  }
}

export async function fetchOpenRouter(
  url = OPENROUTER_MODELS_URL,
  options: FetchOptions = {},
): Promise<SourceSnapshot> {
  const { json } = await fetchJson(OPENROUTER_SOURCE, url, options)
  return fromOpenRouter(json)
}
