/** SQL of the Stripe outbox (stripe_outbox) and of the (customer, dimension) push states it feeds. */
import type { Insertable } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { StripeOutboxTable } from '../db-types.ts'

const OUTBOX_CHUNK = 500

export interface PushGroup {
  tenant_id: string
  customer_id: string
  dimension: string
}

export type NewOutboxRow = Insertable<StripeOutboxTable>

/**
 * Of these events, those billed (non-zero), recorded before `setupAt` and not in the outbox: the
 * ones Stripe never heard of.
 */
export async function billedUnqueuedEvents(
  trx: Executor,
  tenantId: string,
  eventIds: readonly string[],
  setupAt: Date,
): Promise<Set<string>> {
  const found = new Set<string>()
  for (let i = 0; i < eventIds.length; i += OUTBOX_CHUNK) {
    const rows = await trx
      .selectFrom('usage_events as e')
      .select('e.id')
      .where('e.tenant_id', '=', tenantId)
      .where('e.id', 'in', eventIds.slice(i, i + OUTBOX_CHUNK))
      .where('e.amount', '<>', '0')
      .where('e.received_at', '<', setupAt)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('stripe_outbox as o')
              .select('o.event_id')
              .whereRef('o.tenant_id', '=', 'e.tenant_id')
              .whereRef('o.event_id', '=', 'e.id'),
          ),
        ),
      )
      .execute()
    for (const row of rows) found.add(row.id)
  }
  return found
}

/** Inserts outbox rows (an existing key is left as it is); returns the keys newly stored. */
export async function insertOutboxRows(trx: Executor, rows: readonly NewOutboxRow[]): Promise<Set<string>> {
  const queued = new Set<string>()
  for (let i = 0; i < rows.length; i += OUTBOX_CHUNK) {
    const inserted = await trx
      .insertInto('stripe_outbox')
      .values(rows.slice(i, i + OUTBOX_CHUNK))
      .onConflict((oc) => oc.doNothing())
      .returning('event_id')
      .execute()
    for (const row of inserted) queued.add(row.event_id)
  }
  return queued
}

/** Creates the push states that do not exist yet, in the order given (callers sort them: no deadlock). */
export async function ensurePushStates(trx: Executor, states: readonly PushGroup[]): Promise<void> {
  for (let i = 0; i < states.length; i += OUTBOX_CHUNK) {
    await trx
      .insertInto('stripe_push_state')
      .values(states.slice(i, i + OUTBOX_CHUNK))
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
}

/** The group's outbox rows not yet folded into a push, in window then key order. */
export function unplannedRows(trx: Executor, group: PushGroup) {
  return trx
    .selectFrom('stripe_outbox')
    .select(['event_id', 'window_start', 'amount'])
    .where('tenant_id', '=', group.tenant_id)
    .where('customer_id', '=', group.customer_id)
    .where('dimension', '=', group.dimension)
    .where('planned_at', 'is', null)
    .orderBy('window_start')
    .orderBy('event_id')
    .execute()
}

const PLAN_CHUNK = 1000

/** Marks outbox rows as folded into the push `identifier` (null: their window rounded to no unit). */
export async function markPlanned(
  trx: Executor,
  group: PushGroup,
  eventIds: readonly string[],
  identifier: string | null,
  now: Date,
): Promise<void> {
  for (let i = 0; i < eventIds.length; i += PLAN_CHUNK) {
    await trx
      .updateTable('stripe_outbox')
      .set({ planned_at: now, push_identifier: identifier })
      .where('tenant_id', '=', group.tenant_id)
      .where('dimension', '=', group.dimension)
      .where('event_id', 'in', eventIds.slice(i, i + PLAN_CHUNK))
      .execute()
  }
}
