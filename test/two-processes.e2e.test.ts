import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTenantService } from '../packages/api/src/auth/service.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'
import { postGraphQL, startApiProcess, type ApiProcess } from './support/api-process.ts'

// Two API processes on one PostgreSQL: PGlite is an in-process database, so this runs only when
// DATABASE_URL points at a server (CI runs the suite both ways).
const onPostgres = Boolean(process.env.DATABASE_URL)

describe.runIf(onPostgres)('two API processes on one PostgreSQL', () => {
  let database: TestDatabase
  let apis: ApiProcess[] = []
  let key: string

  beforeAll(async () => {
    database = await createTestDatabase()
    key = (await createTenantService({ db: database.db, clock: systemClock }).create({ name: 'Race' })).apiKey
    // Both start at once: their catalog syncs race too, and the advisory lock must keep the catalog single.
    apis = await Promise.all(
      [0, 1].map(() => startApiProcess({ DATABASE_URL: database.url!, DEV_TENANT: 'false', GRAPHIQL: 'false' })),
    )
  }, 180_000)

  afterAll(async () => {
    await Promise.all(apis.map((api) => api.stop()))
    await database?.destroy()
  })

  it('store exactly one event per id when overlapping batches hit both at once', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => `evt-${i}`)
    const timestamp = new Date(Date.now() - 60_000).toISOString()
    const event = (id: string) => ({
      id,
      customerId: `cust-${Number(id.slice(4)) % 7}`,
      model: 'gpt-4o',
      timestamp,
      inputTokens: 1000,
      cacheReadTokens: 250,
      outputTokens: 100,
    })
    // Eight batches of 200, each overlapping its neighbours by half, alternating between the processes.
    const batches = Array.from({ length: 8 }, (_, b) => ids.slice((b * 100) % 300, ((b * 100) % 300) + 200).map(event))
    const replies = await Promise.all(
      batches.map((events, b) =>
        postGraphQL(
          apis[b % 2]!.url,
          key,
          `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded duplicates rejected } }`,
          { e: events },
        ),
      ),
    )
    for (const reply of replies) expect(reply.errors).toBeUndefined()
    const recorded = replies.reduce((n, r) => n + r.data.recordUsageBatch.recorded, 0)
    const rejected = replies.reduce((n, r) => n + r.data.recordUsageBatch.rejected, 0)
    const distinct = new Set(batches.flat().map((e) => e.id)).size

    const stored = await database.db
      .selectFrom('usage_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    expect(rejected).toBe(0)
    expect(Number(stored.n)).toBe(distinct)
    expect(recorded).toBe(distinct)

    const summary = await postGraphQL(
      apis[0]!.url,
      key,
      `query ($from: DateTime!, $to: DateTime!) { usageSummary(from: $from, to: $to) { events cost } }`,
      {
        from: new Date(Date.now() - 86_400_000).toISOString(),
        to: new Date(Date.now() + 3_600_000).toISOString(),
      },
    )
    expect(summary.data.usageSummary.events).toBe(distinct)
    // 750 input × 2.5/M + 250 cache read × 1.25/M + 100 output × 10/M = 0.0031875 per event
    expect(distinct).toBe(400)
    expect(summary.data.usageSummary.cost).toBe('1.275')

    const catalogRows = await database.db
      .selectFrom('price_catalog')
      .select(['provider', 'model', 'usage_type', 'effective_from'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .groupBy(['provider', 'model', 'usage_type', 'effective_from', 'time_window'])
      .having((eb) => eb.fn.countAll(), '>', 1)
      .execute()
    expect(catalogRows).toEqual([])
  })
})
