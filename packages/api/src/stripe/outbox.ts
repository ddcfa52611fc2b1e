import type { Insertable } from 'kysely'
import type { IngestHook } from '../usage/service.ts'
import { Decimal } from '../money/decimal.ts'
import type { StripeOutboxTable } from './db-types.ts'
import { windowStart } from './units.ts'

const CHUNK = 500

/**
 * Writes what Stripe must hear about into the outbox inside the ingest transaction, so an event is
 * either stored and queued for Stripe, or neither. Only tenants whose Stripe billing is set up
 * (a metered price exists) queue anything; unpriced and zero-amount events have nothing to bill.
 */
export function stripeOutboxHook(): IngestHook {
  return {
    async inTransaction(trx, tenant, stored) {
      const account = await trx.selectFrom('stripe_accounts').select(['mode', 'price_id']).where('tenant_id', '=', tenant.id).executeTakeFirst()
      if (!account?.price_id) return
      const rows: Insertable<StripeOutboxTable>[] = []
      for (const event of stored) {
        if (event.status !== 'PRICED' || event.amount === null || new Decimal(event.amount).isZero()) continue
        const window = windowStart(new Date(event.ts))
        if (account.mode === 'AMOUNT') {
          rows.push({ tenant_id: tenant.id, event_id: event.id, dimension: '', customer_id: event.customer_id, window_start: window, amount: event.amount })
          continue
        }
        // ITEMIZED: one row per model and usage type; an event's lines add up to its amount exactly.
        const perDimension = new Map<string, Decimal>()
        for (const line of event.lines) {
          const dimension = `${event.canonical_model ?? event.model}|${line.usageType}`
          perDimension.set(dimension, (perDimension.get(dimension) ?? new Decimal(0)).plus(line.amount))
        }
        for (const [dimension, amount] of perDimension) {
          if (amount.isZero()) continue
          rows.push({ tenant_id: tenant.id, event_id: event.id, dimension, customer_id: event.customer_id, window_start: window, amount: amount.toFixed() })
        }
      }
      for (let i = 0; i < rows.length; i += CHUNK) {
        await trx.insertInto('stripe_outbox').values(rows.slice(i, i + CHUNK)).onConflict((oc) => oc.doNothing()).execute()
      }
      const groups = new Map<string, { tenant_id: string; customer_id: string; dimension: string }>()
      for (const row of rows) groups.set(`${row.customer_id}\u0001${row.dimension}`, { tenant_id: tenant.id, customer_id: row.customer_id, dimension: row.dimension })
      // A stable order: concurrent batches creating the same state rows wait instead of deadlocking.
      const states = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, state]) => state)
      for (let i = 0; i < states.length; i += CHUNK) {
        await trx.insertInto('stripe_push_state').values(states.slice(i, i + CHUNK)).onConflict((oc) => oc.doNothing()).execute()
      }
    },
  }
}
