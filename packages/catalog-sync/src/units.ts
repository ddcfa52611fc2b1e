/**
 * The usage vocabulary shared by the catalog and the pricing engine.
 *
 * Each usage key is a quantity an event can report. Its dimensions place it in a lattice: a key
 * whose dimensions include all of another's is a part of it (cache_read_tokens is part of
 * input_tokens; cache_audio_read_tokens is part of both cache_read_tokens and input_audio_tokens).
 * Prices are charged on the exclusive part of each priced key, so no token is billed twice. The
 * dimensions follow the unit registry of @pydantic/genai-prices, whose data we load; that package
 * does not export the registry, so the subset its price data uses is written out here.
 */
export interface UsageUnit {
  /** The quantity's name in an event (`units[].unit`) or the field it comes from. */
  usageKey: string
  /** What a priced line and a catalog row call it. */
  usageType: string
  /** The unit one catalog `unit_price` is for. */
  unit: 'token' | 'request' | 'search' | 'second' | 'page' | 'message' | 'image' | 'pixel'
  /**
   * The genai-prices price key, whose value is the price of `per` units. Units genai-prices does not
   * price (images, pixels: it prices images as tokens) get a key of the same form that its data
   * never uses, so feeds that price them per unit (OpenRouter, LiteLLM) still have a usage type.
   */
  priceKey: string
  per: number
  dimensions: Readonly<Record<string, string>>
  /** The dedicated UsageEventInput field, when the quantity has one. */
  eventField?: 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens' | 'reasoningTokens'
}

const tokens = (direction: 'input' | 'output', extra: Record<string, string> = {}) => ({
  direction,
  family: 'tokens',
  ...extra,
})

export const USAGE_UNITS: readonly UsageUnit[] = [
  {
    usageKey: 'input_tokens',
    usageType: 'input',
    unit: 'token',
    priceKey: 'input_mtok',
    per: 1e6,
    dimensions: tokens('input'),
    eventField: 'inputTokens',
  },
  {
    usageKey: 'output_tokens',
    usageType: 'output',
    unit: 'token',
    priceKey: 'output_mtok',
    per: 1e6,
    dimensions: tokens('output'),
    eventField: 'outputTokens',
  },
  {
    usageKey: 'cache_read_tokens',
    usageType: 'cache_read',
    unit: 'token',
    priceKey: 'cache_read_mtok',
    per: 1e6,
    dimensions: tokens('input', { token_type: 'cache_read' }),
    eventField: 'cacheReadTokens',
  },
  {
    usageKey: 'cache_write_tokens',
    usageType: 'cache_write',
    unit: 'token',
    priceKey: 'cache_write_mtok',
    per: 1e6,
    dimensions: tokens('input', { token_type: 'cache_write' }),
    eventField: 'cacheWriteTokens',
  },
  {
    usageKey: 'output_reasoning_tokens',
    usageType: 'reasoning',
    unit: 'token',
    priceKey: 'output_reasoning_mtok',
    per: 1e6,
    dimensions: tokens('output', { token_type: 'reasoning' }),
    eventField: 'reasoningTokens',
  },
  {
    usageKey: 'cache_write_1h_tokens',
    usageType: 'cache_write_1h_tokens',
    unit: 'token',
    priceKey: 'cache_write_1h_mtok',
    per: 1e6,
    dimensions: tokens('input', { token_type: 'cache_write', cache_ttl: '1h' }),
  },
  {
    usageKey: 'input_audio_tokens',
    usageType: 'input_audio_tokens',
    unit: 'token',
    priceKey: 'input_audio_mtok',
    per: 1e6,
    dimensions: tokens('input', { modality: 'audio' }),
  },
  {
    usageKey: 'cache_audio_read_tokens',
    usageType: 'cache_audio_read_tokens',
    unit: 'token',
    priceKey: 'cache_audio_read_mtok',
    per: 1e6,
    dimensions: tokens('input', { modality: 'audio', token_type: 'cache_read' }),
  },
  {
    usageKey: 'input_image_tokens',
    usageType: 'input_image_tokens',
    unit: 'token',
    priceKey: 'input_image_mtok',
    per: 1e6,
    dimensions: tokens('input', { modality: 'image' }),
  },
  {
    usageKey: 'cache_image_read_tokens',
    usageType: 'cache_image_read_tokens',
    unit: 'token',
    priceKey: 'cache_image_read_mtok',
    per: 1e6,
    dimensions: tokens('input', { modality: 'image', token_type: 'cache_read' }),
  },
  {
    usageKey: 'input_video_tokens',
    usageType: 'input_video_tokens',
    unit: 'token',
    priceKey: 'input_video_mtok',
    per: 1e6,
    dimensions: tokens('input', { modality: 'video' }),
  },
  {
    usageKey: 'output_audio_tokens',
    usageType: 'output_audio_tokens',
    unit: 'token',
    priceKey: 'output_audio_mtok',
    per: 1e6,
    dimensions: tokens('output', { modality: 'audio' }),
  },
  {
    usageKey: 'output_image_tokens',
    usageType: 'output_image_tokens',
    unit: 'token',
    priceKey: 'output_image_mtok',
    per: 1e6,
    dimensions: tokens('output', { modality: 'image' }),
  },
  {
    usageKey: 'output_video_tokens',
    usageType: 'output_video_tokens',
    unit: 'token',
    priceKey: 'output_video_mtok',
    per: 1e6,
    dimensions: tokens('output', { modality: 'video' }),
  },
  {
    usageKey: 'output_citation_tokens',
    usageType: 'output_citation_tokens',
    unit: 'token',
    priceKey: 'output_citation_mtok',
    per: 1e6,
    dimensions: tokens('output', { token_type: 'citation' }),
  },
  {
    usageKey: 'requests',
    usageType: 'requests',
    unit: 'request',
    priceKey: 'requests_kcount',
    per: 1e3,
    dimensions: { family: 'requests' },
  },
  {
    usageKey: 'web_searches',
    usageType: 'web_searches',
    unit: 'search',
    priceKey: 'web_searches_kcount',
    per: 1e3,
    dimensions: { family: 'tool_calls', tool_type: 'web_search' },
  },
  {
    usageKey: 'storage_searches',
    usageType: 'storage_searches',
    unit: 'search',
    priceKey: 'storage_searches_kcount',
    per: 1e3,
    dimensions: { family: 'tool_calls', tool_type: 'storage_search' },
  },
  {
    usageKey: 'audio_seconds',
    usageType: 'audio_seconds',
    unit: 'second',
    priceKey: 'audio_hours',
    per: 3600,
    dimensions: { family: 'durations', modality: 'audio' },
  },
  {
    usageKey: 'input_audio_seconds',
    usageType: 'input_audio_seconds',
    unit: 'second',
    priceKey: 'input_audio_hours',
    per: 3600,
    dimensions: { direction: 'input', family: 'durations', modality: 'audio' },
  },
  {
    usageKey: 'input_document_pages',
    usageType: 'input_document_pages',
    unit: 'page',
    priceKey: 'input_document_kpages',
    per: 1e3,
    dimensions: { direction: 'input', family: 'document_pages' },
  },
  {
    usageKey: 'input_annotated_document_pages',
    usageType: 'input_annotated_document_pages',
    unit: 'page',
    priceKey: 'input_annotated_document_kpages',
    per: 1e3,
    dimensions: { direction: 'input', family: 'document_pages', page_type: 'annotated' },
  },
  {
    usageKey: 'output_audio_seconds',
    usageType: 'output_audio_seconds',
    unit: 'second',
    priceKey: 'output_audio_hours',
    per: 3600,
    dimensions: { direction: 'output', family: 'durations', modality: 'audio' },
  },
  // Counted images, not image tokens: a separate family, so neither is a part of the other.
  {
    usageKey: 'input_images',
    usageType: 'input_images',
    unit: 'image',
    priceKey: 'input_images_count',
    per: 1,
    dimensions: { direction: 'input', family: 'images' },
  },
  {
    usageKey: 'output_images',
    usageType: 'output_images',
    unit: 'image',
    priceKey: 'output_images_count',
    per: 1,
    dimensions: { direction: 'output', family: 'images' },
  },
  // Pixels of generated images (width × height × images), how DALL·E 2/3 are priced.
  {
    usageKey: 'output_image_pixels',
    usageType: 'output_image_pixels',
    unit: 'pixel',
    priceKey: 'output_image_pixels_count',
    per: 1,
    dimensions: { direction: 'output', family: 'pixels' },
  },
  {
    usageKey: 'input_text_messages',
    usageType: 'input_text_messages',
    unit: 'message',
    priceKey: 'input_text_messages_kcount',
    per: 1e3,
    dimensions: { direction: 'input', family: 'messages', modality: 'text' },
  },
]

export const UNIT_BY_PRICE_KEY: ReadonlyMap<string, UsageUnit> = new Map(USAGE_UNITS.map((u) => [u.priceKey, u]))
export const UNIT_BY_USAGE_TYPE: ReadonlyMap<string, UsageUnit> = new Map(USAGE_UNITS.map((u) => [u.usageType, u]))
export const UNIT_BY_USAGE_KEY: ReadonlyMap<string, UsageUnit> = new Map(USAGE_UNITS.map((u) => [u.usageKey, u]))

/** Names accepted in `UsageEventInput.units`: every quantity without a dedicated field. */
export const EXTRA_UNIT_NAMES: ReadonlySet<string> = new Set(
  USAGE_UNITS.filter((u) => !u.eventField).map((u) => u.usageKey),
)

/** True when `part` is a part of `whole`: its dimensions include all of whole's (and more). */
export function isPartOf(part: UsageUnit, whole: UsageUnit): boolean {
  if (part === whole) return false
  return Object.entries(whole.dimensions).every(([k, v]) => part.dimensions[k] === v)
}

/** Token directions, for summaries that split lines into input and output tokens. */
export function directionOf(usageType: string): 'input' | 'output' | undefined {
  const unit = UNIT_BY_USAGE_TYPE.get(usageType)
  if (!unit || unit.unit !== 'token') return undefined
  return unit.dimensions.direction as 'input' | 'output'
}
