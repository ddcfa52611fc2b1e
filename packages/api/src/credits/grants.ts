/**
 * Granting credits: through the API (grantCredits, idempotent by the client's key) and from a
 * paid Stripe Checkout Session. The grant, its GRANT ledger entry and its audit record are one transaction.
 */
import { randomBytes } from 'node:crypto'
import type { CreditGrantRow, CreditSource, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput, isDomainError } from '../shared/errors.ts'
import { statusOf } from './grant-state.ts'
import { checkCustomerId, checkScope, CREDIT_LIMITS, parseAmount } from './input.ts'
import * as repo from './repository.ts'
import type { CreditDeps, CreditService, GrantCreditsInput, GrantResult, GrantView } from './types.ts'

type GrantDeps = Pick<CreditDeps, 'db' | 'clock' | 'audit'>

const newGrantId = () => 'cg_' + randomBytes(12).toString('base64url')

export async function grantCredits(
  { db, clock, audit = null }: GrantDeps,
  tenant: Tenant,
  input: GrantCreditsInput,
  source: CreditSource = 'MUTATION',
): Promise<GrantResult> {
  checkCustomerId(input.customerId, 'input.customerId')
  const key = input.idempotencyKey
  if (key.length === 0 || key.length > CREDIT_LIMITS.idempotencyKeyLength)
    throw badInput(`idempotencyKey must be 1-${CREDIT_LIMITS.idempotencyKeyLength} characters`, 'input.idempotencyKey')
  const amount = parseAmount(input.amount, 'input.amount', false)
  const currency = (input.currency ?? tenant.currency).toUpperCase()
  if (currency !== tenant.currency.toUpperCase())
    throw badInput(`credits are granted in the tenant's billing currency (${tenant.currency})`, 'input.currency')
  const priority = input.priority ?? CREDIT_LIMITS.defaultPriority
  if (!Number.isInteger(priority) || priority < 0 || priority > 100)
    throw badInput('priority is an integer from 0 (drawn first) to 100', 'input.priority')
  const now = clock.now()
  const effectiveAt = input.effectiveAt ?? now
  const expiresAt = input.expiresAt ?? null
  if (expiresAt && expiresAt.getTime() <= effectiveAt.getTime())
    throw badInput('expiresAt must be after effectiveAt', 'input.expiresAt')
  if (expiresAt && expiresAt.getTime() <= now.getTime())
    throw badInput('expiresAt must be in the future', 'input.expiresAt')
  const scope = checkScope(input.scope)
  const low =
    input.lowBalanceThreshold == null
      ? null
      : parseAmount(input.lowBalanceThreshold, 'input.lowBalanceThreshold', false)
  const description = input.description ?? null
  if (description !== null && description.length > CREDIT_LIMITS.descriptionLength)
    throw badInput(`description is at most ${CREDIT_LIMITS.descriptionLength} characters`, 'input.description')
  const category = input.category ?? 'PAID'

  const inserted = await db.transaction().execute(async (trx) => {
    const row = await repo.insertGrant(trx, {
      tenant_id: tenant.id,
      id: newGrantId(),
      customer_id: input.customerId,
      amount,
      remaining: amount,
      currency,
      category,
      priority,
      effective_at: effectiveAt,
      expires_at: expiresAt,
      scope,
      source,
      idempotency_key: key,
      low_balance_threshold: low,
      description,
      created_at: now,
    })
    if (!row) return null
    await audit?.record(trx, {
      tenantId: tenant.id,
      action: 'creditGrant.create',
      entityType: 'CreditGrant',
      entityId: row.id,
      before: null,
      after: row,
    })
    await repo.appendLedger(trx, [
      {
        tenant_id: tenant.id,
        grant_id: row.id,
        customer_id: row.customer_id,
        kind: 'GRANT',
        amount,
        balance_after: amount,
        event_id: null,
        change_key: null,
        usage_at: null,
        created_at: now,
      },
    ])
    return row
  })
  const view = (row: CreditGrantRow): GrantView => ({ row, status: statusOf(row, clock.now()) })
  if (inserted) return { grant: view(inserted), created: true }
  const existing = await repo.grantByKey(db, tenant.id, key)
  if (!existing) throw new Error('credit grant idempotency key vanished')
  if (existing.customer_id !== input.customerId || !new Decimal(existing.amount).eq(amount))
    throw badInput(
      `idempotencyKey "${key}" already made grant ${existing.id} for another customer or amount`,
      'input.idempotencyKey',
    )
  return { grant: view(existing), created: false }
}

export async function grantFromCheckout(
  deps: GrantDeps & Pick<CreditDeps, 'logger'>,
  tenantId: string,
  checkout: Parameters<CreditService['grantFromCheckout']>[1],
): Promise<GrantResult | null> {
  const tenant = await repo.tenantById(deps.db, tenantId)
  if (!tenant) return null
  try {
    return await grantCredits(
      deps,
      tenant,
      {
        customerId: checkout.customerId,
        amount: checkout.amount,
        currency: checkout.currency,
        category: 'PAID',
        description: `Stripe Checkout ${checkout.sessionId}`,
        idempotencyKey: `stripe-checkout:${checkout.sessionId}`,
      },
      'STRIPE_CHECKOUT',
    )
  } catch (error) {
    if (!isDomainError(error)) throw error
    deps.logger.warn('stripe checkout not granted as credits', {
      tenantId,
      sessionId: checkout.sessionId,
      reason: error.message,
    })
    return null
  }
}
