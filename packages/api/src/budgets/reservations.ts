/**
 * Reservations: holding an amount against the customer's hard limits and credits before a call
 * (reserve, batched and serialized per customer), releasing it, what active ones hold, and the ingest step
 * that checks the reservations events name.
 */
import { randomBytes } from 'node:crypto'
import type { BudgetReservationRow, Tenant } from '../db/types.ts'
import { AMOUNT_SCALE, Decimal, ZERO } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import type { EventError, ValidEvent } from '../usage/validation.ts'
import { serialBatches } from '../shared/serial-batches.ts'
import { applyCredits, decide, largestFit, readCredits, type CreditsHeld } from './check.ts'
import { BUDGET_LIMITS, checkCustomerId, parseAmount } from './input.ts'
import * as repo from './repository.ts'
import type { BudgetDeps, BudgetService, BudgetView, ReservationResult } from './types.ts'
import { view } from './views.ts'

const RESERVATION_ID = /^rsv_[A-Za-z0-9_-]{1,60}$/

/** One caller's reservation, validated, waiting for its customer's next batch. */
interface ReservationRequest {
  tenantId: string
  customerId: string
  amount: Decimal
  /** A flexible reservation (the gateway's leases): whatever fits of `amount`, if at least this. */
  minAmount: Decimal | null
  ttlSeconds: number
}

/**
 * A flexible reservation holds at most this share of what the customer's hard limits leave, so
 * that processes leasing budget side by side leave room for each other, and leases shrink as the
 * limit nears (until they are too small to take and calls are reserved one by one).
 */
const FLEXIBLE_SHARE = new Decimal('0.5')

/**
 * reserveBudget and the gateway's holds. Reservations of one customer serialize on its budget
 * locks, so concurrent ones are coalesced (shared/serial-batches.ts): one transaction locks the
 * customer's budgets and credits once, reads what they hold once, and decides the waiting
 * requests in arrival order, each seeing the ones granted before it — the same answers as one
 * transaction each, in that order, at one lock wait and ~6 statements for the lot.
 */
export function createReservations(
  deps: Pick<BudgetDeps, 'db' | 'clock' | 'prepaidGate'>,
): Pick<BudgetService, 'reserve'> {
  const batches = serialBatches<ReservationRequest, ReservationResult>((_, requests) => reserveMany(deps, requests))
  return {
    async reserve(tenant, input) {
      checkCustomerId(input.customerId)
      const amount = parseAmount(input.amount, 'amount', { allowZero: false })
      const ttlSeconds = input.ttlSeconds ?? BUDGET_LIMITS.reservationDefaultTtlSeconds
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > BUDGET_LIMITS.reservationMaxTtlSeconds) {
        throw badInput(`ttlSeconds must be between 1 and ${BUDGET_LIMITS.reservationMaxTtlSeconds}`, 'ttlSeconds')
      }
      const minAmount = input.minAmount == null ? null : parseAmount(input.minAmount, 'minAmount', { allowZero: false })
      if (minAmount?.greaterThan(amount)) throw badInput('minAmount must not be more than amount', 'minAmount')
      const request = { tenantId: tenant.id, customerId: input.customerId, amount, minAmount, ttlSeconds }
      return batches.run(`${tenant.id}\u0000${input.customerId}`, request)
    },
  }
}

/**
 * What a flexible request takes: `amount`, or FLEXIBLE_SHARE of what is left when that is less;
 * null (refused) when that share is under `minAmount`, so a lease never takes the last of the room
 * and calls near the limit are reserved one by one.
 */
function flexibleAmount(
  request: ReservationRequest,
  views: readonly BudgetView[],
  credits: CreditsHeld | null,
): Decimal | null {
  const fit = largestFit(views, credits)
  if (fit === null) return request.amount
  const share = fit.times(FLEXIBLE_SHARE).toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_DOWN)
  if (share.lessThan(request.minAmount!)) return null
  return Decimal.min(request.amount, share)
}

/** Requests of one customer (one batch), decided in order in one transaction. */
async function reserveMany(
  deps: Pick<BudgetDeps, 'db' | 'clock' | 'prepaidGate'>,
  requests: readonly ReservationRequest[],
): Promise<ReservationResult[]> {
  const { tenantId, customerId } = requests[0]!
  const now = deps.clock.now()
  return deps.db.transaction().execute(async (trx) => {
    // Locking the customer's budgets serializes reservations against them across processes.
    const budgets = await repo.lockBudgetsOfCustomer(trx, tenantId, customerId)
    const views = await view(trx, budgets, now)
    // Then the customer's credit grants (lock order: budgets, then credits).
    const credits = await readCredits(deps, trx, tenantId, customerId, now, trx)
    // The views and credits as they read once `held` more is reserved (the batch's grants so far).
    const holding = (held: Decimal) => ({
      views: held.isZero() ? views : views.map((v) => ({ ...v, reserved: held.plus(v.reserved).toFixed() })),
      credits: credits && { ...credits, reserved: held.plus(credits.reserved).toFixed() },
    })
    let held = ZERO
    const decided = requests.map((request) => {
      const before = holding(held)
      const flexible = request.minAmount ? flexibleAmount(request, before.views, before.credits) : request.amount
      const amount = flexible ?? request.minAmount!
      const check = applyCredits(decide(before.views, amount), before.credits, amount)
      if (!check.allowed || flexible === null) return { check: { ...check, allowed: false }, row: null }
      held = held.plus(amount)
      const row = {
        id: 'rsv_' + randomBytes(12).toString('base64url'),
        tenant_id: tenantId,
        customer_id: customerId,
        amount: amount.toFixed(),
        created_at: now,
        expires_at: new Date(now.getTime() + request.ttlSeconds * 1000),
      }
      // What is left once this one holds its amount (what a fresh read after its insert would show).
      const after = holding(held)
      return { check: { ...applyCredits(decide(after.views, ZERO), after.credits, ZERO), allowed: true }, row }
    })
    const rows = decided.flatMap((d) => (d.row ? [d.row] : []))
    const inserted = new Map((await repo.insertReservations(trx, rows)).map((r) => [r.id, r]))
    return decided.map(({ check, row }): ReservationResult => {
      if (!row) return { granted: false, reservation: null, check }
      return { granted: true, reservation: inserted.get(row.id)!, check }
    })
  })
}

export async function release(
  { db, clock }: Pick<BudgetDeps, 'db' | 'clock'>,
  tenant: Tenant,
  reservationId: string,
): Promise<BudgetReservationRow | null> {
  if (!RESERVATION_ID.test(reservationId)) throw badInput('not a reservation id (rsv_…)', 'id')
  return (await repo.releaseReservation(db, tenant.id, reservationId, clock.now())) ?? null
}

export async function checkReservations(
  { db }: Pick<BudgetDeps, 'db'>,
  tenant: Tenant,
  events: readonly ValidEvent[],
): Promise<(EventError | null)[]> {
  const ids = events.map((e) => e.reservationId).filter((id): id is string => !!id)
  if (ids.length === 0) return events.map(() => null)
  const found = new Map((await repo.findReservations(db, tenant.id, ids)).map((r) => [r.id, r]))
  return events.map((event): EventError | null => {
    if (!event.reservationId) return null
    const reservation = found.get(event.reservationId)
    if (!reservation || reservation.customer_id !== event.customerId) {
      return {
        code: 'INVALID_INPUT',
        message: `no reservation "${event.reservationId}" for customer "${event.customerId}"`,
        field: 'reservationId',
      }
    }
    if (reservation.settled_event_id !== null && reservation.settled_event_id !== event.id) {
      return {
        code: 'INVALID_INPUT',
        message: `reservation "${event.reservationId}" was already settled by event "${reservation.settled_event_id}"`,
        field: 'reservationId',
      }
    }
    if (reservation.settled_at !== null && reservation.settled_event_id === null) {
      return {
        code: 'INVALID_INPUT',
        message: `reservation "${event.reservationId}" was released`,
        field: 'reservationId',
      }
    }
    return null
  })
}
