/**
 * Reading a customer's credits: the balance with its grants, what credits paid in a period (the
 * invoice preview), the ledger page by page, and the alerts raised. Due expiries are written first.
 */
import type { CreditAlertRow, CreditLedgerRow, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import { drawOrder, sum } from './consume.ts'
import { expireCustomer } from './expiry.ts'
import { availableNow, openGrantOf, statusOf } from './grant-state.ts'
import { checkCustomerId, CREDIT_LIMITS } from './input.ts'
import * as repo from './repository.ts'
import type { CreditBalanceView, CreditDeps, CreditService } from './types.ts'

type BalanceDeps = Pick<
  CreditDeps,
  'db' | 'clock' | 'logger' | 'pubsub' | 'onAlertsRaised' | 'prepaid' | 'reservedAmount'
>

const ledgerCursor = keysetCursor('creditLedger')

export async function balance(deps: BalanceDeps, tenant: Tenant, customerId: string): Promise<CreditBalanceView> {
  const { db, clock, prepaid, reservedAmount } = deps
  checkCustomerId(customerId)
  await expireCustomer(deps, tenant.id, customerId)
  const now = clock.now()
  const rows = await repo.grantsOfCustomer(db, tenant.id, customerId)
  const balance = sum(rows.filter((g) => availableNow(g, now)).map((g) => g.remaining))
  const upcoming = sum(rows.filter((g) => new Date(g.effective_at).getTime() > now.getTime()).map((g) => g.remaining))
  const reserved = new Decimal(await reservedAmount(db, tenant.id, customerId, now)).toFixed()
  const [settings] = await repo.settingsOf(db, tenant.id, [customerId])
  return {
    customerId,
    currency: tenant.currency,
    balance,
    reserved,
    available: Decimal.max(0, new Decimal(balance).minus(reserved)).toFixed(),
    upcoming,
    lowBalanceThreshold: settings?.low_balance_threshold ?? null,
    prepaidOnly: await prepaid.prepaidOnly(tenant.id, customerId, now),
    grants: [...rows]
      .sort((a, b) => drawOrder(openGrantOf(a), openGrantOf(b)))
      .map((row) => ({ row, status: statusOf(row, now) })),
    topUpUrl: await repo.topUpUrlOf(db, tenant.id),
  }
}

export async function forPeriod(
  deps: BalanceDeps,
  tenant: Tenant,
  customerId: string,
  period: { start: Date; end: Date },
): Promise<{ applied: string; remaining: string }> {
  const [applied, { balance: remaining }] = await Promise.all([
    repo.appliedToUsage(deps.db, tenant.id, customerId, period.start, period.end),
    balance(deps, tenant, customerId),
  ])
  return { applied: new Decimal(applied).toFixed(), remaining }
}

export async function ledger(
  deps: BalanceDeps,
  tenant: Tenant,
  customerId: string,
  args: Parameters<CreditService['ledger']>[2],
): Promise<Page<CreditLedgerRow>> {
  checkCustomerId(customerId)
  const first = pageSize(args.first)
  const before = args.after ? Number(ledgerCursor.decode(args.after).id) : null
  if (before !== null && !Number.isSafeInteger(before)) throw badInput('after is not a creditLedger cursor', 'after')
  await expireCustomer(deps, tenant.id, customerId)
  const rows = await repo.ledgerOfCustomer(deps.db, tenant.id, customerId, {
    grantId: args.grantId,
    beforeId: before,
    limit: first + 1,
  })
  return pageOf(rows, { first, after: args.after }, (r) =>
    ledgerCursor.encode({ at: new Date(r.created_at), id: String(r.id) }),
  )
}

export async function alerts(
  { db }: Pick<CreditDeps, 'db'>,
  tenant: Tenant,
  customerId: string,
  first: number | null | undefined,
): Promise<CreditAlertRow[]> {
  checkCustomerId(customerId)
  const n = pageSize(first, {
    defaultFirst: CREDIT_LIMITS.alertsDefaultFirst,
    maxFirst: CREDIT_LIMITS.alertsMaxFirst,
  })
  return repo.alertsOfCustomer(db, tenant.id, customerId, n)
}
