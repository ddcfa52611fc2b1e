/**
 * Credits on Stripe's invoice: Stripe billing credit grants that add up, per customer, billing
 * period (UTC month) and grant category, to what our credit ledger applied to that period's usage.
 *
 * - Ingest and billed changes mark (customer, period) dirty in the transaction that consumes
 *   credits (pipeline step `stripe.credits`, after `credits.consume`).
 * - The pusher leases dirty states, reads the ledger, and plans GRANT pushes (a new Stripe credit
 *   grant for what was applied since) and VOID pushes (when a reversal lowered what was applied
 *   below what Stripe holds: the newest grants are voided, and the difference granted again).
 * - Pushes are recorded before the call and sent one at a time in order, with an Idempotency-Key;
 *   a retry first looks the grant up by its `burnrate_push` metadata, so a grant Stripe made for a
 *   lost answer is adopted, never made twice.
 *
 * planCreditTargets and planCreditActions are the arithmetic (pure); the rest is the use case.
 */
import { createHash } from 'node:crypto'
import type { Executor } from '../db/database.ts'
import type { CreditCategory } from '../db/column-types.ts'
import type { BilledChangeBatch, IngestBatch, StripeAccountRead } from '../usage/pipeline.ts'
import { Decimal } from '../money/decimal.ts'
import { classifyStripeError, describeStripeError, isReplayedError } from './client.ts'
import type { PushContext, PushRound, RoundClients } from './push-round.ts'
import { planningAccount, queueingAccount, stripeCustomerIdOf } from './repository/accounts.ts'
import {
  appliedByCategory,
  cancelCreditPush,
  creditPushByIdentifier,
  creditPushesOf,
  customersWithGrants,
  finishCreditPush,
  firstPendingCreditPush,
  insertCreditPushes,
  lockCreditState,
  markCreditStatesDirty,
  recordCreditAttempt,
  saveCreditState,
  scheduleCreditRetry,
  type CreditPushRow,
  type CreditStateKey,
} from './repository/credit-pushes.ts'
import { renewLease } from './repository/leases.ts'
import { hasTrueUp, sendTrueUp, trueUpToPlan } from './true-ups.ts'
import { UNIT_AMOUNT_DECIMAL } from './units.ts'

/** Minor units per major unit, from the account's reporting units (1 unit = UNIT_AMOUNT_DECIMAL minor). */
const minorPerMajorOf = (unitsPerMajor: string) => new Decimal(unitsPerMajor).times(UNIT_AMOUNT_DECIMAL).toFixed()

const CATEGORIES: readonly CreditCategory[] = ['PAID', 'PROMOTIONAL']

/** The billing period (UTC calendar month) an instant falls in. */
function creditPeriodOf(at: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1))
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1))
  return { start, end }
}

/** An amount in minor units, rounded half up (as Stripe rounds an invoice line). */
export function toMinor(amount: Decimal | string, perMajor: string): bigint {
  return BigInt(new Decimal(amount).times(perMajor).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0))
}

/**
 * What Stripe's grants for a period must add up to, per category: the applied total rounded to
 * minor units once, PAID rounded on its own and PROMOTIONAL the rest, so the categories add up to
 * the rounded total exactly.
 */
export function planCreditTargets(
  applied: ReadonlyMap<CreditCategory, string>,
  perMajor: string,
): Record<CreditCategory, bigint> {
  const paid = new Decimal(applied.get('PAID') ?? '0')
  const promo = new Decimal(applied.get('PROMOTIONAL') ?? '0')
  const total = toMinor(paid.plus(promo), perMajor)
  const clamp = (x: bigint) => (x < 0n ? 0n : x)
  const paidMinor = clamp(toMinor(paid, perMajor) > total ? total : toMinor(paid, perMajor))
  return { PAID: paidMinor, PROMOTIONAL: clamp(total - paidMinor) }
}

export type CreditAction =
  | { type: 'grant'; category: CreditCategory; amount: bigint }
  | { type: 'void'; category: CreditCategory; of: string; amount: bigint }
  | { type: 'cancel'; of: string }

/**
 * From the state's pushes so far and the targets, what to do so the live grants add up to each
 * target: grant the shortfall; for an excess, take back the newest live grants (a never-attempted
 * one is cancelled, any other voided at Stripe) and grant back what was taken beyond the excess.
 * A push that gave up after its attempts may have reached Stripe (its answer lost): it counts as
 * made until retryStripeCreditPushes settles it.
 */
export function planCreditActions(
  pushes: readonly Pick<
    CreditPushRow,
    'identifier' | 'kind' | 'category' | 'amount_minor' | 'voids' | 'status' | 'attempts' | 'gave_up'
  >[],
  targets: Record<CreditCategory, bigint>,
): CreditAction[] {
  const inForce = (p: (typeof pushes)[number]) =>
    p.status === 'PENDING' || p.status === 'SENT' || (p.status === 'FAILED' && p.gave_up)
  const voided = new Set(pushes.filter((p) => p.kind === 'VOID' && inForce(p)).map((p) => p.voids))
  const actions: CreditAction[] = []
  for (const category of CATEGORIES) {
    const live = pushes.filter(
      (p) => p.kind === 'GRANT' && p.category === category && inForce(p) && !voided.has(p.identifier),
    )
    let held = live.reduce((s, p) => s + BigInt(p.amount_minor), 0n)
    const target = targets[category]
    for (let i = live.length - 1; i >= 0 && held > target; i--) {
      const push = live[i]!
      const amount = BigInt(push.amount_minor)
      actions.push(
        push.status === 'PENDING' && push.attempts === 0
          ? { type: 'cancel', of: push.identifier }
          : { type: 'void', category, of: push.identifier, amount },
      )
      held -= amount
    }
    if (held < target) actions.push({ type: 'grant', category, amount: target - held })
  }
  return actions
}

function creditPushIdentifier(key: CreditStateKey, seq: number): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([key.tenant_id, key.customer_id, key.period_start.toISOString(), seq]))
    .digest('hex')
    .slice(0, 32)
  return `brc_${key.period_start.toISOString().slice(0, 7).replace('-', '')}_${seq}_${hash}`
}

/** Marks the (customer, period) of changed usage dirty when the tenant bills through Stripe. */
async function markDirty(
  trx: Executor,
  tenantId: string,
  usage: readonly { customerId: string; ts: Date }[],
  earlier: StripeAccountRead | undefined,
): Promise<void> {
  if (usage.length === 0) return
  // The account as `stripe.outbox` read it in this transaction, under the setup lock; else read here.
  const account = earlier ? earlier.account : await queueingAccount(trx, tenantId)
  if (!account?.price_id) return
  const withGrants = await customersWithGrants(trx, tenantId, [...new Set(usage.map((u) => u.customerId))])
  const keys = new Map<string, CreditStateKey>()
  for (const u of usage) {
    if (!withGrants.has(u.customerId)) continue
    const { start } = creditPeriodOf(u.ts)
    keys.set(`${u.customerId}\u0001${start.getTime()}`, {
      tenant_id: tenantId,
      customer_id: u.customerId,
      period_start: start,
    })
  }
  await markCreditStatesDirty(trx, [...keys.values()])
}

/** Ingest step `stripe.credits` (usage/pipeline.ts), after `credits.consume`. */
export async function markCreditsIngested(
  trx: Executor,
  { tenant, inserted, stripeAccount }: IngestBatch,
): Promise<void> {
  await markDirty(
    trx,
    tenant.id,
    inserted.filter((e) => e.status === 'PRICED').map((e) => ({ customerId: e.customer_id, ts: new Date(e.ts) })),
    stripeAccount,
  )
}

/** Billed-change step `stripe.credits`: a correction may draw more credit or give some back. */
export async function markCreditsChanged(
  trx: Executor,
  { tenantId, changes, stripeAccount }: BilledChangeBatch,
): Promise<void> {
  await markDirty(
    trx,
    tenantId,
    changes.map((c) => ({ customerId: c.customerId, ts: c.ts })),
    stripeAccount,
  )
}

/** Plans the state's pushes from the ledger, in one transaction, while this process holds the lease. */
export async function planCredits(ctx: PushContext, key: CreditStateKey, round: PushRound): Promise<void> {
  const now = ctx.clock.now()
  // A closed period's minimum true-up (true-ups.ts) is read before the transaction: it reads the ledger.
  const units = (await planningAccount(ctx.db, key.tenant_id))?.units_per_major
  const trueUp = units
    ? await trueUpToPlan(ctx, key, await creditPushesOf(ctx.db, key), (amount) =>
        toMinor(amount, minorPerMajorOf(units)),
      )
    : null
  await ctx.db.transaction().execute(async (trx) => {
    const state = await lockCreditState(trx, key)
    if (!state?.dirty || state.lease_owner !== ctx.owner) return
    const account = await planningAccount(trx, key.tenant_id)
    if (!account?.price_id) return
    const stripeCustomerId = await stripeCustomerIdOf(trx, key.tenant_id, key.customer_id)
    // No Stripe customer yet: the state stays dirty and is planned once there is one.
    if (!stripeCustomerId) return
    const { end } = creditPeriodOf(key.period_start)
    const targets = planCreditTargets(await appliedByCategory(trx, key, end), minorPerMajorOf(account.units_per_major))
    const pushes = await creditPushesOf(trx, key)
    const actions = planCreditActions(pushes, targets)
    let seq = state.next_seq
    const rows = []
    if (trueUp !== null && trueUp > 0n && !hasTrueUp(pushes))
      rows.push({
        ...key,
        identifier: creditPushIdentifier(key, seq),
        seq: seq++,
        kind: 'TRUE_UP' as const,
        category: null,
        amount_minor: Number(trueUp),
        voids: null,
        stripe_customer_id: stripeCustomerId,
        status: 'PENDING' as const,
        next_attempt_at: now,
        created_at: now,
      })
    for (const action of actions) {
      if (action.type === 'cancel') {
        await cancelCreditPush(trx, key.tenant_id, action.of)
        continue
      }
      rows.push({
        ...key,
        identifier: creditPushIdentifier(key, seq),
        seq: seq++,
        kind: action.type === 'grant' ? ('GRANT' as const) : ('VOID' as const),
        category: action.category,
        amount_minor: Number(action.amount),
        voids: action.type === 'void' ? action.of : null,
        stripe_customer_id: stripeCustomerId,
        status: 'PENDING' as const,
        next_attempt_at: now,
        created_at: now,
      })
    }
    await insertCreditPushes(trx, rows)
    round.planned += rows.length
    await saveCreditState(trx, key, seq)
  })
}

/** Sends the state's pending pushes in order, one Stripe call at a time, while holding the lease. */
export async function sendCredits(
  ctx: PushContext,
  key: CreditStateKey,
  round: PushRound,
  clients: RoundClients,
): Promise<void> {
  const { db, clock, logger } = ctx
  const found = await clients(key.tenant_id)
  if (!found) return
  const account = found.account
  for (;;) {
    if (
      ctx.killed() ||
      !(await renewLease(db, 'stripe_credit_state', key, ctx.owner, new Date(clock.now().getTime() + ctx.leaseMs)))
    )
      return
    const push = await firstPendingCreditPush(db, key)
    if (!push || new Date(push.next_attempt_at).getTime() > clock.now().getTime()) return
    const attempt = push.attempts + 1
    // Recorded before the call: a crash leaves the push PENDING, and its retry looks the grant up.
    await recordCreditAttempt(
      db,
      key.tenant_id,
      push.identifier,
      attempt,
      new Date(clock.now().getTime() + ctx.leaseMs),
    )
    const idempotencyKey = push.idempotency_key ?? push.identifier
    let grantId: string | null = null
    let error: unknown = null
    try {
      if (push.kind === 'TRUE_UP') {
        grantId = await sendTrueUp(found.client, push, account.currency, idempotencyKey)
      } else if (push.kind === 'GRANT') {
        grantId = push.attempts > 0 || push.gave_up ? await findGrant(found.client, push) : null
        if (!grantId) {
          const grant = await found.client.billing.creditGrants.create(
            {
              customer: push.stripe_customer_id,
              name: `Burnrate credits applied, ${new Date(push.period_start).toISOString().slice(0, 7)}`,
              category: push.category === 'PAID' ? 'paid' : 'promotional',
              amount: {
                type: 'monetary',
                monetary: { currency: account.currency.toLowerCase(), value: Number(push.amount_minor) },
              },
              applicability_config: { scope: { prices: [{ id: account.price_id! }] } },
              metadata: {
                burnrate_push: push.identifier,
                burnrate_customer_id: push.customer_id,
                burnrate_period: new Date(push.period_start).toISOString().slice(0, 7),
              },
            },
            { idempotencyKey },
          )
          grantId = grant.id
        }
      } else {
        const target = await creditPushByIdentifier(db, key.tenant_id, push.voids!)
        // A grant Stripe refused, or one cancelled before it was sent, leaves nothing to void; one
        // that gave up may be at Stripe all the same.
        const targetId = target?.stripe_grant_id ?? (target?.gave_up ? await findGrant(found.client, target) : null)
        if (targetId) {
          await found.client.billing.creditGrants.voidGrant(targetId, {}, { idempotencyKey })
          grantId = targetId
        }
      }
    } catch (e) {
      error = e
    }
    if (ctx.killed()) return
    const now = clock.now()
    if (error === null || alreadyVoided(push, error)) {
      await finishCreditPush(db, key.tenant_id, push.identifier, { status: 'SENT', stripeGrantId: grantId, at: now })
      round.sent += 1
      continue
    }
    const outcome = classifyStripeError(error)
    if (outcome === 'retryable' && attempt < ctx.maxAttempts) {
      // After a replayed stored error the next attempt needs a new key; the metadata look-up
      // before it adopts a grant Stripe did make.
      await scheduleCreditRetry(db, key.tenant_id, push.identifier, {
        nextAttemptAt: new Date(now.getTime() + ctx.backoff(attempt)),
        lastError: describeStripeError(error),
        idempotencyKey: isReplayedError(error) ? `${push.identifier}-r${attempt}` : push.idempotency_key,
      })
      round.retried += 1
      return
    }
    const reason = (
      outcome === 'retryable'
        ? `gave up after ${attempt} attempts: ${describeStripeError(error)}`
        : describeStripeError(error)
    ).slice(0, 500)
    const gaveUp = outcome === 'retryable'
    await ctx.alerts.transaction(db, async (trx, raise) => {
      // The status change and its alert commit together; only the call that made it FAILED alerts.
      if (await finishCreditPush(trx, key.tenant_id, push.identifier, { status: 'FAILED', error: reason, gaveUp }))
        await raise.creditPush(
          { ...push, gave_up: gaveUp },
          gaveUp ? `Stripe did not accept the call in ${attempt} attempts: ${describeStripeError(error)}` : reason,
          now,
        )
    })
    round.failed += 1
    logger.warn('stripe credit grant call failed', {
      tenantId: key.tenant_id,
      customerId: key.customer_id,
      identifier: push.identifier,
      error: reason,
    })
  }
}

/** The grant a previous attempt of this push made (found by its metadata), if any. */
async function findGrant(
  client: NonNullable<Awaited<ReturnType<RoundClients>>>['client'],
  push: CreditPushRow,
): Promise<string | null> {
  for await (const grant of client.billing.creditGrants.list({ customer: push.stripe_customer_id, limit: 100 }))
    if (grant.metadata?.burnrate_push === push.identifier) return grant.id
  return null
}

/** Stripe refuses to void a grant twice; a VOID retried after a lost answer has done its job. */
function alreadyVoided(push: CreditPushRow, error: unknown): boolean {
  const e = error as { statusCode?: number; message?: string } | null
  return push.kind === 'VOID' && e?.statusCode === 400 && /already.*void/i.test(e.message ?? '')
}
