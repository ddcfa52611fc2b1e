import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import type { NormalizedPrice, PriceTier, SourceSnapshot } from '../types.ts'
import { UNIT_BY_USAGE_TYPE } from '../units.ts'
import { contentVersion, SourceError } from './fetch.ts'
import { resolveGenaiPricesModel } from './genai-prices.ts'
import { parsePrice } from './price-value.ts'

/** Source name of tenant overrides (negotiated prices); their rows carry the tenant id. */
export const OVERRIDE_SOURCE = 'override'

const priceInput = z.union([z.string(), z.number()])
const overrideSchema = z.object({
  tenant: z.string().min(1),
  provider: z.string().min(1).max(255),
  model: z.string().min(1).max(255),
  usageType: z.string().min(1),
  unitPrice: priceInput,
  tiers: z.array(z.object({ aboveInputTokens: z.number().int().nonnegative(), unitPrice: priceInput })).optional(),
  effectiveFrom: z.union([z.string(), z.date()]),
  effectiveTo: z.union([z.string(), z.date()]).nullish(),
})
const fileSchema = z.object({ overrides: z.array(overrideSchema) })

export interface OverrideInput {
  provider: string
  model: string
  usageType: string
  unitPrice: string | number
  tiers?: { aboveInputTokens: number; unitPrice: string | number }[] | null
  effectiveFrom: Date | string
  effectiveTo?: Date | string | null
}

/** Thrown for a bad override, naming the field, so a mutation can answer with badInput. */
export class OverrideError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message)
    this.name = 'OverrideError'
  }
}

function date(value: Date | string, field: string): Date {
  const parsed = value instanceof Date ? value : new Date(value)
  if (Number.isNaN(parsed.getTime())) throw new OverrideError(`${field} is not a date: ${String(value)}`, field)
  return parsed
}

/** One negotiated price as a catalog row (model names resolved like events'), or an OverrideError. */
export function overrideRow(input: OverrideInput): NormalizedPrice {
  const unit = UNIT_BY_USAGE_TYPE.get(input.usageType)
  if (!unit)
    throw new OverrideError(
      `unknown usageType "${input.usageType}"; one of ${[...UNIT_BY_USAGE_TYPE.keys()].join(', ')}`,
      'usageType',
    )
  const price = parsePrice(input.unitPrice)
  if (!price.ok) throw new OverrideError(`unitPrice: ${price.reason}`, 'unitPrice')
  const tiers: PriceTier[] = []
  for (const tier of input.tiers ?? []) {
    const tierPrice = parsePrice(tier.unitPrice)
    if (!tierPrice.ok) throw new OverrideError(`tier unitPrice: ${tierPrice.reason}`, 'tiers')
    tiers.push({ start: tier.aboveInputTokens, unitPrice: tierPrice.unitPrice })
  }
  const effectiveFrom = date(input.effectiveFrom, 'effectiveFrom')
  const effectiveTo = input.effectiveTo ? date(input.effectiveTo, 'effectiveTo') : null
  if (effectiveTo && effectiveTo <= effectiveFrom)
    throw new OverrideError('effectiveTo must be after effectiveFrom', 'effectiveTo')
  const provider = input.provider.trim().toLowerCase()
  const resolved = resolveGenaiPricesModel(input.model, provider)
  return {
    provider: resolved?.provider ?? provider,
    model: resolved?.model ?? input.model.trim().toLowerCase(),
    usageType: unit.usageType,
    unit: unit.unit,
    unitPrice: price.unitPrice,
    currency: 'USD',
    tiers: tiers.length > 0 ? tiers.sort((a, b) => a.start - b.start) : null,
    timeWindow: null,
    effectiveFrom,
    effectiveTo,
  }
}

/**
 * A tenant's overrides as one timeline per (provider, model, usage type): each entry is in force
 * from its date until the next entry's (or its own effectiveTo).
 */
export function overrideTimelines(rows: readonly NormalizedPrice[]): NormalizedPrice[] {
  const byTimeline = new Map<string, NormalizedPrice[]>()
  for (const row of rows) {
    const key = `${row.provider}\u0000${row.model}\u0000${row.usageType}`
    byTimeline.set(key, [...(byTimeline.get(key) ?? []), row])
  }
  const out: NormalizedPrice[] = []
  for (const timeline of byTimeline.values()) {
    const sorted = [...timeline].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime())
    sorted.forEach((row, i) => {
      const next = sorted[i + 1]
      if (next && next.effectiveFrom.getTime() === row.effectiveFrom.getTime()) {
        throw new OverrideError(
          `two overrides for ${row.provider}/${row.model} ${row.usageType} start at ${row.effectiveFrom.toISOString()}`,
          'effectiveFrom',
        )
      }
      const end =
        next && (row.effectiveTo === null || next.effectiveFrom < row.effectiveTo)
          ? next.effectiveFrom
          : row.effectiveTo
      out.push({ ...row, effectiveTo: end })
    })
  }
  return out
}

/** An overrides file (YAML or JSON: `overrides: [{ tenant, provider, model, usageType, unitPrice, effectiveFrom, … }]`), per tenant. */
export function parseOverridesFile(text: string): Map<string, SourceSnapshot> {
  let document: unknown
  try {
    document = parseYaml(text)
  } catch (error) {
    throw new SourceError(
      OVERRIDE_SOURCE,
      'malformed',
      `overrides file is not YAML or JSON: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  const parsed = fileSchema.safeParse(document)
  if (!parsed.success)
    throw new SourceError(OVERRIDE_SOURCE, 'schema', `overrides file: ${z.prettifyError(parsed.error)}`)
  const byTenant = new Map<string, NormalizedPrice[]>()
  parsed.data.overrides.forEach((entry, index) => {
    let row: NormalizedPrice
    try {
      row = overrideRow(entry)
    } catch (error) {
      if (error instanceof OverrideError)
        throw new SourceError(OVERRIDE_SOURCE, 'schema', `overrides[${index}].${error.field}: ${error.message}`)
      throw error
    }
    byTenant.set(entry.tenant, [...(byTenant.get(entry.tenant) ?? []), row])
  })
  const version = contentVersion(parsed.data)
  const snapshots = new Map<string, SourceSnapshot>()
  for (const [tenant, rows] of byTenant) {
    const prices = overrideTimelines(rows)
    const models = new Set(prices.map((p) => `${p.provider}/${p.model}`)).size
    snapshots.set(tenant, {
      source: OVERRIDE_SOURCE,
      sourceVersion: version,
      prices,
      models,
      skipped: [],
      rejected: [],
    })
  }
  return snapshots
}
