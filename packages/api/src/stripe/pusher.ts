/**
 * The Stripe pusher: every API process runs one. A round leases (customer, dimension) groups with
 * work (SKIP LOCKED, so processes share the work), plans their new outbox rows into pushes
 * (push-plan.ts) and sends what is due (push-send.ts), a few groups at a time.
 */
import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import { withJobId, type Logger } from '../logger.ts'
import { planGroup } from './push-plan.ts'
import { emptyRound, type PushContext, type PushRound, type RoundClients, type TrueUpSource } from './push-round.ts'
import { sendDue } from './push-send.ts'
import { releaseLease } from './repository/leases.ts'
import { claimGroups } from './repository/pushes.ts'
import { planCredits, sendCredits } from './credit-push.ts'
import { claimCreditStates, type CreditStateKey } from './repository/credit-pushes.ts'
import type { PushGroup } from './repository/outbox.ts'
import { markClosedPeriods } from './true-ups.ts'
import type { StripeService } from './service.ts'

export interface PusherOptions {
  intervalMs: number
  /** How long a claim on a (customer, meter) group lasts; must exceed the Stripe call timeout. */
  leaseMs: number
  /** Groups worked on at once (each group: one Stripe call at a time). */
  concurrency: number
  backoffBaseMs: number
  backoffMaxMs: number
  /**
   * Attempts of one push before it ends FAILED (gave up) instead of waiting for another: with
   * backoff doubling from backoffBaseMs up to backoffMaxMs, this bounds how long a push can stay
   * PENDING. Default 16 (with 1 s … 300 s: at most about 44 minutes of backoff).
   */
  maxAttempts?: number
  /** Identifies this process's claims; a restarted pusher gets a new one. */
  owner?: string
}

export interface StripePusher {
  /** One round: claim groups with work, fold new outbox rows into pushes, send what is due. */
  runOnce(): Promise<PushRound>
  start(): void
  /** Finishes the round in progress and releases its claims. */
  stop(): Promise<void>
  /**
   * Simulates a crash: nothing after this point is recorded (results of calls in flight are
   * lost, claims are not released and expire after leaseMs).
   */
  kill(): void
}

export function createStripePusher({
  db,
  clock,
  logger,
  stripe,
  trueUps = null,
  options,
}: {
  db: Db
  clock: Clock
  logger: Logger
  /** Tenants' Stripe clients and the alerts a failed or expired push raises. */
  stripe: Pick<StripeService, 'clientFor' | 'alerts'>
  /** Where minimum-commitment true-ups come from (the rating domain); absent: none are sent. */
  trueUps?: TrueUpSource | null
  options: PusherOptions
}): StripePusher {
  let killed = false
  let timer: NodeJS.Timeout | null = null
  let running: Promise<unknown> | null = null

  const ctx: PushContext = {
    db,
    clock,
    logger,
    alerts: stripe.alerts,
    trueUps,
    owner: options.owner ?? `pusher-${randomUUID()}`,
    leaseMs: options.leaseMs,
    maxAttempts: options.maxAttempts ?? 16,
    backoff(attempts) {
      const base = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.min(attempts - 1, 20))
      return Math.round(base / 2 + (Math.random() * base) / 2)
    },
    killed: () => killed,
  }

  async function work(group: PushGroup, round: PushRound, clients: RoundClients) {
    try {
      await planGroup(ctx, group, round)
      await sendDue(ctx, group, round, clients)
    } catch (error) {
      if (!killed)
        logger.error('stripe push failed', {
          tenantId: group.tenant_id,
          customerId: group.customer_id,
          error: error instanceof Error ? error.message : String(error),
        })
    } finally {
      if (!killed) await releaseLease(db, 'stripe_push_state', group, ctx.owner).catch(() => undefined)
    }
  }

  async function workCredits(key: CreditStateKey, round: PushRound, clients: RoundClients) {
    try {
      await planCredits(ctx, key, round)
      await sendCredits(ctx, key, round, clients)
    } catch (error) {
      if (!killed)
        logger.error('stripe credit push failed', {
          tenantId: key.tenant_id,
          customerId: key.customer_id,
          error: error instanceof Error ? error.message : String(error),
        })
    } finally {
      if (!killed) await releaseLease(db, 'stripe_credit_state', key, ctx.owner).catch(() => undefined)
    }
  }

  async function runOnce(): Promise<PushRound> {
    const round = emptyRound()
    if (killed) return round
    const now = clock.now()
    const groups = await claimGroups(
      db,
      ctx.owner,
      now,
      new Date(now.getTime() + options.leaseMs),
      options.concurrency * 4,
    )
    round.groups = groups.length
    let next = 0
    // One client per tenant per round: decrypting the key and building a client (and its
    // keep-alive agent) per group would dominate the cost of a round.
    const built = new Map<string, ReturnType<RoundClients>>()
    const clients: RoundClients = (tenantId) => {
      let client = built.get(tenantId)
      if (!client) built.set(tenantId, (client = stripe.clientFor(tenantId)))
      return client
    }
    const worker = async () => {
      while (next < groups.length && !killed) await work(groups[next++]!, round, clients)
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, groups.length) }, worker))
    if (killed) return round
    // Then the credit grants that mirror applied credits (credit-push.ts), per customer and period,
    // and the true-ups of periods that closed (true-ups.ts marks their states dirty first).
    await markClosedPeriods(ctx).catch((error: unknown) =>
      logger.error('stripe true-up scan failed', { error: error instanceof Error ? error.message : String(error) }),
    )
    if (killed) return round
    const creditNow = clock.now()
    const states = await claimCreditStates(
      db,
      ctx.owner,
      creditNow,
      new Date(creditNow.getTime() + options.leaseMs),
      options.concurrency * 4,
    )
    round.groups += states.length
    let nextState = 0
    const creditWorker = async () => {
      while (nextState < states.length && !killed) await workCredits(states[nextState++]!, round, clients)
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, states.length) }, creditWorker))
    return round
  }

  const schedule = () => {
    if (killed) return
    timer = setTimeout(() => {
      running = withJobId(logger, 'stripe-push', runOnce)
        .catch((error: unknown) =>
          logger.error('stripe pusher round failed', { error: error instanceof Error ? error.message : String(error) }),
        )
        .finally(() => {
          running = null
          if (timer) schedule()
        })
    }, options.intervalMs)
    timer.unref?.()
  }

  return {
    runOnce,
    start() {
      if (timer || killed) return
      schedule()
    },
    async stop() {
      if (timer) clearTimeout(timer)
      timer = null
      await running
    },
    kill() {
      killed = true
      if (timer) clearTimeout(timer)
      timer = null
    },
  }
}
