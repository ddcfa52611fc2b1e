/**
 * Reservations: holding an amount against the customer's hard limits and credits before a call
 * (reserve, serialized per customer), releasing it, what active ones hold, and the ingest step
 * that checks the reservations events name.
 */
import { randomBytes } from 'node:crypto'
import type { BudgetReservationRow, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import type { EventError, ValidEvent } from '../usage/validation.ts'
import { decide, withCredits } from './check.ts'
import { BUDGET_LIMITS, checkCustomerId, parseAmount } from './input.ts'
import * as repo from './repository.ts'
import type { BudgetDeps, BudgetService, ReservationResult } from './types.ts'
import { view } from './views.ts'

const RESERVATION_ID = /^rsv_[A-Za-z0-9_-]{1,60}$/

export async function reserve(
  deps: Pick<BudgetDeps, 'db' | 'clock' | 'prepaidGate'>,
  tenant: Tenant,
  input: Parameters<BudgetService['reserve']>[1],
): Promise<ReservationResult> {
  const { db, clock } = deps
  checkCustomerId(input.customerId)
  const amount = parseAmount(input.amount, 'amount', { allowZero: false })
  const ttl = input.ttlSeconds ?? BUDGET_LIMITS.reservationDefaultTtlSeconds
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > BUDGET_LIMITS.reservationMaxTtlSeconds) {
    throw badInput(`ttlSeconds must be between 1 and ${BUDGET_LIMITS.reservationMaxTtlSeconds}`, 'ttlSeconds')
  }
  const now = clock.now()
  return db.transaction().execute(async (trx) => {
    // Locking the customer's budgets serializes reservations against them across processes.
    const budgets = await repo.lockBudgetsOfCustomer(trx, tenant.id, input.customerId)
    // Then the customer's credit grants (lock order: budgets, then credits).
    const check = await withCredits(
      deps,
      trx,
      tenant.id,
      input.customerId,
      decide(await view(trx, budgets, now), amount),
      amount,
      now,
      trx,
    )
    if (!check.allowed) return { granted: false, reservation: null, check }
    const reservation = await repo.insertReservation(trx, {
      id: 'rsv_' + randomBytes(12).toString('base64url'),
      tenant_id: tenant.id,
      customer_id: input.customerId,
      amount: amount.toFixed(),
      created_at: now,
      expires_at: new Date(now.getTime() + ttl * 1000),
    })
    const after = await withCredits(
      deps,
      trx,
      tenant.id,
      input.customerId,
      decide(await view(trx, budgets, now), new Decimal(0)),
      new Decimal(0),
      now,
    )
    return { granted: true, reservation, check: { ...after, allowed: true } }
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
