/**
 * Customers of a tenant: created by ingest when first seen, named and linked to Stripe by
 * upsertCustomer, listed (searchable, in pages) with this month's figures for the console.
 */
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Customer, Tenant } from '../db/types.ts'
import type { BudgetUse } from '../budgets/types.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import { DAY_MS, splitDays, wholeHours } from '../shared/date-range.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import * as repo from './repository.ts'

interface CustomerInput {
  id: string
  /** Left out: unchanged; null: cleared. */
  name?: string | null
  stripeCustomerId?: string | null
}

/** A customer's usage over a period, from the rollups. */
export interface CustomerFigures {
  customerId: string
  periodStart: Date
  periodEnd: Date
  events: number
  unpricedEvents: number
  cost: string
  /** Billed. */
  amount: string
  /** amount − cost. */
  margin: string
  /** The budget nearest its limit; null: no budget. */
  budgetUse: BudgetUse | null
}

export const CUSTOMER_LIMITS = { searchMaxLength: 255, topMax: 50, topDefault: 10, topMaxRangeDays: 400 } as const

export interface CustomerService {
  /** upsertCustomer: creates the customer or changes the fields given. */
  upsert(tenant: Tenant, input: CustomerInput): Promise<Customer>
  /** customers: id order, optionally those whose id or name contains `search` (case-insensitive). */
  list(
    tenant: Tenant,
    search: string | null | undefined,
    page: { first?: number | null; after?: string | null },
  ): Promise<Page<Customer>>
  /** This UTC calendar month's figures for a batch of customers (the per-request loader's batch). */
  monthFigures(tenantId: string, customerIds: readonly string[]): Promise<CustomerFigures[]>
  /** The customers billed most over [from, to), whole UTC hours (from floored, to raised to the hour). */
  top(tenant: Tenant, range: { from: Date; to: Date }, first: number | null | undefined): Promise<CustomerFigures[]>
}

const cursor = keysetCursor('customers')

/** The UTC calendar month holding `at`. */
function utcMonthOf(at: Date): { start: Date; end: Date } {
  return {
    start: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1)),
    end: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1)),
  }
}

function figuresOf(
  customerId: string,
  period: { start: Date; end: Date },
  totals: repo.CustomerTotals | undefined,
  budgetUse: BudgetUse | null,
): CustomerFigures {
  const cost = new Decimal(totals?.cost ?? '0')
  const amount = new Decimal(totals?.amount ?? '0')
  return {
    customerId,
    periodStart: period.start,
    periodEnd: period.end,
    events: totals?.events ?? 0,
    unpricedEvents: totals?.unpriced_events ?? 0,
    cost: cost.toFixed(),
    amount: amount.toFixed(),
    margin: amount.minus(cost).toFixed(),
    budgetUse,
  }
}

export function createCustomerService({
  db,
  clock,
  budgetUse,
}: {
  db: Db
  clock: Clock
  /** The budgets domain's answer: each customer's budget nearest its limit. */
  budgetUse: (tenantId: string, customerIds: readonly string[]) => Promise<Map<string, BudgetUse>>
}): CustomerService {
  return {
    async upsert(tenant, input) {
      if (input.id.length === 0 || input.id.length > 255) throw badInput('id must be 1-255 characters', 'input.id')
      if (input.name && input.name.length > 255) throw badInput('name is longer than 255 characters', 'input.name')
      if (input.stripeCustomerId && !/^cus_[A-Za-z0-9]{1,250}$/.test(input.stripeCustomerId)) {
        throw badInput('stripeCustomerId must look like a Stripe customer id (cus_…)', 'input.stripeCustomerId')
      }
      return repo.upsertCustomer(db, tenant.id, input)
    },

    async list(tenant, search, page) {
      const first = pageSize(page.first)
      const after = page.after != null ? cursor.decode(page.after) : null
      const text = search?.trim() ?? ''
      if (text.length > CUSTOMER_LIMITS.searchMaxLength)
        throw badInput(`search is longer than ${CUSTOMER_LIMITS.searchMaxLength} characters`, 'search')
      const rows = await repo.searchCustomers(db, tenant.id, {
        search: text || null,
        afterId: after?.id ?? null,
        limit: first + 1,
      })
      return pageOf(rows, { first, after }, (c) => cursor.encode({ at: new Date(c.created_at), id: c.id }))
    },

    async monthFigures(tenantId, customerIds) {
      const month = utcMonthOf(clock.now())
      const [totals, uses] = await Promise.all([
        repo.rollupTotals(db, tenantId, customerIds, month.start, month.end),
        budgetUse(tenantId, customerIds),
      ])
      const byId = new Map(totals.map((t) => [t.customer_id, t]))
      return customerIds.map((id) => figuresOf(id, month, byId.get(id), uses.get(id) ?? null))
    },

    async top(tenant, range, first) {
      const n = pageSize(first, { defaultFirst: CUSTOMER_LIMITS.topDefault, maxFirst: CUSTOMER_LIMITS.topMax })
      if (range.from >= range.to) throw badInput('from must be before to', 'from')
      if (range.to.getTime() - range.from.getTime() > CUSTOMER_LIMITS.topMaxRangeDays * DAY_MS) {
        throw badInput(`the range spans at most ${CUSTOMER_LIMITS.topMaxRangeDays} days; narrow from/to`, 'to')
      }
      const hours = wholeHours(range)
      const totals = await repo.topCustomers(db, tenant.id, splitDays({ from: hours.start, to: hours.end }), n)
      const uses = await budgetUse(
        tenant.id,
        totals.map((t) => t.customer_id),
      )
      return totals.map((t) => figuresOf(t.customer_id, hours, t, uses.get(t.customer_id) ?? null))
    },
  }
}
