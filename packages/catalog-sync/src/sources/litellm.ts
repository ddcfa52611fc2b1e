import { z } from 'zod'
import { Decimal } from 'decimal.js'
import type { FeedIssue, NormalizedPrice, PriceTier, SourceSnapshot } from '../types.ts'
import { UNIT_BY_USAGE_TYPE } from '../units.ts'
import { contentVersion, fetchJson, SourceError, type FetchOptions } from './fetch.ts'
import { resolveGenaiPricesModel, SOURCE_EPOCH } from './genai-prices.ts'
import { parsePrice, rawValueText, type PriceValue } from './price-value.ts'

export const LITELLM_SOURCE = 'litellm'
export const LITELLM_PRICES_URL =
  'https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json'

/** One model entry: only `litellm_provider` is required; prices are JSON numbers, per token / second / …. */
const entrySchema = z.looseObject({ litellm_provider: z.string().min(1) })
const litellmPricesSchema = z.record(z.string(), z.unknown())

/** LiteLLM per-token price keys → our usage type; these may carry long-context tiers. */
const TOKEN_FIELDS: Readonly<Record<string, string>> = {
  input_cost_per_token: 'input',
  output_cost_per_token: 'output',
  cache_read_input_token_cost: 'cache_read',
  cache_creation_input_token_cost: 'cache_write',
  cache_creation_input_token_cost_above_1hr: 'cache_write_1h_tokens',
  output_cost_per_reasoning_token: 'reasoning',
  input_cost_per_audio_token: 'input_audio_tokens',
  output_cost_per_audio_token: 'output_audio_tokens',
}
/**
 * Prices per counted unit → our usage type; 0 means "not charged separately" and adds no row.
 * `input_cost_per_pixel` is what LiteLLM charges per pixel of each generated image (DALL·E).
 */
const UNIT_FIELDS: Readonly<Record<string, string>> = {
  input_cost_per_pixel: 'output_image_pixels',
  output_cost_per_image: 'output_images',
  input_cost_per_image: 'input_images',
  input_cost_per_request: 'requests',
  input_cost_per_audio_per_second: 'input_audio_seconds',
  output_cost_per_audio_per_second: 'output_audio_seconds',
}
/** Per-second prices whose meaning depends on the entry's mode: transcription input, speech output. */
const SECOND_FIELDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  audio_transcription: { input_cost_per_second: 'input_audio_seconds' },
  audio_speech: { output_cost_per_second: 'output_audio_seconds' },
}
/** Web search per query, by search context size; one row only when every size costs the same. */
const SEARCH_FIELD = 'search_context_cost_per_query'
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
  problems: FeedIssue[]
  skipped: FeedIssue[]
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

const isZero = (raw: unknown) => raw === 0 || raw === null

function entryRows(
  key: string,
  entry: Record<string, unknown>,
  target: { provider: string; model: string },
): Pick<Candidate, 'rows' | 'problems' | 'skipped'> {
  const rows: NormalizedPrice[] = []
  const problems: FeedIssue[] = []
  const skipped: FeedIssue[] = []
  const issue = (field: string, reason: string): FeedIssue => ({
    model: key,
    field,
    rawValue: rawValueText(entry[field]),
    reason,
  })
  const mode = typeof entry.mode === 'string' ? entry.mode : ''
  const tiers = new Map<string, PriceTier[]>()
  const fields: [string, string][] = []
  for (const [field, raw] of Object.entries(entry)) {
    const tier = TIER_KEY.exec(field)
    const usageType = TOKEN_FIELDS[field] ?? UNIT_FIELDS[field] ?? SECOND_FIELDS[mode]?.[field]
    if (tier && TOKEN_FIELDS[tier[1]!]) {
      const value = parsePrice(raw)
      if (!value.ok) problems.push(issue(field, value.reason))
      else
        tiers.set(tier[1]!, [
          ...(tiers.get(tier[1]!) ?? []),
          { start: Number(tier[2]) * 1000, unitPrice: value.unitPrice },
        ])
    } else if (usageType) {
      // Optional units at 0 are not charged separately; an embedding's output price of 0 is none at all.
      if (!TOKEN_FIELDS[field] && isZero(raw)) continue
      if (field === 'output_cost_per_token' && mode === 'embedding' && isZero(raw)) continue
      fields.push([field, usageType])
    } else if (field === SEARCH_FIELD) {
      const search = searchPrice(raw)
      if (search.kind === 'row') fields.push([field, 'web_searches'])
      else if (search.kind === 'problem') problems.push(issue(field, search.reason))
      else if (search.kind === 'skip') skipped.push(issue(field, search.reason))
    } else if (PRICE_KEY.test(field) && !isZero(raw)) {
      skipped.push(issue(field, `unknown unit: no usage type for ${field}`))
    }
  }
  const seen = new Set<string>()
  for (const [field, usageType] of fields) {
    if (seen.has(usageType)) {
      skipped.push(issue(field, `a second price for ${usageType} in one entry; the first is used`))
      continue
    }
    const search = field === SEARCH_FIELD ? searchPrice(entry[field]) : null
    const value: PriceValue = search
      ? search.kind === 'row'
        ? { ok: true, unitPrice: search.unitPrice }
        : { ok: false, reason: 'no single web search price' }
      : parsePrice(entry[field])
    if (!value.ok) {
      problems.push(issue(field, value.reason))
      continue
    }
    seen.add(usageType)
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

type SearchPrice =
  | { kind: 'row'; unitPrice: string }
  | { kind: 'none' }
  | { kind: 'skip'; reason: string }
  | { kind: 'problem'; reason: string }

/** `search_context_cost_per_query: { search_context_size_low, …_medium, …_high }`, per query. */
function searchPrice(raw: unknown): SearchPrice {
  if (raw === null || raw === undefined) return { kind: 'none' }
  if (typeof raw !== 'object' || Array.isArray(raw))
    return { kind: 'problem', reason: 'expected an object of prices by search context size' }
  const values = Object.values(raw as Record<string, unknown>).map(parsePrice)
  const bad = values.find((v) => !v.ok)
  if (bad && !bad.ok) return { kind: 'problem', reason: bad.reason }
  const prices = new Set(values.map((v) => new Decimal((v as { unitPrice: string }).unitPrice).toFixed()))
  if (prices.size === 0 || (prices.size === 1 && prices.has('0'))) return { kind: 'none' }
  if (prices.size > 1)
    return { kind: 'skip', reason: 'web search price depends on the search context size, which usage does not report' }
  return { kind: 'row', unitPrice: [...prices][0]! }
}

/**
 * LiteLLM's model_prices_and_context_window.json as rows. Keys are matched to genai-prices'
 * canonical ids where the same provider knows the model (`gpt-4o-2024-08-06` → openai/gpt-4o);
 * when several keys land on one model the key named exactly like it wins and the others are
 * reported as aliases (a dated snapshot with a different price, like gpt-4o-2024-05-13, keeps its
 * own id because genai-prices keeps it apart). A model with any invalid price is rejected whole and
 * listed as unreadable, so the sync keeps its price in force; every skip is reported with its reason.
 */
export function fromLitellm(input: unknown, version = contentVersion(input)): SourceSnapshot {
  const parsed = litellmPricesSchema.safeParse(input)
  if (!parsed.success || Array.isArray(input))
    throw new SourceError(LITELLM_SOURCE, 'schema', 'expected an object of model entries')
  const byModel = new Map<string, Candidate>()
  const skipped: FeedIssue[] = []
  const rejected: FeedIssue[] = []
  const unreadable: { provider?: string; model: string }[] = []
  let entries = 0
  for (const key of Object.keys(parsed.data).sort()) {
    if (key === 'sample_spec') {
      skipped.push({ model: key, field: null, rawValue: null, reason: 'documentation entry, not a model' })
      continue
    }
    const entry = entrySchema.safeParse(parsed.data[key])
    if (!entry.success) {
      const raw = parsed.data[key]
      const provider =
        typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).litellm_provider : undefined
      rejected.push({
        model: key,
        field: 'litellm_provider',
        rawValue: rawValueText(provider),
        reason: 'entry has no litellm_provider',
      })
      // Without a provider the model is not known for sure: keep every provider's rows of that name.
      const resolved = resolveGenaiPricesModel(key)
      unreadable.push({ model: key.trim().toLowerCase() }, ...(resolved ? [resolved] : []))
      continue
    }
    entries++
    const target = canonical(key, entry.data.litellm_provider)
    const candidate: Candidate = { key, ...target, ...entryRows(key, entry.data, target) }
    skipped.push(...candidate.skipped)
    if (candidate.problems.length > 0) {
      rejected.push(...candidate.problems)
      unreadable.push({ provider: target.provider, model: target.model })
      continue
    }
    if (candidate.rows.length === 0) continue
    const id = `${target.provider}/${target.model}`
    const previous = byModel.get(id)
    const aliasOf = (winner: Candidate) =>
      winner.exact ? `alias of ${id}, whose own entry is used` : `alias of ${id}, priced by entry ${winner.key}`
    if (!previous || (candidate.exact && !previous.exact)) {
      if (previous) skipped.push({ model: previous.key, field: null, rawValue: null, reason: aliasOf(candidate) })
      byModel.set(id, candidate)
    } else {
      skipped.push({ model: key, field: null, rawValue: null, reason: aliasOf(previous) })
    }
  }
  if (entries === 0) throw new SourceError(LITELLM_SOURCE, 'schema', 'no model entries with a litellm_provider')
  const prices = [...byModel.values()].flatMap((candidate) => candidate.rows)
  return {
    source: LITELLM_SOURCE,
    sourceVersion: version,
    prices,
    models: byModel.size,
    skipped,
    rejected,
    unreadable,
    undatedFromObservation: true,
  }
}

export async function fetchLitellm(url = LITELLM_PRICES_URL, options: FetchOptions = {}): Promise<SourceSnapshot> {
  const { json } = await fetchJson(LITELLM_SOURCE, url, options)
  return fromLitellm(json)
}
