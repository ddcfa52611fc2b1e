/**
 * Column types PostgreSQL cannot state: the shapes of JSON columns and the values of CHECK-constrained
 * text columns. db-codegen.json points generated.ts's columns at them; code imports them from here
 * or db/types.ts.
 */
import type { ColumnType } from 'kysely'

/** A JSON column: read as T, written as a JSON string. */
export type JsonColumn<T> = ColumnType<T, string, string>
/** A nullable JSON column: read as T or null, written as a JSON string or null. */
export type NullableJsonColumn<T> = JsonColumn<T | null> | null

export type PricingKind = 'MARKUP' | 'MARGIN'
/** What an API key may do: ADMIN everything for its tenant, READ_ONLY queries and subscriptions only. */
export type ApiKeyRole = 'ADMIN' | 'READ_ONLY'
/** How a request was authenticated: an Authorization header or a console session cookie. */
export type AuthMethod = 'BEARER' | 'SESSION'
export type UsageEventStatus = 'PRICED' | 'UNPRICED'
export type BudgetPeriod = 'DAY' | 'WEEK' | 'MONTH'
export type BudgetAlertKind = 'THRESHOLD' | 'FORECAST'
export type PendingChangeStatus = 'PENDING' | 'CONFIRMED' | 'REJECTED'
export type FeedIssueKind = 'REJECTED' | 'SKIPPED'
export type StripeReportingMode = 'AMOUNT' | 'ITEMIZED'
export type StripePushStatus = 'PENDING' | 'SENT' | 'FAILED' | 'EXPIRED' | 'SUPERSEDED'
export type StripeCreditPushStatus = 'PENDING' | 'SENT' | 'FAILED' | 'CANCELLED' | 'SUPERSEDED'
export type StripeCreditPushKind = 'GRANT' | 'VOID' | 'TRUE_UP'
export type GatewayProvider = 'openai' | 'anthropic'
export type WebhookDeliveryStatus = 'PENDING' | 'SUCCEEDED' | 'DEAD'
export type ReportingProvider = 'openai' | 'anthropic' | 'openrouter'
export type ProviderUsageSource = 'usage' | 'cost' | 'generation' | 'credits'

export interface PriceTierJson {
  /** The tier applies when the event's total input tokens exceed `start`. */
  start: number
  unitPrice: string
}

export interface TimeWindowJson {
  /** Seconds after 00:00 UTC, [start, end); end < start wraps past midnight. */
  startSecond: number
  endSecond: number
}

export interface PricedLineJson {
  usageType: string
  quantity: string
  unitPrice: string
  cost: string
  amount: string
  priceId: string
  /** Set when a rating plan (src/rating/) billed the line: the plan version and what each rule added. */
  planId?: string
  planVersion?: number
  parts?: RatedPartJson[]
}

/** One rule's share of a billed line; a line's parts add up to its amount exactly. */
export interface RatedPartJson {
  ruleId: string | null
  rule: RatingRuleType | 'AT_COST'
  /** 1-based tier of TOKEN_TIERS / AMOUNT_TIERS. */
  tier?: number
  quantity: string
  unitPrice?: string
  amount: string
}

export type RatingRuleType =
  | 'COST_BASED'
  | 'FIXED_PRICE'
  | 'TOKEN_TIERS'
  | 'TOKEN_ALLOWANCE'
  | 'UNIT_FEE'
  | 'AMOUNT_ALLOWANCE'
  | 'AMOUNT_TIERS'
  | 'MINIMUM'

export interface RatingTierJson {
  upTo: string | null
  unitPrice: string
}

/** A rating plan rule as stored in rating_plans.rules (validated by rating/rules.ts parseRules). */
export type RatingRuleJson =
  | { id: string; type: 'COST_BASED'; kind: 'MARKUP' | 'MARGIN'; percent: string }
  | { id: string; type: 'FIXED_PRICE'; model: string; usageType: string; pricePerMillion: string }
  | {
      id: string
      type: 'TOKEN_TIERS'
      model: string
      usageType: string
      mode: 'GRADUATED' | 'VOLUME'
      tiers: RatingTierJson[]
    }
  | { id: string; type: 'TOKEN_ALLOWANCE'; model: string; usageType: string; quantity: string }
  | { id: string; type: 'UNIT_FEE'; unit: string; unitPrice: string }
  | { id: string; type: 'AMOUNT_ALLOWANCE'; amount: string }
  | { id: string; type: 'AMOUNT_TIERS'; mode: 'GRADUATED' | 'VOLUME'; tiers: RatingTierJson[] }
  | { id: string; type: 'MINIMUM'; amount: string }

export interface UnpricedReasonJson {
  code: 'UNKNOWN_MODEL' | 'NO_PRICE_AT_TIME' | 'MISSING_USAGE_PRICE'
  usageTypes: string[]
}

export interface UnitQuantityJson {
  unit: string
  quantity: string
}

/** Prepaid credits (credits/): what a grant may pay for; null on the row: all usage. */
export interface CreditScopeJson {
  /** Model globs (`claude-sonnet-*`), matched against the event's canonical model. */
  models?: string[]
  /** The events' `feature` labels. */
  features?: string[]
}
export type CreditCategory = 'PAID' | 'PROMOTIONAL'
export type CreditSource = 'MUTATION' | 'STRIPE_CHECKOUT'
export type CreditLedgerKind = 'GRANT' | 'CONSUMPTION' | 'EXPIRY' | 'REVERSAL'
export type CreditAlertKind = 'LOW_BALANCE' | 'ZERO_BALANCE'
