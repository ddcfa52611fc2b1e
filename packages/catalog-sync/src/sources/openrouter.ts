import { z } from 'zod'
import type { NormalizedPrice, RejectedPrice, SourceSnapshot } from '../types.ts'
import { UNIT_BY_USAGE_TYPE } from '../units.ts'
import { contentVersion, fetchJson, SourceError, type FetchOptions } from './fetch.ts'
import { resolveGenaiPricesModel, SOURCE_EPOCH } from './genai-prices.ts'
import { parsePrice } from './price-value.ts'

export const OPENROUTER_SOURCE = 'openrouter'
export const OPENROUTER_MODELS_URL = 'https://openrouter.ai/api/v1/models'

/** The part of OpenRouter's /api/v1/models answer we read; everything else may change freely. */
const priceField = z.union([z.string(), z.number()]).nullish()
export const openRouterModelsSchema = z.object({
  data: z.array(
    z.looseObject({
      id: z.string().min(1),
      pricing: z.looseObject({
        prompt: priceField,
        completion: priceField,
        request: priceField,
        image: priceField,
        web_search: priceField,
        internal_reasoning: priceField,
        input_cache_read: priceField,
        input_cache_write: priceField,
      }),
    }),
  ),
})
export type OpenRouterModels = z.infer<typeof openRouterModelsSchema>

/** OpenRouter pricing key → our usage type. Prices are per token, per request or per search already. */
const FIELDS: readonly { key: keyof OpenRouterModels['data'][number]['pricing']; usageType: string | null; required: boolean }[] = [
  { key: 'prompt', usageType: 'input', required: true },
  { key: 'completion', usageType: 'output', required: true },
  { key: 'input_cache_read', usageType: 'cache_read', required: false },
  { key: 'input_cache_write', usageType: 'cache_write', required: false },
  { key: 'internal_reasoning', usageType: 'reasoning', required: false },
  { key: 'request', usageType: 'requests', required: false },
  { key: 'web_search', usageType: 'web_searches', required: false },
  // Per input image: our usage vocabulary has no image count yet.
  { key: 'image', usageType: null, required: false },
]


/**
 * OpenRouter's model list as rows for provider `openrouter`: what a call routed through OpenRouter
 * costs. Model ids are OpenRouter's (`openai/gpt-4o`), matched to the genai-prices id of the same
 * OpenRouter model where there is one. Optional prices of "0" mean "not charged separately" (a
 * zero reasoning price would make reasoning free instead of billing it as output), so they add no
 * row; a required price that is missing, negative ("-1" on the auto router) or not a number rejects
 * the model with the reason.
 */
export function fromOpenRouter(input: unknown, version = contentVersion(input)): SourceSnapshot {
  const parsed = openRouterModelsSchema.safeParse(input)
  if (!parsed.success) throw new SourceError(OPENROUTER_SOURCE, 'schema', `unexpected /models shape: ${z.prettifyError(parsed.error)}`)
  const prices: NormalizedPrice[] = []
  const skipped: string[] = []
  const rejected: RejectedPrice[] = []
  const seen = new Set<string>()
  let models = 0
  for (const entry of [...parsed.data.data].sort((a, b) => a.id.localeCompare(b.id))) {
    const model = resolveGenaiPricesModel(entry.id, OPENROUTER_SOURCE)?.model ?? entry.id.trim().toLowerCase()
    if (seen.has(model)) {
      skipped.push(`openrouter/${entry.id}: alias of ${model}`)
      continue
    }
    const rows: NormalizedPrice[] = []
    const problems: RejectedPrice[] = []
    for (const field of FIELDS) {
      const raw = entry.pricing[field.key]
      if (!field.required && (raw === undefined || raw === null || raw === '' || raw === '0' || raw === 0)) continue
      const value = parsePrice(raw)
      if (!value.ok) {
        problems.push({ key: `openrouter/${entry.id}: ${field.key}`, reason: value.reason })
        continue
      }
      if (field.usageType === null) {
        skipped.push(`openrouter/${entry.id}: ${field.key}`)
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
    // A model with a bad price is refused whole: half a price list would under-bill.
    if (problems.length > 0) {
      rejected.push(...problems)
      continue
    }
    seen.add(model)
    if (rows.length > 0) {
      prices.push(...rows)
      models++
    }
  }
  return { source: OPENROUTER_SOURCE, sourceVersion: version, prices, models, skipped, rejected }
}

export async function fetchOpenRouter(url = OPENROUTER_MODELS_URL, options: FetchOptions = {}): Promise<SourceSnapshot> {
  const { json } = await fetchJson(OPENROUTER_SOURCE, url, options)
  return fromOpenRouter(json)
}
