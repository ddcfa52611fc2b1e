import type { CatalogPrice } from '../catalog/types.ts'
import { AMOUNT_SCALE, Decimal } from '../money/decimal.ts'
import type { Plan, ReportedUsage } from '../pricing/engine.ts'
import { billAtPlan, priceEvent, unpricedMessage, type UnpricedReason } from '../pricing/price-event.ts'
import { rateEvent } from '../rating/rate.ts'
import type { RatingPlan } from '../rating/rules.ts'
import type { GatewayProvider } from './db-types.ts'

/**
 * The most a gateway call can be billed, worked out from the request alone (no tokenizer, no I/O),
 * so a hard budget can hold it before the call reaches the provider.
 *
 * Input tokens: at most the UTF-8 bytes of the whole JSON request body, plus a fixed allowance.
 *  - Every ordinary token of these providers' subword tokenizers stands for at least one byte of
 *    the text it encodes: OpenAI's byte-level BPE (tiktoken's cl100k_base / o200k_base) merges
 *    byte sequences, so a token is ≥ 1 byte; a byte-fallback tokenizer emits at most one token per
 *    byte. So the text of the messages, system prompt, tools and response schema cannot take more
 *    tokens than it has bytes — and the body also counts the JSON keys, quotes and punctuation
 *    around it, which the provider's own chat template replaces with a few special tokens per
 *    message (every message carries ≥ 20 bytes of JSON syntax for them).
 *  - REQUEST_OVERHEAD_TOKENS covers what the provider adds on its own: its chat template and the
 *    tool-use system prompt Anthropic documents (a few hundred tokens when `tools` is given).
 *  - A non-text part given by reference (an image URL, a file id, audio) costs tokens its bytes in
 *    the request do not show: each one adds ATTACHMENT_TOKENS (Anthropic scales an image down to
 *    about 1,600 tokens; OpenAI's high-detail tiles for gpt-4o stay under 1,500). Inline (base64)
 *    attachments are already far larger in bytes than in tokens. Not a proof for every model
 *    (gpt-4o-mini bills an image as many more, cheaper, tokens; a PDF by URL may have many
 *    pages): a call that goes over its estimate is still billed what it used — the reservation
 *    settles at the real amount.
 *
 * Output tokens: the request's own cap — OpenAI `max_completion_tokens` (or the legacy
 * `max_tokens`), times `n` choices; Anthropic `max_tokens` (required, and extended thinking
 * counts inside it). Reasoning tokens count inside these caps. Absent a cap, `defaultMaxOutputTokens`
 * (GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS), which the gateway then sends as the cap (see routes.ts).
 *
 * Tool calls billed per use: an Anthropic web search tool bills each search; `max_uses` bounds
 * them, else WEB_SEARCH_DEFAULT_USES is assumed.
 */
export const REQUEST_OVERHEAD_TOKENS = 1024
export const ATTACHMENT_TOKENS = 2000
export const WEB_SEARCH_DEFAULT_USES = 10

export interface CallBound {
  /** Upper bound on the call's input tokens (cached ones included). */
  inputTokens: number
  /** Upper bound on its output tokens (reasoning included). */
  outputTokens: number
  /** Upper bound on billed web searches. */
  webSearches: number
  /** The request set no output cap: `outputTokens` comes from the configured default. */
  defaultedOutputCap: boolean
}

const NON_TEXT_PART = new Set(['image_url', 'image', 'input_audio', 'file', 'document', 'input_image', 'input_file'])

const positiveInt = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : null

/** Content parts that are not text, anywhere in the messages (and Anthropic tool results). */
function countNonTextParts(value: unknown, depth = 0): number {
  if (depth > 8 || !value || typeof value !== 'object') return 0
  if (Array.isArray(value)) return value.reduce<number>((n, v) => n + countNonTextParts(v, depth + 1), 0)
  const record = value as Record<string, unknown>
  let n = typeof record.type === 'string' && NON_TEXT_PART.has(record.type) ? 1 : 0
  for (const key of ['content', 'messages']) if (key in record) n += countNonTextParts(record[key], depth + 1)
  return n
}

export function boundCall(
  provider: GatewayProvider,
  body: Record<string, unknown>,
  options: { defaultMaxOutputTokens: number },
): CallBound {
  const bytes = Buffer.byteLength(JSON.stringify(body), 'utf8')
  const inputTokens = bytes + REQUEST_OVERHEAD_TOKENS + countNonTextParts(body.messages) * ATTACHMENT_TOKENS

  let cap: number | null
  let choices = 1
  let webSearches = 0
  if (provider === 'openai') {
    const caps = [positiveInt(body.max_completion_tokens), positiveInt(body.max_tokens)].filter(
      (c): c is number => c !== null,
    )
    cap = caps.length ? Math.max(...caps) : null
    choices = positiveInt(body.n) ?? 1
  } else {
    cap = positiveInt(body.max_tokens)
    for (const tool of Array.isArray(body.tools) ? body.tools : []) {
      const t = tool as { type?: unknown; max_uses?: unknown } | null
      if (t && typeof t.type === 'string' && t.type.startsWith('web_search'))
        webSearches += positiveInt(t.max_uses) ?? WEB_SEARCH_DEFAULT_USES
    }
  }
  return {
    inputTokens,
    outputTokens: (cap ?? options.defaultMaxOutputTokens) * choices,
    webSearches,
    defaultedOutputCap: cap === null,
  }
}

/** A call the catalog cannot price in full (priceEvent's rule): it could not be held against a hard budget. */
export class UnpricedCallError extends Error {
  constructor(readonly reason: UnpricedReason) {
    super(unpricedMessage(reason))
  }
}

/**
 * The most `bound` can be billed at these catalog rows under this plan, priced by the same rule
 * as ingest (priceEvent): a usage type the call may use and no row prices throws UnpricedCallError
 * rather than counting as free. Which input tokens end up cached (read or written) and which output tokens are
 * reasoning is only known afterwards, and a cache write can cost more than plain input: the price
 * is linear in how the input (and the output) splits, so its maximum is at one of the extremes —
 * all plain, all cache reads, all cache writes (× output all plain or all reasoning) — and the
 * largest of those is the estimate. Long-context tiers switch on total input tokens, which only
 * grow with the bound.
 */
/**
 * A markup / margin, or a rating plan with the period's meters as they stand (rule id → quantity so
 * far): the call is rated against a copy, as if it were the next event recorded.
 */
export type EstimatePlan = Plan | { rating: RatingPlan; model: string; counters: ReadonlyMap<string, Decimal> }

export function worstCaseAmount(
  bound: CallBound,
  prices: readonly CatalogPrice[] | null,
  plan: EstimatePlan | null,
): Decimal {
  const input = new Decimal(bound.inputTokens)
  const output = new Decimal(bound.outputTokens)
  const zero = new Decimal(0)
  let worst = zero
  for (const cached of [null, 'cache_read_tokens', 'cache_write_tokens'] as const) {
    for (const reasoning of [false, true]) {
      const reported: ReportedUsage = new Map([
        ['input_tokens', input],
        ['output_tokens', output],
        ['cache_read_tokens', cached === 'cache_read_tokens' ? input : zero],
        ['cache_write_tokens', cached === 'cache_write_tokens' ? input : zero],
        ['output_reasoning_tokens', reasoning ? output : zero],
        ...(bound.webSearches > 0 ? [['web_searches', new Decimal(bound.webSearches)] as const] : []),
      ])
      const priced = priceEvent(reported, prices)
      if (priced.status === 'UNPRICED') throw new UnpricedCallError(priced.reason)
      const amount =
        plan && 'rating' in plan
          ? rateEvent(
              plan.rating,
              {
                lines: priced.lines,
                model: plan.model,
                units: bound.webSearches > 0 ? [{ unit: 'web_searches', quantity: String(bound.webSearches) }] : [],
              },
              new Map(plan.counters),
            ).amount
          : billAtPlan(priced, plan).amount
      if (amount.greaterThan(worst)) worst = amount
    }
  }
  return worst
}

/** An amount as a reservation takes it: at most AMOUNT_SCALE places, rounded up so the hold never falls short. */
export function holdAmount(amount: Decimal): string {
  return amount.toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_UP).toFixed()
}
