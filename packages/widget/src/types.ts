export interface Budget {
  id: string
  period: 'DAY' | 'WEEK' | 'MONTH'
  currency: string
  limit: string
  thresholds: number[]
  spent: string
  remaining: string
  forecast: string
  periodStart: string
  periodEnd: string
}

export interface BudgetAlert {
  id: string
  threshold: number
  kind: string
  spent: string
  limit: string
  forecast: string | null
  triggeredAt: string
}

export interface UsageGroup {
  model: string | null
  feature: string | null
  bucketStart: string | null
  events: number
  amount: string
}

interface PricedLine {
  usageType: string
  quantity: string
  /** Absent when the session hides price details. */
  unitPrice?: string
  amount: string
}

export interface UsageEvent {
  id: string
  timestamp: string
  model: string
  canonicalModel: string | null
  feature: string | null
  status: 'PRICED' | 'UNPRICED'
  amount: string | null
  currency: string
  /** Absent when the session hides price details. */
  pricingPlan?: string | null
  lines: PricedLine[]
}

/** The customer's prepaid credits (null in SpendData when it has never had a grant). */
export interface Credits {
  currency: string
  balance: string
  /** balance − active reservations. */
  available: string
  /** Where the tenant sells more credits; null: no link. */
  topUpUrl: string | null
}

interface InvoiceLine {
  kind: string
  ruleId: string | null
  tier: number | null
  usageType: string | null
  quantity: string | null
  amount: string
}

/** The current period's invoice so far (invoicePreview). */
export interface InvoicePreview {
  currency: string
  periodEnd: string
  subtotal: string
  creditsApplied: string
  total: string
  lines: InvoiceLine[]
  /** Absent when the session hides price details (then allowance sizes and tier counts are unknown). */
  plan?: {
    rules: {
      id: string
      type: string
      usageType: string | null
      quantity: string | null
      tiers: { upTo: string | null }[] | null
    }[]
  } | null
}

export interface SpendData {
  customerId: string
  currency: string
  from: string
  to: string
  budget: Budget | null
  alerts: BudgetAlert[]
  credits: Credits | null
  /** Null when the API has no invoice preview for the customer (or an older API). */
  invoice: InvoicePreview | null
  events: number
  unpricedEvents: number
  amount: string
  days: UsageGroup[]
  models: UsageGroup[]
  features: UsageGroup[]
  loadedAt: number
}
