import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

// usage_events keeps one foreign key, to customers (tenant_id, customer_id); the tenant key it had
// too is implied by it (customers.tenant_id references tenants) and was dropped for ingest
// throughput (migration 20261208T0200). Referential integrity must be what it was.

describe('usage_events referential integrity with one foreign key', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(new Date('2026-12-07T12:00:00Z')) })
    const data = await t.gql<{ recordUsage: { status: string } }>(
      `mutation ($event: UsageEventInput!) { recordUsage(event: $event) { status } }`,
      {
        event: {
          id: 'integrity-1',
          customerId: 'cust-integrity',
          model: 'gpt-4o-mini',
          provider: 'openai',
          inputTokens: 10,
          outputTokens: 1,
          timestamp: '2026-12-07T11:00:00Z',
        },
      },
    )
    expect(data.errors).toBeUndefined()
    expect(data.data!.recordUsage.status).toBe('RECORDED')
  })
  afterAll(() => t.close())

  it('has exactly the customer key, which carries the tenant', async () => {
    const keys = await sql<{ name: string; definition: string }>`
      select conname as name, pg_get_constraintdef(oid) as definition from pg_constraint
      where conrelid = 'usage_events'::regclass and contype = 'f' order by conname`.execute(t.app.services.db)
    expect(keys.rows).toEqual([
      {
        name: 'usage_events_customer_fk',
        definition: 'FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)',
      },
    ])
  })

  it('refuses an event whose customer (or tenant) does not exist', async () => {
    const insert = (tenantId: string, customerId: string) =>
      sql`insert into usage_events (tenant_id, id, customer_id, model, provider, ts, received_at, status, currency,
          input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, lines, content_hash)
        values (${tenantId}, 'orphan', ${customerId}, 'm', 'p', '2026-12-07T11:00:00Z', now(), 'UNPRICED', 'USD',
          0, 0, 0, 0, 0, '[]', 'h')`.execute(t.app.services.db)
    await expect(insert(t.tenant.id, 'no-such-customer')).rejects.toThrow(/usage_events_customer_fk/)
    await expect(insert('no-such-tenant', 'cust-integrity')).rejects.toThrow(/usage_events_customer_fk/)
  })

  it('refuses to delete a customer with events, or its tenant', async () => {
    await expect(
      sql`delete from customers where tenant_id = ${t.tenant.id} and id = 'cust-integrity'`.execute(t.app.services.db),
    ).rejects.toThrow(/usage_events_customer_fk/)
    await expect(sql`delete from tenants where id = ${t.tenant.id}`.execute(t.app.services.db)).rejects.toThrow(
      /foreign key/,
    )
    const left = await sql<{ n: string | number }>`
      select count(*) as n from usage_events where tenant_id = ${t.tenant.id}`.execute(t.app.services.db)
    expect(Number(left.rows[0]!.n)).toBe(1)
  })
})
