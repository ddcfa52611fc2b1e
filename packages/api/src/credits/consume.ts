/**
 * Prepaid credit arithmetic, pure: which grants pay for a charge and in what order, how a lowered
 * bill is refunded, and which alert thresholds a draw-down crosses. Exact decimals in and out; the
 * service (credits/locked.ts, follow.ts) feeds it locked rows and writes what it returns to the ledger.
 */
import type { CreditScopeJson } from '../db/types.ts'
import { Decimal, ZERO } from '../money/decimal.ts'

export interface OpenGrant {
  id: string
  customerId: string
  /** What is left of the grant now (the ledger's sum for it). */
  remaining: string
  /** 0-100, lower is drawn first (Stripe's convention for billing credit grants). */
  priority: number
  effectiveAt: Date
  expiresAt: Date | null
  createdAt: Date
  scope: CreditScopeJson | null
}

/** A billed amount to pay from credits: a new event, or a billed change that raised a bill. */
export interface Charge {
  customerId: string
  eventId: string
  /** For billed changes: the change's key (BilledChange.key). */
  changeKey: string | null
  /** When the usage happened: charges are paid in this order. */
  ts: Date
  amount: string
  /** The event's canonical model (else the model as sent), matched against the scope's globs. */
  model: string
  feature: string | null
}

export interface Draw {
  grantId: string
  customerId: string
  eventId: string
  changeKey: string | null
  ts: Date
  /** Positive: what the grant paid. */
  amount: string
  /** The grant's remaining amount after this draw. */
  balanceAfter: string
}

/** The order grants are drawn in: priority, then the soonest expiry (none: last), then the oldest grant. */
export function drawOrder(a: OpenGrant, b: OpenGrant): number {
  if (a.priority !== b.priority) return a.priority - b.priority
  const ax = a.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY
  const bx = b.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY
  if (ax !== bx) return ax < bx ? -1 : 1
  const at = a.createdAt.getTime()
  const bt = b.createdAt.getTime()
  if (at !== bt) return at - bt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** `*` matches any run of characters; everything else literally. Case-insensitive, like model names. */
function globMatches(glob: string, value: string): boolean {
  const pattern = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  return new RegExp(`^${pattern}$`, 'i').test(value)
}

function inScope(scope: CreditScopeJson | null, charge: Pick<Charge, 'model' | 'feature'>): boolean {
  if (!scope) return true
  if (scope.models?.some((glob) => globMatches(glob, charge.model))) return true
  if (charge.feature !== null && scope.features?.includes(charge.feature)) return true
  return false
}

/**
 * Whether a grant pays for a charge processed at `now`: the customer's, in force now (effective,
 * not expired) and in scope. In force when the bill is written, not when the usage happened: a
 * top-up pays for a call made a second before it that arrives a second after.
 */
function covers(grant: OpenGrant, charge: Charge, now: Date): boolean {
  if (grant.customerId !== charge.customerId) return false
  if (grant.effectiveAt.getTime() > now.getTime()) return false
  if (grant.expiresAt && grant.expiresAt.getTime() <= now.getTime()) return false
  return inScope(grant.scope, charge)
}

/** Event order: by the usage's own time, then by event id (then change key) for a stable order. */
function chargeOrder(a: Charge, b: Charge): number {
  const d = a.ts.getTime() - b.ts.getTime()
  if (d !== 0) return d
  if (a.eventId !== b.eventId) return a.eventId < b.eventId ? -1 : 1
  const ak = a.changeKey ?? ''
  const bk = b.changeKey ?? ''
  return ak < bk ? -1 : ak > bk ? 1 : 0
}

/**
 * Pays the charges, in event order, from the grants that cover each, in draw order. What no grant
 * covers stays owed (it is simply not drawn). Returns the draws and each grant's remaining amount.
 */
export function drawDown(
  grants: readonly OpenGrant[],
  charges: readonly Charge[],
  now: Date,
): { draws: Draw[]; remaining: Map<string, string> } {
  const ordered = [...grants].sort(drawOrder)
  const left = new Map(ordered.map((g) => [g.id, new Decimal(g.remaining)]))
  const draws: Draw[] = []
  for (const charge of [...charges].sort(chargeOrder)) {
    let owed = new Decimal(charge.amount)
    if (owed.lessThanOrEqualTo(0)) continue
    for (const grant of ordered) {
      if (owed.isZero()) break
      const available = left.get(grant.id)!
      if (available.isZero() || !covers(grant, charge, now)) continue
      const paid = Decimal.min(available, owed)
      const after = available.minus(paid)
      left.set(grant.id, after)
      owed = owed.minus(paid)
      draws.push({
        grantId: grant.id,
        customerId: charge.customerId,
        eventId: charge.eventId,
        changeKey: charge.changeKey,
        ts: charge.ts,
        amount: paid.toFixed(),
        balanceAfter: after.toFixed(),
      })
    }
  }
  return { draws, remaining: new Map([...left].map(([id, d]) => [id, d.toFixed()])) }
}

/** What an event drew from one grant so far (consumptions minus reversals), with the last entry's id. */
export interface EventDraw {
  grantId: string
  net: string
  lastEntryId: number
}

/**
 * A lowered bill gives back credits: up to what the event drew, last drawn grant first (the draw
 * undone in reverse). The part of the reduction beyond what credits paid lowers what is owed.
 */
export function refund(drawn: readonly EventDraw[], reduction: string): { grantId: string; amount: string }[] {
  let left = new Decimal(reduction)
  const back: { grantId: string; amount: string }[] = []
  for (const d of [...drawn].sort((a, b) => b.lastEntryId - a.lastEntryId)) {
    if (left.lessThanOrEqualTo(0)) break
    const net = new Decimal(d.net)
    if (net.lessThanOrEqualTo(0)) continue
    const amount = Decimal.min(net, left)
    back.push({ grantId: d.grantId, amount: amount.toFixed() })
    left = left.minus(amount)
  }
  return back
}

/** A balance crossed a threshold downwards: above it before, at or below it after. */
export function crossedDown(threshold: string, before: string, after: string): boolean {
  return new Decimal(before).greaterThan(threshold) && new Decimal(after).lessThanOrEqualTo(threshold)
}

export function sum(values: Iterable<string>): string {
  let total = ZERO
  for (const v of values) total = total.plus(v)
  return total.toFixed()
}
