/**
 * The pipeline steps `credits.consume` (usage/pipeline.ts), in the caller's transaction: new
 * PRICED events draw on the customers' grants in event order; billed changes draw more when a
 * bill rises and give back (REVERSAL entries) when it falls.
 */
import type { Tx } from '../db/database.ts'
import { Decimal } from '../money/decimal.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'
import { refund, type Charge } from './consume.ts'
import { consume, expireLocked, raise } from './locked.ts'
import * as repo from './repository.ts'
import type { CreditDeps } from './types.ts'

type FollowDeps = Pick<CreditDeps, 'clock' | 'onAlertsRaised'>

export async function followIngest(deps: FollowDeps, trx: Tx, batch: IngestBatch): Promise<void> {
  const charges: Charge[] = batch.inserted
    .filter((e) => e.status === 'PRICED' && e.amount !== null)
    .map((e) => ({
      customerId: e.customer_id,
      eventId: e.id,
      changeKey: null,
      ts: new Date(e.ts),
      amount: e.amount!,
      model: e.canonical_model ?? e.model,
      feature: e.feature,
    }))
  await raise(deps, trx, await consume(deps, trx, batch.tenant.id, charges), batch.creditAlertsRaised)
}

export async function followChanges(deps: FollowDeps, trx: Tx, batch: BilledChangeBatch): Promise<void> {
  const { tenantId, changes } = batch
  const raised = changes.filter((c) => new Decimal(c.amount).gt(0))
  const lowered = changes.filter((c) => new Decimal(c.amount).lt(0))
  if (raised.length === 0 && lowered.length === 0) return
  const now = deps.clock.now()
  // Every grant of the customers (drained ones may be refilled), locked at once in the one order.
  const locked = await repo.lockGrants(
    trx,
    tenantId,
    changes.map((c) => c.customerId),
    { drained: true },
  )
  if (locked.length === 0) return
  const byId = new Map(locked.map((g) => [g.id, g]))
  if (lowered.length > 0) {
    const drawn = await repo.drawsOfEvents(
      trx,
      tenantId,
      lowered.map((c) => c.eventId),
    )
    const entries: repo.NewLedgerEntry[] = []
    for (const change of lowered) {
      const list = drawn.get(change.eventId) ?? []
      for (const r of refund(list, new Decimal(change.amount).negated().toFixed())) {
        const grant = byId.get(r.grantId)!
        const after = new Decimal(grant.remaining).plus(r.amount).toFixed()
        byId.set(r.grantId, { ...grant, remaining: after })
        entries.push({
          tenant_id: tenantId,
          grant_id: r.grantId,
          customer_id: grant.customer_id,
          kind: 'REVERSAL',
          amount: r.amount,
          balance_after: after,
          event_id: change.eventId,
          change_key: change.key,
          usage_at: change.ts,
          created_at: now,
        })
        // A later lowering of the same event in this batch sees this reversal.
        const d = list.find((x) => x.grantId === r.grantId)!
        d.net = new Decimal(d.net).minus(r.amount).toFixed()
      }
    }
    if (entries.length > 0) {
      await repo.appendLedger(trx, entries)
      const touched = [...new Set(entries.map((e) => e.grant_id))]
      await repo.setRemaining(trx, tenantId, new Map(touched.map((id) => [id, byId.get(id)!.remaining])))
      // A refund into a grant that has expired meanwhile expires at once.
      const expired = await expireLocked(
        trx,
        tenantId,
        touched.map((id) => byId.get(id)!),
        now,
      )
      await raise(deps, trx, expired.alerts, batch.creditAlertsRaised)
      const open = new Set(expired.open.map((g) => g.id))
      for (const id of touched) if (!open.has(id)) byId.set(id, { ...byId.get(id)!, remaining: '0' })
    }
  }
  if (raised.length > 0) {
    const features = await repo.featuresOfEvents(
      trx,
      tenantId,
      raised.map((c) => ({ id: c.eventId, ts: c.ts })),
    )
    const charges: Charge[] = raised.map((c) => ({
      customerId: c.customerId,
      eventId: c.eventId,
      changeKey: c.key,
      ts: c.ts,
      amount: c.amount,
      model: c.model,
      feature: features.get(c.eventId) ?? null,
    }))
    await raise(deps, trx, await consume(deps, trx, tenantId, charges, [...byId.values()]), batch.creditAlertsRaised)
  }
}
