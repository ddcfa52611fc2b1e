/**
 * Budget leases: the gateway's holds without a transaction per call. A process reserves a slice of
 * a customer's hard-limit headroom once (a flexible reservation: room for about `callsPerLease`
 * calls, at most half of what the limits leave) and holds each call's worst case against that
 * slice in memory, so a call under a hard budget usually goes out after cached lookups only.
 *
 * Why no call can pass a hard limit: the lease is an ordinary reservation row, counted by every
 * process's hard-limit checks for as long as it lives; each call held from it is at most its worst
 * case, and the lease's calls together hold at most the lease. The lease counts in full until it
 * is released, even while its calls' recorded usage already counts as spent (conservative: room is
 * counted twice for a moment, never not at all), and it is released only after every call it
 * held has finished and been recorded. A lease stops taking calls after `maxAgeMs` (a lowered
 * limit or a new budget is seen within that time) and when it cannot fit the next call; near the
 * limit leases get too small to take and calls are reserved one by one, exactly as before.
 *
 * A process that dies keeps its lease held until the reservation's expiry, like any reservation.
 */
import type { Logger } from '../logger.ts'
import type { Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'

/** The reservations a lease is (structurally the budgets service's reserve and release). */
interface LeaseReservations {
  reserve(
    tenant: Tenant,
    input: { customerId: string; amount: string; minAmount?: string | null; ttlSeconds?: number | null },
  ): Promise<{ granted: boolean; reservation: { id: string; amount: string } | null }>
  release(tenant: Tenant, reservationId: string): Promise<unknown>
}

/** One call's hold on a lease; `done` once the call has finished (its usage recorded, or not sent). */
export interface LeaseHold {
  readonly reservationId: string
  /** `recorded`: the call's usage is in the ledger (its hold stays taken); else the hold is given back. */
  done(recorded: boolean): void
}

export interface BudgetLeases {
  /**
   * A hold of `estimate` on this process's lease for the customer (taking a new lease when needed),
   * or null when no lease can be had (the call is then reserved on its own).
   */
  take(tenant: Tenant, customerId: string, estimate: Decimal): Promise<LeaseHold | null>
  /** Stops every lease and releases those with no call in flight; later calls get no lease (shutdown, after the last request). */
  close(): Promise<void>
}

/** How long a lease takes new calls: a lowered limit, a new budget or a changed plan counts within this. */
export const BUDGET_LEASE_MAX_AGE_MS = 2_000

export interface LeaseOptions {
  /** A new lease asks for room for this many calls like the one that takes it. */
  callsPerLease: number
  /** ... and takes it only if at least this many fit (else calls are reserved one by one). */
  minCallsPerLease: number
  /** A lease takes no new call after this long. */
  maxAgeMs: number
  /** The lease reservation's expiry (covers its last call's longest run). */
  ttlSeconds: number
}

interface Lease {
  tenant: Tenant
  key: string
  reservationId: string
  free: Decimal
  inFlight: number
  retired: boolean
  timer: ReturnType<typeof setTimeout>
}

export function createBudgetLeases(
  { budgets, logger }: { budgets: LeaseReservations; logger: Logger },
  options: LeaseOptions,
): BudgetLeases {
  const current = new Map<string, Lease>()
  const acquiring = new Map<string, Promise<boolean>>()
  const releasing = new Set<Promise<void>>()
  let closed = false

  function release(lease: Pick<Lease, 'tenant' | 'reservationId'>) {
    const done = budgets
      .release(lease.tenant, lease.reservationId)
      .then(
        () => undefined,
        (error: unknown) =>
          logger.error('gateway: budget lease not released; it lapses at its expiry', {
            tenantId: lease.tenant.id,
            reservationId: lease.reservationId,
            error: error instanceof Error ? error.message : String(error),
          }),
      )
      .finally(() => releasing.delete(done))
    releasing.add(done)
  }

  function retire(lease: Lease) {
    if (lease.retired) return
    lease.retired = true
    clearTimeout(lease.timer)
    if (current.get(lease.key) === lease) current.delete(lease.key)
    if (lease.inFlight === 0) release(lease)
  }

  async function acquire(tenant: Tenant, key: string, customerId: string, estimate: Decimal): Promise<boolean> {
    let result: Awaited<ReturnType<LeaseReservations['reserve']>>
    try {
      result = await budgets.reserve(tenant, {
        customerId,
        amount: estimate.times(options.callsPerLease).toFixed(),
        minAmount: estimate.times(options.minCallsPerLease).toFixed(),
        ttlSeconds: options.ttlSeconds,
      })
    } catch (error) {
      // Each waiting call then reserves on its own: one failed lease must not fail them all.
      logger.warn('gateway: budget lease not taken; calls are reserved one by one', {
        tenantId: tenant.id,
        customerId,
        error: error instanceof Error ? error.message : String(error),
      })
      return false
    }
    if (closed || !result.granted || !result.reservation) {
      if (result.granted && result.reservation) release({ tenant, reservationId: result.reservation.id })
      return false
    }
    const lease: Lease = {
      tenant,
      key,
      reservationId: result.reservation.id,
      free: new Decimal(result.reservation.amount),
      inFlight: 0,
      retired: false,
      timer: setTimeout(() => retire(lease), options.maxAgeMs),
    }
    lease.timer.unref()
    const previous = current.get(key)
    if (previous) retire(previous)
    current.set(key, lease)
    return true
  }

  function holdOn(lease: Lease, estimate: Decimal): LeaseHold {
    lease.free = lease.free.minus(estimate)
    lease.inFlight += 1
    let finished = false
    return {
      reservationId: lease.reservationId,
      done(recorded) {
        if (finished) return
        finished = true
        lease.inFlight -= 1
        if (!recorded) lease.free = lease.free.plus(estimate)
        if (lease.retired && lease.inFlight === 0) release(lease)
      },
    }
  }

  return {
    async take(tenant, customerId, estimate) {
      if (closed) return null
      const key = `${tenant.id}\u0000${customerId}`
      // At most two leases asked for (the one being taken by another call, then one of its own);
      // a call that fits on neither is reserved on its own.
      for (let attempt = 0; ; attempt++) {
        const lease = current.get(key)
        if (lease && lease.free.greaterThanOrEqualTo(estimate)) return holdOn(lease, estimate)
        if (attempt === 2) return null
        if (lease) retire(lease)
        let pending = acquiring.get(key)
        if (!pending) {
          pending = acquire(tenant, key, customerId, estimate).finally(() => acquiring.delete(key))
          acquiring.set(key, pending)
        }
        if (!(await pending)) return null
      }
    },
    async close() {
      closed = true
      for (const lease of [...current.values()]) retire(lease)
      // A lease still being taken is released as soon as it is granted (acquire sees `closed`).
      await Promise.all(acquiring.values())
      await Promise.all([...releasing])
    },
  }
}
