/**
 * Credit alerts after they are raised: the subscription event of one, and publishing a batch of
 * them to subscribers after commit (a failed publish is logged, never thrown).
 */
import type { CreditAlertRow } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { CreditAlertEvent } from '../pubsub.ts'
import type { CreditDeps } from './types.ts'

export function creditAlertEvent(row: CreditAlertRow): CreditAlertEvent {
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    customerId: row.customer_id,
    grantId: row.grant_id,
    kind: row.kind,
    threshold: new Decimal(row.threshold).toFixed(),
    balance: new Decimal(row.balance).toFixed(),
    triggeredAt: new Date(row.triggered_at).toISOString(),
  }
}

export async function publishCreditAlerts(
  { pubsub, logger }: Pick<CreditDeps, 'pubsub' | 'logger'>,
  alerts: readonly CreditAlertRow[],
): Promise<void> {
  for (const alert of alerts) {
    try {
      pubsub.publish('creditAlert', alert.tenant_id, creditAlertEvent(alert))
    } catch (error) {
      logger.error('credit alert publish failed', { error: String(error) })
    }
  }
}
