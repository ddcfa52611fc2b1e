/**
 * What happens to grants the caller has locked in its transaction: expiry (EXPIRY entries), the
 * draw-down of charges (CONSUMPTION entries, arithmetic in consume.ts) and the low- and
 * zero-balance alerts either crosses into. Every use case that changes a balance goes through here.
 */
import type { Tx } from '../db/database.ts'
import type { CreditAlertRow, CreditGrantRow } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { crossedDown, drawDown, sum, type Charge, type Draw } from './consume.ts'
import { availableNow, expiryDue, openGrantOf } from './grant-state.ts'
import * as repo from './repository.ts'
import type { CreditDeps } from './types.ts'

type NewAlert = Parameters<typeof repo.insertAlerts>[1][number]

/**
 * Expires, in the caller's transaction, the locked grants past their expiry at `now`: an EXPIRY
 * entry takes what is left. Returns the grants still open, and the alerts the expiry raised
 * (inserted; the caller raises them — webhooks in its transaction, subscriptions after commit).
 */
export async function expireLocked(
  trx: Tx,
  tenantId: string,
  grants: CreditGrantRow[],
  now: Date,
): Promise<{ open: CreditGrantRow[]; alerts: CreditAlertRow[] }> {
  const expired = grants.filter((g) => expiryDue(g, now))
  if (expired.length > 0) {
    await repo.appendLedger(
      trx,
      expired.map((g) => ({
        tenant_id: tenantId,
        grant_id: g.id,
        customer_id: g.customer_id,
        kind: 'EXPIRY' as const,
        amount: new Decimal(g.remaining).negated().toFixed(),
        balance_after: '0',
        event_id: null,
        change_key: null,
        usage_at: null,
        created_at: now,
      })),
    )
    await repo.setRemaining(trx, tenantId, new Map(expired.map((g) => [g.id, '0'])))
  }
  const gone = new Set(expired.map((g) => g.id))
  const alerts = expired.length > 0 ? await expiryAlerts(trx, tenantId, expired, now) : []
  return { open: grants.filter((g) => !gone.has(g.id)), alerts }
}

/**
 * The customer-level alerts an expiry crossed into: the total available before (with what the
 * expired grants had left) against the total after, at the customer's low-balance threshold and
 * at zero — once per crossing, like a draw-down. A grant's own threshold is not raised by its
 * expiry: the grant is gone, not running low.
 */
async function expiryAlerts(
  trx: Tx,
  tenantId: string,
  expired: readonly CreditGrantRow[],
  now: Date,
): Promise<CreditAlertRow[]> {
  const customers = [...new Set(expired.map((g) => g.customer_id))]
  const thresholds = new Map(
    (await repo.settingsOf(trx, tenantId, customers)).map((s) => [s.customer_id, s.low_balance_threshold]),
  )
  const due: NewAlert[] = []
  for (const customerId of customers) {
    const lost = sum(
      expired
        .filter((g) => g.customer_id === customerId && new Date(g.effective_at).getTime() <= now.getTime())
        .map((g) => g.remaining),
    )
    const after = sum(
      (await repo.grantsOfCustomer(trx, tenantId, customerId))
        .filter((g) => availableNow(g, now))
        .map((g) => g.remaining),
    )
    const before = new Decimal(after).plus(lost).toFixed()
    const base = { tenant_id: tenantId, customer_id: customerId, triggered_at: now, grant_id: null }
    const low = thresholds.get(customerId)
    if (low != null && new Decimal(low).gt(0) && crossedDown(low, before, after))
      due.push({ ...base, kind: 'LOW_BALANCE', threshold: low, balance: after })
    if (crossedDown('0', before, after)) due.push({ ...base, kind: 'ZERO_BALANCE', threshold: '0', balance: after })
  }
  return repo.insertAlerts(trx, due)
}

/**
 * The alerts a draw-down crossed into: per customer, the total over the grants it holds (its
 * low-balance threshold, and zero); per grant, the grant's own low-balance threshold.
 */
async function alertsFor(
  trx: Tx,
  tenantId: string,
  grants: readonly CreditGrantRow[],
  after: ReadonlyMap<string, string>,
  now: Date,
): Promise<CreditAlertRow[]> {
  const customers = [...new Set(grants.map((g) => g.customer_id))]
  const thresholds = new Map(
    (await repo.settingsOf(trx, tenantId, customers)).map((s) => [s.customer_id, s.low_balance_threshold]),
  )
  const due: NewAlert[] = []
  for (const customerId of customers) {
    const mine = grants.filter((g) => g.customer_id === customerId && availableNow(g, now))
    const before = sum(mine.map((g) => g.remaining))
    const total = sum(mine.map((g) => after.get(g.id) ?? g.remaining))
    const base = { tenant_id: tenantId, customer_id: customerId, triggered_at: now }
    const low = thresholds.get(customerId)
    if (low != null && new Decimal(low).gt(0) && crossedDown(low, before, total))
      due.push({ ...base, grant_id: null, kind: 'LOW_BALANCE', threshold: low, balance: total })
    if (crossedDown('0', before, total))
      due.push({ ...base, grant_id: null, kind: 'ZERO_BALANCE', threshold: '0', balance: total })
    for (const g of mine) {
      const threshold = g.low_balance_threshold
      const now_ = after.get(g.id)
      if (threshold == null || now_ === undefined || !new Decimal(threshold).gt(0)) continue
      if (crossedDown(threshold, g.remaining, now_))
        due.push({ ...base, grant_id: g.id, kind: 'LOW_BALANCE', threshold, balance: now_ })
    }
  }
  return repo.insertAlerts(trx, due)
}

/** Draws the charges from the customers' grants and writes the ledger; returns the alerts raised. */
export async function consume(
  { clock }: Pick<CreditDeps, 'clock'>,
  trx: Tx,
  tenantId: string,
  charges: readonly Charge[],
  /** The grants the caller locked already (through repo.lockGrants), as they stand now. */
  lockedAlready?: CreditGrantRow[],
): Promise<CreditAlertRow[]> {
  const payable = charges.filter((c) => new Decimal(c.amount).gt(0))
  if (payable.length === 0) return []
  const now = clock.now()
  const locked = (
    lockedAlready ??
    (await repo.lockGrants(
      trx,
      tenantId,
      payable.map((c) => c.customerId),
    ))
  ).filter((g) => new Decimal(g.remaining).gt(0))
  if (locked.length === 0) return []
  const { open, alerts } = await expireLocked(trx, tenantId, locked, now)
  if (open.length === 0) return alerts
  const { draws, remaining } = drawDown(open.map(openGrantOf), payable, now)
  if (draws.length === 0) return alerts
  await writeDraws(trx, tenantId, draws, now)
  const changed = new Map([...new Set(draws.map((d) => d.grantId))].map((id) => [id, remaining.get(id)!]))
  await repo.setRemaining(trx, tenantId, changed)
  return [...alerts, ...(await alertsFor(trx, tenantId, open, changed, now))]
}

function writeDraws(trx: Tx, tenantId: string, draws: readonly Draw[], now: Date) {
  return repo.appendLedger(
    trx,
    draws.map((d) => ({
      tenant_id: tenantId,
      grant_id: d.grantId,
      customer_id: d.customerId,
      kind: 'CONSUMPTION' as const,
      amount: new Decimal(d.amount).negated().toFixed(),
      balance_after: d.balanceAfter,
      event_id: d.eventId,
      change_key: d.changeKey,
      usage_at: d.ts,
      created_at: now,
    })),
  )
}

/** Raises alerts in the caller's transaction (credit.alert webhooks) and adds them to `into` for after commit. */
export async function raise(
  { onAlertsRaised }: Pick<CreditDeps, 'onAlertsRaised'>,
  trx: Tx,
  alerts: CreditAlertRow[],
  into: CreditAlertRow[],
): Promise<void> {
  if (alerts.length === 0) return
  into.push(...alerts)
  await onAlertsRaised(trx, alerts)
}
