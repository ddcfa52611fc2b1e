import type { Migration } from 'kysely/migration'
import * as ledger from './20261123T0000_ledger.ts'
import * as budgets from './20261123T1000_budgets.ts'
import * as webhooks from './20261123T1100_webhooks.ts'
import * as catalogSources from './20261123T1200_catalog_sources.ts'
import * as stripe from './20261123T1300_stripe.ts'
import * as gateway from './20261123T1400_gateway.ts'
import * as webhookSecrets from './20261123T1500_webhook_secrets.ts'
import * as rollupCoveringKey from './20261123T1600_rollup_covering_key.ts'
import * as widgetPriceDetails from './20261123T1700_widget_price_details.ts'
import * as catalogFeedIssues from './20261206T0100_catalog_feed_issues.ts'
import * as unpricedReason from './20261206T0300_unpriced_reason.ts'
import * as budgetForecastAlerts from './20261206T0500_budget_forecast_alerts.ts'
import * as stripeSecretsAndPushRetries from './20261206T0501_stripe_secrets_and_push_retries.ts'
import * as usageEventsPartitions from './20261207T0100_usage_events_partitions.ts'
import * as reconciliation from './20261207T0300_reconciliation.ts'
import * as usageEventsOneForeignKey from './20261208T0200_usage_events_one_foreign_key.ts'
import * as exportJobs from './20261208T0300_export_jobs.ts'
import * as retentionRuns from './20261208T0301_retention_runs.ts'
import * as rating from './20261208T0400_rating.ts'
import * as credits from './20261208T0500_credits.ts'
import * as consoleAccess from './20261208T0600_console_access.ts'
import * as citusTenantKeys from './20261210T0200_citus_tenant_keys.ts'
import * as stripeCreditGrants from './20261210T0400_stripe_credit_grants.ts'
import * as stripeTrueUps from './20261211T0100_stripe_true_ups.ts'
import * as dayRollups from './20261212T0100_day_rollups.ts'
import * as dayRollupTokens from './20261212T0200_day_rollup_tokens.ts'
import * as dayCustomerModels from './20261213T0100_day_customer_models.ts'

/** Every migration, by sortable name. A static map works the same under tsx, vitest and a bundler. */
export const migrations: Record<string, Migration> = {
  '20261123T0000_ledger': ledger,
  '20261123T1000_budgets': budgets,
  '20261123T1100_webhooks': webhooks,
  '20261123T1200_catalog_sources': catalogSources,
  '20261123T1300_stripe': stripe,
  '20261123T1400_gateway': gateway,
  '20261123T1500_webhook_secrets': webhookSecrets,
  '20261123T1600_rollup_covering_key': rollupCoveringKey,
  '20261123T1700_widget_price_details': widgetPriceDetails,
  '20261206T0100_catalog_feed_issues': catalogFeedIssues,
  '20261206T0300_unpriced_reason': unpricedReason,
  '20261206T0500_budget_forecast_alerts': budgetForecastAlerts,
  '20261206T0501_stripe_secrets_and_push_retries': stripeSecretsAndPushRetries,
  '20261207T0100_usage_events_partitions': usageEventsPartitions,
  '20261207T0300_reconciliation': reconciliation,
  '20261208T0200_usage_events_one_foreign_key': usageEventsOneForeignKey,
  '20261208T0300_export_jobs': exportJobs,
  '20261208T0301_retention_runs': retentionRuns,
  '20261208T0400_rating': rating,
  '20261208T0500_credits': credits,
  '20261208T0600_console_access': consoleAccess,
  '20261210T0200_citus_tenant_keys': citusTenantKeys,
  '20261210T0400_stripe_credit_grants': stripeCreditGrants,
  '20261211T0100_stripe_true_ups': stripeTrueUps,
  '20261212T0100_day_rollups': dayRollups,
  '20261212T0200_day_rollup_tokens': dayRollupTokens,
  '20261213T0100_day_customer_models': dayCustomerModels,
}
