import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateToLatest } from '../../src/db/database.ts'
import { migrations } from '../../src/db/migrations/index.ts'
import { listMonthPartitions } from '../../src/ledger/repository.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { createTestDatabase } from '../support/db.ts'

const BATCH = /* GraphQL */ `
  mutation ($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      recorded
      duplicates
      rejected
      results {
        status
        error {
          code
          field
        }
      }
    }
  }
`

const event = (id: string, timestamp: string, inputTokens = 1000) => ({
  id,
  customerId: 'cust-1',
  model: 'gpt-4o-mini',
  provider: 'openai',
  inputTokens,
  outputTokens: 100,
  timestamp,
})

async function whereIs(t: TestApp, id: string): Promise<string> {
  const row = await sql<{ part: string }>`
    select tableoid::regclass::text as part from usage_events where tenant_id = ${t.tenant.id} and id = ${id}`.execute(
    t.app.services.db,
  )
  return row.rows[0]?.part ?? 'missing'
}

describe('usage_events partitioned by month', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(new Date('2026-12-07T12:00:00Z')) })
  })
  afterAll(() => t.close())

  it('is a partitioned table with monthly partitions around now and a DEFAULT partition', async () => {
    const kind = await sql<{ relkind: string }>`select relkind from pg_class where relname = 'usage_events'`.execute(
      t.app.services.db,
    )
    expect(kind.rows[0]!.relkind).toBe('p')
    await t.app.services.partitions.maintain(3)
    const names = (await listMonthPartitions(t.app.services.db)).map((p) => p.name)
    for (const name of [
      'usage_events_p2026_11',
      'usage_events_p2026_12',
      'usage_events_p2027_01',
      'usage_events_p2027_03',
    ])
      expect(names).toContain(name)
    const def = await sql`select 1 from pg_class where relname = 'usage_events_default'`.execute(t.app.services.db)
    expect(def.rows).toHaveLength(1)
  })

  it('creates the partition of a back-dated month on demand: the insert never fails', async () => {
    const result = await t.gql(BATCH, {
      events: [event('old-1', '2019-03-04T05:06:07Z'), event('now-1', '2026-12-07T11:00:00Z')],
    })
    expect(result.errors).toBeUndefined()
    expect(result.data!.recordUsageBatch.recorded).toBe(2)
    expect(await whereIs(t, 'old-1')).toBe('usage_events_p2019_03')
    expect(await whereIs(t, 'now-1')).toBe('usage_events_p2026_12')
  })

  it('keeps idempotency across partitions: a replay months apart is a no-op, other content a conflict', async () => {
    const first = await t.gql(BATCH, { events: [event('replay-1', '2026-01-15T10:00:00Z')] })
    expect(first.data!.recordUsageBatch.recorded).toBe(1)
    const before = await sql<{ n: string; amount: string }>`
      select count(*) as n, sum(amount)::text as amount from usage_events where tenant_id = ${t.tenant.id}`.execute(
      t.app.services.db,
    )
    const rollupsBefore = await sql<{ events: string }>`
      select sum(events)::text as events from usage_rollups where tenant_id = ${t.tenant.id}`.execute(t.app.services.db)
    // The same id replayed: same content (a no-op), and its timestamp moved 10 months (would route to another partition).
    const replay = await t.gql(BATCH, {
      events: [event('replay-1', '2026-01-15T10:00:00Z'), event('replay-1', '2026-11-15T10:00:00Z')],
    })
    expect(replay.data!.recordUsageBatch.results.map((r: { status: string }) => r.status)).toEqual([
      'DUPLICATE',
      'REJECTED',
    ])
    expect(replay.data!.recordUsageBatch.results[1].error.code).toBe('IDEMPOTENCY_CONFLICT')
    const moved = await t.gql(BATCH, { events: [event('replay-1', '2026-11-15T10:00:00Z')] })
    expect(moved.data!.recordUsageBatch.results[0].error.code).toBe('IDEMPOTENCY_CONFLICT')
    const after = await sql<{ n: string; amount: string }>`
      select count(*) as n, sum(amount)::text as amount from usage_events where tenant_id = ${t.tenant.id}`.execute(
      t.app.services.db,
    )
    const rollupsAfter = await sql<{ events: string }>`
      select sum(events)::text as events from usage_rollups where tenant_id = ${t.tenant.id}`.execute(t.app.services.db)
    expect(after.rows[0]).toEqual(before.rows[0])
    expect(rollupsAfter.rows[0]).toEqual(rollupsBefore.rows[0])
    const keys = await sql<{ n: string }>`
      select count(*) as n from usage_event_keys where tenant_id = ${t.tenant.id} and id = 'replay-1'`.execute(
      t.app.services.db,
    )
    expect(Number(keys.rows[0]!.n)).toBe(1)
  })

  it('a row that met only the DEFAULT partition moves into its month when maintenance creates it', async () => {
    const db = t.app.services.db
    await t.gql(BATCH, { events: [event('stray-1', '2018-07-01T00:00:00Z')] })
    expect(await whereIs(t, 'stray-1')).toBe('usage_events_p2018_07')
    // As if the partition had been dropped elsewhere while this process still believed it existed.
    await sql`alter table usage_events detach partition usage_events_p2018_07`.execute(db)
    await sql`insert into usage_events overriding system value select * from usage_events_p2018_07`.execute(db)
    await sql`drop table usage_events_p2018_07`.execute(db)
    expect(await whereIs(t, 'stray-1')).toBe('usage_events_default')
    const created = await t.app.services.partitions.maintain(3)
    expect(created).toContain('usage_events_p2018_07')
    expect(await whereIs(t, 'stray-1')).toBe('usage_events_p2018_07')
  })
})

describe('the partitioning migration', () => {
  it('converts existing rows in place: every event, its seq and its key are kept', async () => {
    const database = await createTestDatabase()
    const db = database.db
    try {
      const name = '20261207T0100_usage_events_partitions'
      await migrations[name]!.down!(db)
      await sql`delete from kysely_migration where name = ${name}`.execute(db)
      await sql`insert into tenants (id, name, api_key_hash, api_key_prefix, signing_secret) values ('t1', 'T', 'h', 'p', 's')`.execute(
        db,
      )
      await sql`insert into customers (tenant_id, id) values ('t1', 'c1')`.execute(db)
      await sql`insert into usage_events (tenant_id, id, customer_id, model, ts, received_at, status, cost, amount, currency,
          input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, lines, content_hash)
        select 't1', 'e' || n, 'c1', 'm', timestamptz '2025-01-01Z' + n * interval '9 days', now(), 'PRICED', 0.5, 0.75, 'USD',
          1, 1, 0, 0, 0, '[]', 'h' || n
        from generate_series(1, 100) as n`.execute(db)
      const before = await sql<{ n: string; amount: string; seq: string }>`
        select count(*) as n, sum(amount)::text as amount, max(seq)::text as seq from usage_events`.execute(db)
      await migrateToLatest(db)
      const after = await sql<{ n: string; amount: string; seq: string }>`
        select count(*) as n, sum(amount)::text as amount, max(seq)::text as seq from usage_events`.execute(db)
      expect(after.rows[0]).toEqual(before.rows[0])
      const parts = await listMonthPartitions(db)
      // 100 events 9 days apart from 2025-01-10 to 2027-06-29: a partition for each of those 30 months.
      const names = new Set(parts.map((p) => p.name))
      for (let m = 0; m < 30; m++)
        expect(names).toContain(`usage_events_p${2025 + Math.floor(m / 12)}_${String((m % 12) + 1).padStart(2, '0')}`)
      const keys = await sql<{ n: string }>`select count(*) as n from usage_event_keys`.execute(db)
      expect(Number(keys.rows[0]!.n)).toBe(100)
      const inDefault = await sql<{ n: string }>`select count(*) as n from usage_events_default`.execute(db)
      expect(Number(inDefault.rows[0]!.n)).toBe(0)
      // New rows continue the sequence.
      await sql`insert into usage_events (tenant_id, id, customer_id, model, ts, received_at, status, currency,
          input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, lines, content_hash)
        values ('t1', 'e-new', 'c1', 'm', now(), now(), 'UNPRICED', 'USD', 1, 1, 0, 0, 0, '[]', 'x')`.execute(db)
      const seq = await sql<{ seq: string }>`select seq::text from usage_events where id = 'e-new'`.execute(db)
      expect(Number(seq.rows[0]!.seq)).toBe(Number(before.rows[0]!.seq) + 1)
    } finally {
      await database.destroy()
    }
  })
})
