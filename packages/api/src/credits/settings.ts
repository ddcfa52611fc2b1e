/** A customer's credit settings (its low-balance threshold) and the tenant's top-up URL, each audited in its transaction. */
import type { CreditSettingsRow, Tenant } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { checkCustomerId, CREDIT_LIMITS, parseAmount } from './input.ts'
import * as repo from './repository.ts'
import type { CreditDeps } from './types.ts'

export async function setCreditSettings(
  { db, clock, audit = null }: Pick<CreditDeps, 'db' | 'clock' | 'audit'>,
  tenant: Tenant,
  input: { customerId: string; lowBalanceThreshold?: string | null },
): Promise<CreditSettingsRow> {
  checkCustomerId(input.customerId, 'input.customerId')
  const low =
    input.lowBalanceThreshold == null
      ? null
      : parseAmount(input.lowBalanceThreshold, 'input.lowBalanceThreshold', false)
  return db.transaction().execute(async (trx) => {
    const [before] = await repo.settingsOf(trx, tenant.id, [input.customerId])
    const after = await repo.upsertSettings(trx, {
      tenant_id: tenant.id,
      customer_id: input.customerId,
      low_balance_threshold: low,
      updated_at: clock.now(),
    })
    await audit?.record(trx, {
      tenantId: tenant.id,
      action: 'creditSettings.set',
      entityType: 'CreditSettings',
      entityId: input.customerId,
      before: before ? { lowBalanceThreshold: before.low_balance_threshold } : null,
      after: { lowBalanceThreshold: after.low_balance_threshold },
    })
    return after
  })
}

export async function setTopUpUrl(
  { db, audit = null }: Pick<CreditDeps, 'db' | 'audit'>,
  tenant: Tenant,
  url: string | null,
): Promise<string | null> {
  if (url !== null) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw badInput('creditTopUpUrl must be an absolute https:// (or http://) URL', 'input.creditTopUpUrl')
    }
    if (!['https:', 'http:'].includes(parsed.protocol) || url.length > CREDIT_LIMITS.topUpUrlLength)
      throw badInput('creditTopUpUrl must be an absolute https:// (or http://) URL', 'input.creditTopUpUrl')
  }
  await db.transaction().execute(async (trx) => {
    const before = await repo.topUpUrlOf(trx, tenant.id)
    await repo.setTopUpUrl(trx, tenant.id, url)
    await audit?.record(trx, {
      tenantId: tenant.id,
      action: 'creditTopUpUrl.set',
      entityType: 'Tenant',
      entityId: tenant.id,
      before: { creditTopUpUrl: before },
      after: { creditTopUpUrl: url },
    })
  })
  return url
}
