/**
 * Prepaid credits: grants per customer, drawn down by ingest in event order (the pipeline step
 * `credits.consume`, usage/pipeline.ts) and by billed changes, an append-only ledger, balances,
 * expiry, low- and zero-balance alerts, and the hard stop for prepaid-only customers (what budgets
 * and the gateway ask through `prepaidGate`). Composed here from its use cases: granting
 * (grants.ts), reading (balances.ts), settings (settings.ts), expiry (expiry.ts), the pipeline
 * steps (follow.ts), the hard stop (gate.ts) and alerts (alerts.ts); what they do to locked
 * grants is locked.ts, the arithmetic consume.ts. Nothing is kept between calls.
 */
import { publishCreditAlerts } from './alerts.ts'
import { alerts, balance, forPeriod, ledger } from './balances.ts'
import { sweepExpired } from './expiry.ts'
import { followChanges, followIngest } from './follow.ts'
import { prepaidGate } from './gate.ts'
import { grantCredits, grantFromCheckout } from './grants.ts'
import { setCreditSettings, setTopUpUrl } from './settings.ts'
import type { CreditDeps, CreditService } from './types.ts'

export function createCreditService(deps: CreditDeps): CreditService {
  return {
    grantCredits: (tenant, input, source) => grantCredits(deps, tenant, input, source),
    grantFromCheckout: (tenantId, checkout) => grantFromCheckout(deps, tenantId, checkout),
    balance: (tenant, customerId) => balance(deps, tenant, customerId),
    forPeriod: (tenant, customerId, period) => forPeriod(deps, tenant, customerId, period),
    ledger: (tenant, customerId, args) => ledger(deps, tenant, customerId, args),
    alerts: (tenant, customerId, first) => alerts(deps, tenant, customerId, first),
    setCreditSettings: (tenant, input) => setCreditSettings(deps, tenant, input),
    setTopUpUrl: (tenant, url) => setTopUpUrl(deps, tenant, url),
    sweepExpired: () => sweepExpired(deps),
    prepaidGate: (executor, tenantId, customerId, now, options) =>
      prepaidGate(deps, executor, tenantId, customerId, now, options),
    followIngest: (trx, batch) => followIngest(deps, trx, batch),
    followChanges: (trx, batch) => followChanges(deps, trx, batch),
    publishAlerts: async ({ creditAlertsRaised }) => publishCreditAlerts(deps, creditAlertsRaised),
  }
}
