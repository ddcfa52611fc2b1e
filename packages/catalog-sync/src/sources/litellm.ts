import { z } from 'zod'
import type { NormalizedPrice, PriceTier, RejectedPrice, SourceSnapshot } from '../types.ts'
import { UNIT_BY_USAGE_TYPE } from '../units.ts'
import { contentVersion, fetchJson, SourceError, type FetchOptions } from './fetch.ts'
import { resolveGenaiPricesModel, SOURCE_EPOCH } from './genai-prices.ts'
import { parsePrice } from './price-value.ts'

export const LITELLM_SOURCE = 'litellm'
export const LITELLM_PRICES_URL = 'https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json'

/** One model entry: only `litellm_provider` is required; prices are JSON numbers, per token / second / …. */
const entrySchema = z.looseObject({ litellm_provider: z.string().min(1) })
export const litellmPricesSchema = z.record(z.string(), z.unknown())

/** LiteLLM price key → our usage type (prices already per token or per second). */
const BASE_FIELDS: Readonly<Record<string, string>> = {
  input_cost_per_token: 'input',
  output_cost_per_token: 'output',
  cache_read_input_token_cost: 'cache_read',
  cache_creation_input_token_cost: 'cache_write',
  cache_creation_input_token_cost_above_1hr: 'cache_write_1h_tokens',
  output_cost_per_reasoning_token: 'reasoning',
  input_cost_per_audio_token: 'input_audio_tokens',
  output_cost_per_audio_token: 'output_audio_tokens',
}
/** Long-context tiers: `<base key>_above_<n>k_tokens`. */
const TIER_KEY = /^(.+)_above_(\d+)k_tokens$/
/** Priced quantities our vocabulary has no usage type for: reported as skipped, never guessed. */
const PRICE_KEY = /(cost_per|_cost$|_cost_)/

/** LiteLLM provider names → genai-prices provider ids, so rows land on the same canonical model. */
const PROVIDERS: Readonly<Record<string, string>> = {
  openai: 'openai',
  text_completion_openai: 'openai',
  anthropic: 'anthropic',
  gemini: 'google',
  'vertex_ai-language-models': 'google',
  mistral: 'mistral',
  deepseek: 'deepseek',
  xai: 'x-ai',
  groq: 'groq',
  cohere: 'cohere',
  cohere_chat: 'cohere',
  bedrock: 'aws',
  bedrock_converse: 'aws',
  azure: 'azure',
  openrouter: 'openrouter',
  together_ai: 'together',
  fireworks_ai: 'fireworks',
  perplexity: 'perplexity',
  cerebras: 'cerebras',
}

interface Candidate {
  key: string
  provider: string
  model: string
  exact: boolean
  rows: NormalizedPrice[]
  problems: RejectedPrice[]
  skipped: string[]
}

function canonical(key: string, litellmProvider: string): { provider: string; model: string; exact: boolean } {
  const provider = PROVIDERS[litellmProvider] ?? litellmProvider.toLowerCase()
  const lower = key.trim().toLowerCase()
  const bare = lower.startsWith(`${litellmProvider.toLowerCase()}/`) ? lower.slice(litellmProvider.length + 1) : lower
  const resolved = resolveGenaiPricesModel(bare, provider)
  // Through a fallback provider (azure → openai) a match would price another provider's model.
  if (resolved && resolved.provider === provider) return { ...resolved, exact: resolved.model === bare }
  return { provider, model: bare, exact: true }
}

function entryRows(key: string, entry: Record<string, unknown>, target: { provider: string; model: string }): Pick<Candidate, 'rows' | 'problems' | 'skipped'> {
  const rows: NormalizedPrice[] = []
  const problems: RejectedPrice[] = []
  const skipped: string[] = []
  const tiers = new Map<string, PriceTier[]>()
  for (const [field, raw] of Object.entries(entry)) {
    const tier = TIER_KEY.exec(field)
    if (tier && BASE_FIELDS[tier[1]!]) {
      const value = parsePrice(raw)
      if (!value.ok) problems.push({ key: `${key}: ${field}`, reason: value.reason })
      else tiers.set(tier[1]!, [...(tiers.get(tier[1]!) ?? []), { start: Number(tier[2]) * 1000, unitPrice: value.unitPrice }])
    } else if (!BASE_FIELDS[field] && PRICE_KEY.test(field) && field !== 'input_cost_per_second') {
      if (raw !== 0 && raw !== null) skipped.push(`${key}: ${field}`)
    }
  }
  const mode = typeof entry.mode === 'string' ? entry.mode : ''
  const fields: [string, string][] = Object.entries(BASE_FIELDS)
  // Whisper-style models bill the input audio by the second.
  if (mode === 'audio_transcription') fields.push(['input_cost_per_second', 'input_audio_seconds'])
  else if (entry.input_cost_per_second !== undefined && entry.input_cost_per_second !== 0) skipped.push(`${key}: input_cost_per_second`)
  for (const [field, usageType] of fields) {
    if (!(field in entry)) continue
    const value = parsePrice(entry[field])
    if (!value.ok) {
      problems.push({ key: `${key}: ${field}`, reason: value.reason })
      continue
    }
    const fieldTiers = tiers.get(field)
    rows.push({
      provider: target.provider,
      model: target.model,
      usageType,
      unit: UNIT_BY_USAGE_TYPE.get(usageType)!.unit,
      unitPrice: value.unitPrice,
      currency: 'USD',
      tiers: fieldTiers ? [...fieldTiers].sort((a, b) => a.start - b.start) : null,
      timeWindow: null,
      effectiveFrom: SOURCE_EPOCH,
      effectiveTo: null,
    })
  }
  return { rows, problems, skipped }
}

/**
 * LiteLLM's model_prices_and_context_window.json as rows. Keys are matched to genai-prices'
 * canonical ids where the same provider knows the model (`gpt-4o-2024-08-06` → openai/gpt-4o);
 * when several keys land on one model the key named exactly like it wins and the others are
 * reported as aliases (a dated snapshot with a different price, like gpt-4o-2024-05-13, keeps its
 * own id because genai-prices keeps it apart). A model with any invalid price is rejected whole.
 */
export function fromLitellm(input: unknown, version = contentVersion(input)): SourceSnapshot {
  const parsed = litellmPricesSchema.safeParse(input)
  if (!parsed.success || Array.isArray(input)) throw new SourceError(LITELLM_SOURCE, 'schema', 'expected an object of model entries')
  const byModel = new Map<string, Candidate>()
  const skipped: string[] = []
  const rejected: RejectedPrice[] = []
  let entries = 0
  for (const key of Object.keys(parsed.data).sort()) {
    if (key === 'sample_spec') continue
    const entry = entrySchema.safeParse(parsed.data[key])
    if (!entry.success) {
      rejected.push({ key, reason: 'entry has no litellm_provider' })
      continue
    }
    entries++
    const target = canonical(key, entry.data.litellm_provider)
    const candidate: Candidate = { key, ...target, ...entryRows(key, entry.data, target) }
    if (candidate.problems.length > 0) {
      rejected.push(...candidate.problems)
      continue
    }
    skipped.push(...candidate.skipped)
    if (candidate.rows.length === 0) continue
    const id = `${target.provider}/${target.model}`
    const previous = byModel.get(id)
    if (!previous || (candidate.exact && !previous.exact)) {
      if (previous) skipped.push(`${previous.key}: alias of ${id}`)
      byModel.set(id, candidate)
    } else {
      skipped.push(`${key}: alias of ${id}`)
    }
  }
  if (entries === 0) throw new SourceError(LITELLM_SOURCE, 'schema', 'no model entries with a litellm_provider')
  const prices = [...byModel.values()].flatMap((candidate) => candidate.rows)
  return { source: LITELLM_SOURCE, sourceVersion: version, prices, models: byModel.size, skipped, rejected }
}

export async function fetchLitellm(url = LITELLM_PRICES_URL, options: FetchOptions = {}): Promise<SourceSnapshot> {
  const { json } = await fetchJson(LITELLM_SOURCE, url, options)
  return fromLitellm(json)
}
