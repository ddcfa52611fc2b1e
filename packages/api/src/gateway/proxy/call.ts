/**
 * One proxied call's state, created per request and never shared: its budget hold (settled by the
 * call's recorded usage, else released before the client has the answer, so a retry finds the
 * budget free again), the upstream abort (the client left, or the provider went quiet for
 * GATEWAY_TIMEOUT_MS), and answering with the provider's error shape.
 */
import type { ServerResponse } from 'node:http'
import type { Tenant } from '../../db/types.ts'
import type { LeaseHold } from '../budget-leases.ts'
import type { GatewayDeps } from './deps.ts'
import type { ProviderSpec } from './providers.ts'
import type { Recorded } from './recorder.ts'

export class UpstreamTimeout extends Error {
  constructor(ms: number) {
    super(`the provider did not answer within ${ms} ms`)
    this.name = 'UpstreamTimeout'
  }
}

export class ClientGone extends Error {
  constructor() {
    super('the client disconnected')
    this.name = 'ClientGone'
  }
}

export interface Call {
  /** Releases any hold, then answers with the provider's error shape (or cuts a response already begun). */
  fail(status: number, type: string, message: string): Promise<void>
  /** A budget reservation of its own now holds this call's worst case (its usage event settles it). */
  hold(tenant: Tenant, reservationId: string): void
  /** This process's budget lease holds the call's worst case (given back unless its usage is recorded). */
  holdOnLease(hold: LeaseHold): void
  /** The call's own reservation, which its usage event names; null when none (or held on a lease). */
  heldId(): string | null
  /** What recording the call's usage did (a settled reservation is not released; a lease hold in the ledger stays taken). */
  settled(value: Recorded): void
  /** Releases the hold unless the call's usage settled it; a failure is logged (the hold lapses at its expiry). */
  releaseHold(): Promise<void>
  /** (Re)starts the idle timer: the upstream call is aborted after GATEWAY_TIMEOUT_MS without progress. */
  armTimeout(): void
  stopTimeout(): void
  readonly signal: AbortSignal
  clientGone(): boolean
}

export function startCall(
  { config, logger, budgets }: Pick<GatewayDeps, 'config' | 'logger' | 'budgets'>,
  spec: ProviderSpec,
  res: ServerResponse,
): Call {
  let held: { tenant: Tenant; id: string } | null = null
  let leased: LeaseHold | null = null
  let recorded: Recorded = { inLedger: false, settledReservation: false }
  const releaseHold = async (): Promise<void> => {
    // A lease hold ends with the call either way: kept as taken when the usage is in the ledger.
    leased?.done(recorded.inLedger)
    leased = null
    if (!held || recorded.settledReservation) return
    const { tenant, id } = held
    held = null
    await budgets?.release(tenant, id).catch((error: unknown) => {
      logger.error('gateway: budget reservation not released; it lapses at its expiry', {
        tenantId: tenant.id,
        reservationId: id,
        error: error instanceof Error ? error.message : String(error),
      })
    })
  }

  // The client may leave at any time: stop the upstream call (the provider stops generating and
  // billing) and record what was seen.
  const upstreamAbort = new AbortController()
  let clientGone = false
  res.on('close', () => {
    if (res.writableFinished) return
    clientGone = true
    upstreamAbort.abort(new ClientGone())
  })
  let idleTimer: ReturnType<typeof setTimeout> | undefined

  return {
    async fail(status, type, message) {
      await releaseHold()
      if (res.headersSent) return void res.destroy()
      const body = JSON.stringify(spec.errorBody(type, message))
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    },
    hold(tenant, id) {
      held = { tenant, id }
    },
    holdOnLease(hold) {
      leased = hold
    },
    heldId: () => held?.id ?? null,
    settled(value) {
      recorded = value
    },
    releaseHold,
    armTimeout() {
      clearTimeout(idleTimer)
      idleTimer = setTimeout(
        () => upstreamAbort.abort(new UpstreamTimeout(config.GATEWAY_TIMEOUT_MS)),
        config.GATEWAY_TIMEOUT_MS,
      )
    },
    stopTimeout: () => clearTimeout(idleTimer),
    signal: upstreamAbort.signal,
    clientGone: () => clientGone,
  }
}
