/** The limits of the credits domain and the checks its inputs pass before anything is written. */
import type { CreditScopeJson } from '../db/types.ts'
import { AMOUNT_SCALE, Decimal, isExactDecimalString } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import type { GrantCreditsInput } from './types.ts'

export const CREDIT_LIMITS = {
  customerIdLength: 255,
  idempotencyKeyLength: 255,
  descriptionLength: 500,
  maxAmount: new Decimal('1e15'),
  scopeEntries: 50,
  scopeEntryLength: 200,
  defaultPriority: 50,
  alertsDefaultFirst: 50,
  alertsMaxFirst: 500,
  topUpUrlLength: 2000,
  sweepBatch: 500,
} as const

export function parseAmount(value: string, field: string, allowZero: boolean): string {
  if (!isExactDecimalString(value)) throw badInput(`${field} must be a decimal string such as "12.50"`, field)
  const d = new Decimal(value)
  if (d.isNegative() || (!allowZero && d.isZero()))
    throw badInput(`${field} must be ${allowZero ? 'zero or more' : 'more than zero'}`, field)
  if (d.greaterThan(CREDIT_LIMITS.maxAmount))
    throw badInput(`${field} must be at most ${CREDIT_LIMITS.maxAmount.toFixed()}`, field)
  if (d.decimalPlaces() > AMOUNT_SCALE) throw badInput(`${field} has more than ${AMOUNT_SCALE} decimal places`, field)
  return d.toFixed()
}

export function checkCustomerId(customerId: string, field = 'customerId'): void {
  if (customerId.length === 0 || customerId.length > CREDIT_LIMITS.customerIdLength)
    throw badInput(`customerId must be 1-${CREDIT_LIMITS.customerIdLength} characters`, field)
}

export function checkScope(scope: GrantCreditsInput['scope']): CreditScopeJson | null {
  if (scope == null) return null
  const list = (values: readonly string[] | null | undefined, name: 'models' | 'features') => {
    if (values == null) return undefined
    if (values.length > CREDIT_LIMITS.scopeEntries)
      throw badInput(`at most ${CREDIT_LIMITS.scopeEntries} ${name}`, `input.scope.${name}`)
    for (const [i, v] of values.entries())
      if (v.trim().length === 0 || v.length > CREDIT_LIMITS.scopeEntryLength)
        throw badInput(
          `${name} entries are 1-${CREDIT_LIMITS.scopeEntryLength} characters`,
          `input.scope.${name}[${i}]`,
        )
    return [...new Set(values)]
  }
  const models = list(scope.models, 'models')
  const features = list(scope.features, 'features')
  if (!models?.length && !features?.length)
    throw badInput('a scope names at least one model glob or feature (leave scope out for all usage)', 'input.scope')
  return { ...(models?.length ? { models } : {}), ...(features?.length ? { features } : {}) }
}
