import { EXTRA_UNIT_NAMES, UNIT_BY_USAGE_KEY } from '@burnrate/catalog-sync'
import { Decimal, isExactDecimalString } from '../money/decimal.ts'
import { UsageShapeError, checkUsageShape } from '../pricing/engine.ts'
import { canonicalDecimal } from './signing.ts'

/** UsageEventInput as graphql-js hands it over (scalars already parsed). */
export interface UsageEventInput {
  id: string
  customerId: string
  model: string
  provider?: string | null
  timestamp: Date
  inputTokens?: number | null
  outputTokens?: number | null
  cacheReadTokens?: number | null
  cacheWriteTokens?: number | null
  reasoningTokens?: number | null
  units?: readonly { unit: string; quantity: string }[] | null
  feature?: string | null
  metadata?: unknown
  signature?: string | null
  /** A budget reservation (reserveBudget) this event settles. */
  reservationId?: string | null
}

/**
 * Other names events use for a unit, mapped to its one documented name (README, "Unit names").
 * The documented names are the usage keys of @burnrate/catalog-sync's units.ts, the catalog's own
 * vocabulary, so every unit a price can be stated in can be reported. An alias whose target the
 * vocabulary lacks is ignored.
 */
const ALIASES: Readonly<Record<string, string>> = {
  // The README used to give `audio_seconds`; audio sent to the model (transcription, voice input)
  // is input audio. The undirected audio_seconds remains a catalog unit, filled from its parts.
  audio_seconds: 'input_audio_seconds',
  // Anthropic reports usage.server_tool_use.web_search_requests.
  web_search_requests: 'web_searches',
  web_search: 'web_searches',
  request: 'requests',
}
const UNIT_ALIASES: ReadonlyMap<string, string> = new Map(
  Object.entries(ALIASES).filter(([, target]) => EXTRA_UNIT_NAMES.has(target)),
)
/** The unit names `units` accepts under their own name. */
const UNIT_NAMES: readonly string[] = [...EXTRA_UNIT_NAMES].filter((name) => !UNIT_ALIASES.has(name)).sort()

/** Tenant-defined units: `custom.` and 1-64 lowercase letters, digits or _. */
const CUSTOM_UNIT = /^custom\.[a-z0-9_]{1,64}$/

/** The documented name of a unit an event gave (itself when it is one), or null for an unknown name. */
export function canonicalUnitName(name: string): string | null {
  const alias = UNIT_ALIASES.get(name)
  if (alias) return alias
  // A unit of the tenant's own (per agent task, per search): no catalog prices it; a plan's UNIT_FEE may.
  if (CUSTOM_UNIT.test(name)) return name
  return EXTRA_UNIT_NAMES.has(name) ? name : null
}

export interface ValidEvent {
  id: string
  customerId: string
  model: string
  provider: string | null
  timestamp: Date
  inputTokens: number
  outputTokens: number
  cacheReadTokens: number
  cacheWriteTokens: number
  reasoningTokens: number
  /** Units under their documented names, as stored. */
  units: { unit: string; quantity: string }[]
  /** Units as the client sent them (aliases kept): what it signed and what the content hash covers. */
  unitsAsSent: { unit: string; quantity: string }[]
  feature: string | null
  metadata: Record<string, unknown> | null
  /** Serialized metadata, measured once. */
  metadataJson: string | null
  signature: string | null
  reservationId: string | null
  /** Reported quantities by usage key, for the pricing engine. */
  reported: Map<string, Decimal>
}

export interface EventError {
  code: 'INVALID_INPUT' | 'INVALID_SIGNATURE' | 'IDEMPOTENCY_CONFLICT'
  message: string
  field?: string
}

export const LIMITS = {
  idLength: 255,
  customerIdLength: 255,
  modelLength: 255,
  providerLength: 100,
  featureLength: 100,
  metadataBytes: 4096,
  units: 20,
  unitQuantityMax: new Decimal('1e12'),
  unitQuantityDecimals: 9,
  futureSkewMs: 5 * 60 * 1000,
  batchSize: 1000,
} as const

const TOKEN_FIELDS = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'reasoningTokens'] as const
const TOKEN_USAGE_KEYS = [
  ['inputTokens', 'input_tokens'],
  ['outputTokens', 'output_tokens'],
  ['cacheReadTokens', 'cache_read_tokens'],
  ['cacheWriteTokens', 'cache_write_tokens'],
  ['reasoningTokens', 'output_reasoning_tokens'],
] as const
const TOKEN_KEYS: readonly string[] = TOKEN_USAGE_KEYS.map(([, key]) => key)

function text(value: string | null | undefined, field: string, max: number, required: boolean): EventError | null {
  if (value === null || value === undefined || value.length === 0) {
    return required ? { code: 'INVALID_INPUT', message: `${field} must not be empty`, field } : null
  }
  if (value.length > max) return { code: 'INVALID_INPUT', message: `${field} is longer than ${max} characters`, field }
  if (value.includes('\u0000'))
    return { code: 'INVALID_INPUT', message: `${field} must not contain NUL characters`, field }
  return null
}

/**
 * Checks one event against everything that can be known without the database. Pure: `now` is
 * the injected clock's time.
 */
export function validateEvent(
  input: UsageEventInput,
  now: Date,
): { ok: true; event: ValidEvent } | { ok: false; error: EventError } {
  const fail = (error: EventError) => ({ ok: false as const, error })
  const textError =
    text(input.id, 'id', LIMITS.idLength, true) ??
    text(input.customerId, 'customerId', LIMITS.customerIdLength, true) ??
    text(input.model, 'model', LIMITS.modelLength, true) ??
    text(input.provider, 'provider', LIMITS.providerLength, false) ??
    text(input.feature, 'feature', LIMITS.featureLength, false)
  if (textError) return fail(textError)
  if (
    input.reservationId !== null &&
    input.reservationId !== undefined &&
    !/^rsv_[A-Za-z0-9_-]{1,60}$/.test(input.reservationId)
  ) {
    return fail({
      code: 'INVALID_INPUT',
      message: 'reservationId must be an id returned by reserveBudget (rsv_…)',
      field: 'reservationId',
    })
  }

  const timestamp = input.timestamp
  if (!(timestamp instanceof Date) || Number.isNaN(timestamp.getTime())) {
    return fail({ code: 'INVALID_INPUT', message: 'timestamp is not a valid RFC 3339 date-time', field: 'timestamp' })
  }
  if (timestamp.getTime() > now.getTime() + LIMITS.futureSkewMs) {
    return fail({
      code: 'INVALID_INPUT',
      message: 'timestamp is more than 5 minutes in the future',
      field: 'timestamp',
    })
  }

  const tokens = {} as Record<(typeof TOKEN_FIELDS)[number], number>
  for (const field of TOKEN_FIELDS) {
    const value = input[field] ?? 0
    if (!Number.isSafeInteger(value) || value < 0) {
      return fail({ code: 'INVALID_INPUT', message: `${field} must be a non-negative integer`, field })
    }
    tokens[field] = value
  }
  if (tokens.cacheReadTokens + tokens.cacheWriteTokens > tokens.inputTokens) {
    const field =
      tokens.cacheReadTokens > tokens.inputTokens || tokens.cacheWriteTokens === 0
        ? 'cacheReadTokens'
        : 'cacheWriteTokens'
    return fail({
      code: 'INVALID_INPUT',
      message: `cacheReadTokens + cacheWriteTokens (${tokens.cacheReadTokens + tokens.cacheWriteTokens}) exceed inputTokens (${tokens.inputTokens}); inputTokens counts all input tokens, cached ones included`,
      field,
    })
  }
  if (tokens.reasoningTokens > tokens.outputTokens) {
    return fail({
      code: 'INVALID_INPUT',
      message: `reasoningTokens (${tokens.reasoningTokens}) exceed outputTokens (${tokens.outputTokens}); outputTokens counts all output tokens, reasoning included`,
      field: 'reasoningTokens',
    })
  }

  // Zero token counts stay out (pricing reads an absent quantity as zero); checkUsageShape still
  // checks every token quantity as a whole below.
  const reported = new Map<string, Decimal>()
  for (const [field, key] of TOKEN_USAGE_KEYS) if (tokens[field] !== 0) reported.set(key, new Decimal(tokens[field]))
  const units: { unit: string; quantity: string }[] = []
  const unitsAsSent: { unit: string; quantity: string }[] = []
  const inputUnits = input.units ?? []
  if (inputUnits.length > LIMITS.units) {
    return fail({ code: 'INVALID_INPUT', message: `at most ${LIMITS.units} units per event`, field: 'units' })
  }
  for (const [i, { unit: name, quantity }] of inputUnits.entries()) {
    const field = `units[${i}]`
    const unit = canonicalUnitName(name)
    if (unit === null) {
      const eventField = UNIT_BY_USAGE_KEY.get(name)?.eventField
      return fail({
        code: 'INVALID_INPUT',
        message: eventField
          ? `"${name}" is not a unit: give it in ${eventField}`
          : `unknown unit "${name}"; units: ${UNIT_NAMES.join(', ')} or custom.<name> (tokens go in the token fields)`,
        field: `${field}.unit`,
      })
    }
    const earlier = units.findIndex((u) => u.unit === unit)
    if (earlier !== -1) {
      const same = unitsAsSent[earlier]!.unit === name ? '' : ` (as "${unitsAsSent[earlier]!.unit}")`
      return fail({ code: 'INVALID_INPUT', message: `unit "${unit}" is given twice${same}`, field: `${field}.unit` })
    }
    if (!isExactDecimalString(quantity)) {
      return fail({ code: 'INVALID_INPUT', message: 'quantity must be a decimal string', field: `${field}.quantity` })
    }
    const q = new Decimal(quantity)
    if (q.isNegative() || q.greaterThan(LIMITS.unitQuantityMax) || q.decimalPlaces() > LIMITS.unitQuantityDecimals) {
      return fail({
        code: 'INVALID_INPUT',
        message: `quantity must be between 0 and ${LIMITS.unitQuantityMax.toFixed()} with at most ${LIMITS.unitQuantityDecimals} decimal places`,
        field: `${field}.quantity`,
      })
    }
    reported.set(unit, q)
    const canonical = canonicalDecimal(quantity)
    units.push({ unit, quantity: canonical })
    unitsAsSent.push({ unit: name, quantity: canonical })
  }
  try {
    checkUsageShape(reported, TOKEN_KEYS)
  } catch (error) {
    if (error instanceof UsageShapeError) return fail({ code: 'INVALID_INPUT', message: error.message, field: 'units' })
    throw error
  }

  let metadata: Record<string, unknown> | null = null
  let metadataJson: string | null = null
  if (input.metadata !== undefined && input.metadata !== null) {
    if (typeof input.metadata !== 'object' || Array.isArray(input.metadata)) {
      return fail({
        code: 'INVALID_INPUT',
        message: 'metadata must be a JSON object of small labels',
        field: 'metadata',
      })
    }
    metadataJson = JSON.stringify(input.metadata)
    if (metadataJson.includes('\\u0000')) {
      return fail({ code: 'INVALID_INPUT', message: 'metadata must not contain NUL characters', field: 'metadata' })
    }
    if (Buffer.byteLength(metadataJson) > LIMITS.metadataBytes) {
      return fail({
        code: 'INVALID_INPUT',
        message: `metadata is larger than ${LIMITS.metadataBytes} bytes`,
        field: 'metadata',
      })
    }
    metadata = input.metadata as Record<string, unknown>
  }

  return {
    ok: true,
    event: {
      id: input.id,
      customerId: input.customerId,
      model: input.model,
      provider: input.provider ?? null,
      timestamp,
      ...tokens,
      units,
      unitsAsSent,
      feature: input.feature ?? null,
      metadata,
      metadataJson,
      signature: input.signature ?? null,
      reservationId: input.reservationId ?? null,
      reported,
    },
  }
}
