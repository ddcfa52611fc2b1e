export const BUDGETS = `query BurnrateWidgetBudgets($c: String!) {
  budgets(customerId: $c) { id period currency limit thresholds spent remaining forecast periodStart periodEnd }
  budgetAlerts(customerId: $c, first: 5) { id threshold kind spent limit forecast triggeredAt }
  creditBalance(customerId: $c) { currency balance available topUpUrl grants { id } }
}`

// The current period's invoice: lines per plan rule and tier, credits applied, total. The plan (the
// allowance's size, the number of tiers) only when the session may see price details.
export const PREVIEW = `query BurnrateWidgetInvoice($c: String!, $details: Boolean!) {
  invoicePreview(customerId: $c) {
    currency periodEnd subtotal creditsApplied total
    lines { kind ruleId tier usageType quantity amount }
    plan @include(if: $details) { rules { id type usageType quantity tiers { upTo } } }
  }
}`

const G = 'events amount'
export const SUMMARY = `query BurnrateWidgetSummary($c: String!, $from: DateTime!, $to: DateTime!) {
  total: usageSummary(customerId: $c, from: $from, to: $to) { currency events unpricedEvents amount }
  days: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [DAY]) { groups { bucketStart ${G} } }
  models: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [MODEL]) { groups { model ${G} } }
  features: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [FEATURE]) { groups { feature ${G} } }
}`

// $details: the session's priceDetails. Without it the API refuses unitPrice and pricingPlan, so
// they are not asked for.
// $model: as usageSummary groups MODEL; the API filters (and pages) on the server.
export const EVENTS = `query BurnrateWidgetEvents($c: String!, $from: DateTime!, $to: DateTime!, $model: String, $first: Int!, $after: String, $details: Boolean!) {
  usageEvents(customerId: $c, from: $from, to: $to, model: $model, first: $first, after: $after) {
    edges { node { id timestamp model canonicalModel feature status amount currency pricingPlan @include(if: $details)
      lines { usageType quantity unitPrice @include(if: $details) amount } } }
    pageInfo { hasNextPage endCursor }
  }
}`

export const ALERTS = `subscription BurnrateWidgetAlerts($c: String!) {
  budgetAlerts(customerId: $c) { id threshold kind spent limit forecast triggeredAt }
}`

export const USAGE = `subscription BurnrateWidgetUsage($c: String!) {
  usageUpdates(customerId: $c) { events at }
}`
