import type { Tx } from '../db/database.ts'
import type { ReconciliationAlertRow } from '../db/types.ts'
import type { Decimal } from '../money/decimal.ts'
import { ZERO } from '../money/decimal.ts'
import type { ReconciliationAlertEvent } from '../pubsub.ts'
import { checkRange, dayStart, type ReconciliationParts } from './parts.ts'
import type { ReconciliationRow } from './reconcile.ts'
import * as repo from './repository.ts'
import type { BuildTable } from './table.ts'
import type { ReconciliationService } from './types.ts'

const alertEventOf = (row: ReconciliationAlertRow): ReconciliationAlertEvent => {
  const details = (typeof row.details === 'string' ? JSON.parse(row.details) : row.details) as Record<string, unknown>
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    provider: row.provider,
    day: new Date(row.day).toISOString(),
    kind: row.kind,
    models: (details.models as string[]) ?? [],
    usageTypes: (details.usageTypes as string[]) ?? [],
    costDifference: (details.costDifference as string | null) ?? null,
    estimatedBillableAmount: (details.estimatedBillableAmount as string | null) ?? null,
    raisedAt: new Date(row.raised_at).toISOString(),
  }
}

/** Raises alerts for the complete days of [from, to): one per provider, day and kind, ever. */
export type RaiseAlerts = (tenantId: string, from: Date, to: Date) => Promise<void>

export function alertRaiser(parts: ReconciliationParts, table: BuildTable): RaiseAlerts {
  const { db, clock, pubsub } = parts.deps
  const deps = parts.deps
  return async function raiseAlerts(tenantId, from, to) {
    const complete = new Date(Math.min(to.getTime(), dayStart(clock.now()).getTime()))
    if (complete <= from) return
    const { rows } = await table(tenantId, (await repo.tenantCurrency(db, tenantId)) ?? 'USD', { from, to: complete })
    const groups = new Map<string, ReconciliationRow[]>()
    for (const row of rows) {
      if (row.status === 'MATCHED') continue
      const key = `${row.provider}|${row.day.getTime()}|${row.status}`
      groups.set(key, [...(groups.get(key) ?? []), row])
    }
    if (groups.size === 0) return
    const now = clock.now()
    const sum = (values: (Decimal | null)[]) => {
      const known = values.filter((v): v is Decimal => v !== null)
      return known.length ? known.reduce((a, b) => a.plus(b), ZERO).toFixed() : null
    }
    const candidates = [...groups.values()].map((group) => ({
      tenantId,
      provider: group[0]!.provider,
      day: group[0]!.day,
      kind: group[0]!.status,
      now,
      details: {
        models: [...new Set(group.map((r) => r.model))].sort(),
        usageTypes: [...new Set(group.map((r) => r.usageType))].sort(),
        costDifference: sum(group.map((r) => r.costDifference)),
        estimatedBillableAmount: sum(group.map((r) => r.estimatedBillableAmount)),
      },
    }))
    const raised = await db.transaction().execute(async (trx: Tx) => {
      const inserted = await repo.insertAlerts(trx, candidates)
      for (const row of inserted) {
        const event = alertEventOf(row)
        const { tenantId: _t, ...payload } = event
        await deps.enqueueWebhook(trx, {
          tenantId,
          type: 'reconciliation.alert',
          dedupeKey: `reconciliation.alert:${row.provider}:${event.day}:${row.kind}`,
          payload,
        })
      }
      return inserted
    })
    for (const row of raised) pubsub.publish('reconciliationAlert', tenantId, alertEventOf(row))
  }
}

export function alertUseCases(parts: ReconciliationParts): Pick<ReconciliationService, 'alerts'> {
  const { db } = parts.deps
  return {
    async alerts(tenant, from, to) {
      checkRange(from, to)
      return (await repo.listAlerts(db, tenant.id, from, to)).map(alertEventOf)
    },
  }
}
