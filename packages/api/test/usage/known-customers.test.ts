/**
 * Ingest remembers the customers it saw committed and sends no customers insert for them. A
 * customer row with events can never be deleted (usage_events_customer_fk), but one without events
 * can be, by hand: the next batch for it fails on the foreign key once, forgets it and inserts it
 * again — recorded, never an internal error.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const RECORD = `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { code field } } }`
const event = (id: string, customerId: string) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: '2026-12-07T11:00:00Z',
  inputTokens: 1000,
  outputTokens: 100,
})

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ clock: fixedClock('2026-12-07T12:00:00Z') })
})
afterAll(() => t?.close())

const customerRows = async (id: string) =>
  Number(
    (
      await sql<{
        n: string
      }>`select count(*) as n from customers where tenant_id = ${t.tenant.id} and id = ${id}`.execute(t.app.services.db)
    ).rows[0]!.n,
  )

describe('known customers', () => {
  it('a remembered customer deleted by hand is inserted again on its next event', async () => {
    expect((await t.gql(RECORD, { e: event('kc-1', 'kc-a') })).data!.recordUsage.status).toBe('RECORDED')
    // The same id for another customer: refused, but the transaction that refused it created kc-b
    // (with no event) and committed, so ingest now remembers kc-b.
    const conflict = await t.gql(RECORD, { e: event('kc-1', 'kc-b') })
    expect(conflict.data!.recordUsage.error.code).toBe('IDEMPOTENCY_CONFLICT')
    expect(await customerRows('kc-b')).toBe(1)
    await sql`delete from customers where tenant_id = ${t.tenant.id} and id = 'kc-b'`.execute(t.app.services.db)
    expect(await customerRows('kc-b')).toBe(0)

    const again = await t.gql(RECORD, { e: event('kc-2', 'kc-b') })
    expect(again.errors).toBeUndefined()
    expect(again.data!.recordUsage).toEqual({ status: 'RECORDED', error: null })
    expect(await customerRows('kc-b')).toBe(1)
    const summary = await t.gql(
      `{ usageSummary(customerId: "kc-b", from: "2026-12-07T00:00:00Z", to: "2026-12-08T00:00:00Z") { events } }`,
    )
    expect(summary.data!.usageSummary.events).toBe(1)
  })

  it('a customer with events cannot be deleted, so remembering it is safe', async () => {
    await expect(
      sql`delete from customers where tenant_id = ${t.tenant.id} and id = 'kc-a'`.execute(t.app.services.db),
    ).rejects.toThrow(/usage_events_customer_fk/)
    expect((await t.gql(RECORD, { e: event('kc-3', 'kc-a') })).data!.recordUsage.status).toBe('RECORDED')
  })
})
