import type { RatingRuleJson, RatingRuleType, RatingTierJson } from '../db/column-types.ts'
import { Decimal, isExactDecimalString } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import type { Tier, TierMode } from './meter.ts'

/**
 * A plan's rules, as stored (rating_plans.rules, JSON) and as the pure rating functions read them.
 * Decimal strings throughout; docs/rating.md states the order in which rules apply.
 */
export type RuleType = RatingRuleType
export type RuleJson = RatingRuleJson
export type TierJson = RatingTierJson

export const RULE_TYPES: readonly RuleType[] = [
  'COST_BASED',
  'FIXED_PRICE',
  'TOKEN_TIERS',
  'TOKEN_ALLOWANCE',
  'UNIT_FEE',
  'AMOUNT_ALLOWANCE',
  'AMOUNT_TIERS',
  'MINIMUM',
]

/** A plan version as rating reads it. */
export interface RatingPlan {
  /** The version's id (rating_plans.id), or `pricing:<id>` for a plan set by setPricingPlan. */
  id: string
  customerId: string | null
  version: number
  effectiveFrom: Date
  prepaidOnly: boolean
  rules: readonly RuleJson[]
}

/** Token prices are per 1M tokens, like the public price lists. */
export const PER_MILLION = new Decimal(1_000_000)

export function costRule(plan: RatingPlan): Extract<RuleJson, { type: 'COST_BASED' }> | null {
  return (plan.rules.find((r) => r.type === 'COST_BASED') as Extract<RuleJson, { type: 'COST_BASED' }>) ?? null
}

const globCache = new Map<string, RegExp>()
/** `claude-sonnet-*` matches claude-sonnet-4-5; `*` matches any run of characters, everything else literally. */
export function globMatches(glob: string, value: string): boolean {
  if (glob === '*') return true
  let re = globCache.get(glob)
  if (!re) {
    re = new RegExp(
      '^' +
        glob
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*') +
        '$',
    )
    if (globCache.size > 10_000) globCache.clear()
    globCache.set(glob, re)
  }
  return re.test(value)
}

export const tiersOf = (tiers: readonly TierJson[], per: Decimal): Tier[] =>
  tiers.map((t) => ({
    upTo: t.upTo === null ? null : new Decimal(t.upTo),
    unitPrice: new Decimal(t.unitPrice).dividedBy(per),
  }))

/** The raw rule a client sends (GraphQL RatingRuleInput); every field but type optional. */
export interface RuleInput {
  id?: string | null
  type: RuleType
  kind?: 'MARKUP' | 'MARGIN' | null
  percent?: string | null
  model?: string | null
  usageType?: string | null
  price?: string | null
  mode?: TierMode | null
  tiers?: readonly { upTo?: string | null; unitPrice: string }[] | null
  quantity?: string | null
  amount?: string | null
  unit?: string | null
}

const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/
const NAME_RE = /^[A-Za-z0-9_.:/*@+-]{1,255}$/

function decimalField(
  value: string | null | undefined,
  field: string,
  opts: { positive?: boolean; max?: number } = {},
) {
  if (value === null || value === undefined)
    throw badInput(`${field.split('.').at(-1)} is required for this rule`, field)
  if (!isExactDecimalString(value)) throw badInput('must be a plain decimal string', field)
  const d = new Decimal(value)
  if (d.isNegative()) throw badInput('must not be negative', field)
  if (opts.positive && d.isZero()) throw badInput('must be greater than zero', field)
  if (d.decimalPlaces() > 12) throw badInput('has at most 12 decimal places', field)
  if (d.greaterThan(opts.max ?? 1e15)) throw badInput(`must be at most ${opts.max ?? 1e15}`, field)
  return d.toFixed()
}

function nameField(value: string | null | undefined, field: string, fallback?: string) {
  const v = value ?? fallback
  if (v === undefined) throw badInput(`${field.split('.').at(-1)} is required for this rule`, field)
  if (!NAME_RE.test(v)) throw badInput('must be 1-255 characters of letters, digits and _ . : / * @ + -', field)
  return v
}

function tiersField(input: RuleInput, field: string): TierJson[] {
  const tiers = input.tiers
  if (!tiers || tiers.length === 0) throw badInput('tiers are required for this rule', `${field}.tiers`)
  if (tiers.length > 20) throw badInput('at most 20 tiers', `${field}.tiers`)
  let last: Decimal | null = null
  return tiers.map((t, i) => {
    const f = `${field}.tiers.${i}`
    const unitPrice = decimalField(t.unitPrice, `${f}.unitPrice`)
    const isLast = i === tiers.length - 1
    if (isLast) {
      if (t.upTo !== null && t.upTo !== undefined)
        throw badInput('the last tier has no upper bound (upTo: null)', `${f}.upTo`)
      return { upTo: null, unitPrice }
    }
    const upTo = decimalField(t.upTo, `${f}.upTo`, { positive: true })
    if (last && !new Decimal(upTo).greaterThan(last)) throw badInput('tier bounds must increase', `${f}.upTo`)
    last = new Decimal(upTo)
    return { upTo, unitPrice }
  })
}

/**
 * Validates a plan's rules as sent and returns them as stored. Throws a DomainError naming the
 * field (`input.rules.2.tiers.0.upTo`). Ids default to `r1`, `r2`, … by position.
 */
export function parseRules(inputs: readonly RuleInput[], field = 'input.rules'): RuleJson[] {
  if (inputs.length > 50) throw badInput('at most 50 rules per plan', field)
  const seen = new Set<string>()
  const once = new Set<RuleType>()
  return inputs.map((input, i): RuleJson => {
    const f = `${field}.${i}`
    const id = input.id ?? `r${i + 1}`
    if (!ID_RE.test(id)) throw badInput('a rule id is 1-64 letters, digits, _ . : -', `${f}.id`)
    if (seen.has(id)) throw badInput(`rule id "${id}" is used twice`, `${f}.id`)
    seen.add(id)
    if (['COST_BASED', 'AMOUNT_ALLOWANCE', 'AMOUNT_TIERS', 'MINIMUM'].includes(input.type)) {
      if (once.has(input.type)) throw badInput(`a plan has at most one ${input.type} rule`, `${f}.type`)
      once.add(input.type)
    }
    switch (input.type) {
      case 'COST_BASED': {
        const kind = input.kind
        if (kind !== 'MARKUP' && kind !== 'MARGIN') throw badInput('kind is required for COST_BASED', `${f}.kind`)
        const percent = decimalField(input.percent, `${f}.percent`, { max: 10_000 })
        if (kind === 'MARGIN' && new Decimal(percent).greaterThanOrEqualTo(100))
          throw badInput('a MARGIN must be below 100 %', `${f}.percent`)
        return { id, type: 'COST_BASED', kind, percent }
      }
      case 'FIXED_PRICE':
        return {
          id,
          type: 'FIXED_PRICE',
          model: nameField(input.model, `${f}.model`, '*'),
          usageType: nameField(input.usageType, `${f}.usageType`),
          pricePerMillion: decimalField(input.price, `${f}.price`),
        }
      case 'TOKEN_TIERS':
        return {
          id,
          type: 'TOKEN_TIERS',
          model: nameField(input.model, `${f}.model`, '*'),
          usageType: nameField(input.usageType, `${f}.usageType`),
          mode: input.mode ?? 'GRADUATED',
          tiers: tiersField(input, f),
        }
      case 'TOKEN_ALLOWANCE':
        return {
          id,
          type: 'TOKEN_ALLOWANCE',
          model: nameField(input.model, `${f}.model`, '*'),
          usageType: nameField(input.usageType, `${f}.usageType`),
          quantity: decimalField(input.quantity, `${f}.quantity`, { positive: true }),
        }
      case 'UNIT_FEE':
        return {
          id,
          type: 'UNIT_FEE',
          unit: nameField(input.unit, `${f}.unit`),
          unitPrice: decimalField(input.price, `${f}.price`),
        }
      case 'AMOUNT_ALLOWANCE':
        return { id, type: 'AMOUNT_ALLOWANCE', amount: decimalField(input.amount, `${f}.amount`, { positive: true }) }
      case 'AMOUNT_TIERS':
        return { id, type: 'AMOUNT_TIERS', mode: input.mode ?? 'GRADUATED', tiers: tiersField(input, f) }
      case 'MINIMUM':
        return { id, type: 'MINIMUM', amount: decimalField(input.amount, `${f}.amount`, { positive: true }) }
      default:
        throw badInput(`unknown rule type`, `${f}.type`)
    }
  })
}
