/** One model call, as `recordUsage` takes it (see CONTRACT.graphql `UsageEventInput`). */
export interface UsageEvent {
  /** Idempotency key, unique per tenant forever: the provider's response id. 1-255 characters. */
  id: string
  /** The tenant's own reference for its customer. */
  customerId: string
  model: string
  /** Who was paid: openai, anthropic, google, openrouter, … Inferred from model when absent. */
  provider?: string | null
  /** When the call happened (ISO string or Date); defaults to the time of `record`. */
  timestamp?: string | Date
  /** ALL input tokens, cache reads and writes included. */
  inputTokens?: number | null
  /** ALL output tokens, reasoning included. */
  outputTokens?: number | null
  cacheReadTokens?: number | null
  cacheWriteTokens?: number | null
  reasoningTokens?: number | null
  units?: { unit: string; quantity: string }[] | null
  feature?: string | null
  /** Small labels. Never prompts or completions. */
  metadata?: Record<string, unknown> | null
  signature?: string | null
}

/** What a provider response says about a call: a usage event without the customer. */
export type MeteredUsage = Omit<UsageEvent, 'customerId' | 'signature'> & {
  id: string
  model: string
  timestamp: string
}

export type RecordStatus = 'RECORDED' | 'DUPLICATE' | 'REJECTED'

export interface UsageError {
  code: string
  message: string
  field: string | null
}

export interface PricedLine {
  usageType: string
  quantity: string
  unitPrice: string
  cost: string
  priceId: string
}

export interface RecordedEvent {
  id: string
  customerId: string
  model: string
  canonicalModel: string | null
  provider: string | null
  timestamp: string
  receivedAt: string
  status: 'PRICED' | 'UNPRICED'
  /** Exact decimal strings; never parse them into floats for money. */
  cost: string | null
  amount: string | null
  currency: string
  feature: string | null
  lines: PricedLine[]
}

export interface RecordResult {
  status: RecordStatus
  event: RecordedEvent | null
  error: UsageError | null
}

export interface RecordBatchResult {
  results: RecordResult[]
  recorded: number
  duplicates: number
  rejected: number
}

export type UsageDimension = 'MODEL' | 'PROVIDER' | 'FEATURE' | 'USAGE_TYPE' | 'DAY' | 'HOUR'

export interface UsageGroup {
  model: string | null
  provider: string | null
  feature: string | null
  usageType: string | null
  bucketStart: string | null
  events: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
}

export interface UsageSummary {
  customerId: string | null
  from: string
  to: string
  currency: string
  events: number
  unpricedEvents: number
  inputTokens: number
  outputTokens: number
  cost: string
  amount: string
  groups: UsageGroup[]
}

export interface UsageEventPage {
  events: RecordedEvent[]
  hasNextPage: boolean
  endCursor: string | null
}
