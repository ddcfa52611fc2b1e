import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrations } from '../../src/db/migrations/index.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

const MIGRATION = '20261210T0200_citus_tenant_keys'

/**
 * The migration that widens keys to include tenant_id (Citus readiness) keeps the rows it finds:
 * spend and attempt rows written before it get their tenant from their budget and delivery, and
 * the widened foreign keys refuse a row pointing into another tenant.
 */
describe('migration 20261210T0200_citus_tenant_keys', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  it('keeps existing rows, fills tenant_id from the parent row, and goes down and up again', async () => {
    const db = database.db
    const migration = migrations[MIGRATION]!
    await migration.down!(db)
    // Rows in the shape before the migration (no tenant_id on spend and attempts).
    for (const tenant of ['ten_a', 'ten_b']) {
      await sql`insert into tenants (id, name, api_key_hash, api_key_prefix, signing_secret)
        values (${tenant}, ${tenant}, ${'hash_' + tenant}, 'br_', 'secret')`.execute(db)
      await sql`insert into customers (tenant_id, id) values (${tenant}, 'cus_1')`.execute(db)
      await sql`insert into budgets (id, tenant_id, customer_id, period, time_zone, limit_amount, thresholds,
          hard_limit, currency, counted_from, created_at, updated_at)
        values (${'bud_' + tenant}, ${tenant}, 'cus_1', 'MONTH', 'UTC', '10', '[50]', false, 'USD',
          '2026-12-01T00:00:00Z', now(), now())`.execute(db)
      await sql`insert into budget_spend (budget_id, period_start, spent)
        values (${'bud_' + tenant}, '2026-12-01T00:00:00Z', '1.25')`.execute(db)
      await sql`insert into webhook_endpoints (id, tenant_id, url, event_types, secret, enabled, created_at)
        values (${'we_' + tenant}, ${tenant}, 'https://example.test/hook', '["budget.threshold"]', 's', true, now())`.execute(
        db,
      )
      await sql`insert into webhook_events (id, tenant_id, type, dedupe_key, payload, created_at)
        values (${'evt_' + tenant}, ${tenant}, 'budget.threshold', 'k', '{}', now())`.execute(db)
      await sql`insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, attempt_limit,
          next_attempt_at, created_at)
        values (${'del_' + tenant}, ${tenant}, ${'we_' + tenant}, ${'evt_' + tenant}, 'PENDING', 1, 5, now(), now())`.execute(
        db,
      )
      await sql`insert into webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code)
        values (${'del_' + tenant}, 1, now(), 12, 500)`.execute(db)
    }
    await migration.up(db)

    const spend = await sql<{ tenant_id: string; budget_id: string; spent: string }>`
      select tenant_id, budget_id, spent::text from budget_spend order by budget_id`.execute(db)
    expect(spend.rows).toEqual([
      { tenant_id: 'ten_a', budget_id: 'bud_ten_a', spent: '1.25' },
      { tenant_id: 'ten_b', budget_id: 'bud_ten_b', spent: '1.25' },
    ])
    const attempts = await sql<{ tenant_id: string; delivery_id: string }>`
      select tenant_id, delivery_id from webhook_attempts order by delivery_id`.execute(db)
    expect(attempts.rows).toEqual([
      { tenant_id: 'ten_a', delivery_id: 'del_ten_a' },
      { tenant_id: 'ten_b', delivery_id: 'del_ten_b' },
    ])

    // A delivery of tenant a cannot point at tenant b's endpoint any more.
    await expect(
      sql`insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, status, attempts, attempt_limit,
          next_attempt_at, created_at)
        values ('del_cross', 'ten_a', 'we_ten_b', 'evt_ten_a', 'PENDING', 0, 5, now(), now())`.execute(db),
    ).rejects.toThrow(/foreign key/)
    // Nor spend count against another tenant's budget.
    await expect(
      sql`insert into budget_spend (tenant_id, budget_id, period_start, spent)
        values ('ten_a', 'bud_ten_b', '2026-11-01T00:00:00Z', '1')`.execute(db),
    ).rejects.toThrow(/foreign key/)

    // And back: down keeps the rows too, up again restores the keys.
    await migration.down!(db)
    expect((await sql<{ n: number }>`select count(*)::int as n from budget_spend`.execute(db)).rows[0]!.n).toBe(2)
    await migration.up(db)
    expect((await sql<{ n: number }>`select count(*)::int as n from webhook_attempts`.execute(db)).rows[0]!.n).toBe(2)
  })
})
