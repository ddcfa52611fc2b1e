/**
 * An event that arrives in the moment around a price change is priced promptly: never left
 * UNPRICED until some unrelated later change. Ingest prices a batch in memory, then stores it; a
 * catalog change that commits in between runs its late-pricing sweep before the batch is visible.
 * The interleaving is forced with a gate on the ingest transaction (no sleeps): the batch is held
 * after pricing, the override is applied (its sweep runs and finds nothing), then the batch goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { fixedClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import type { Db } from '../../src/db/database.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'
import type { GqlResponse } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

const RECORD = `mutation($e: UsageEventInput!) { recordUsage(event: $e) { status error { code message } event { status } } }`
const NOW = new Date('2026-11-20T12:00:00Z')
const onPostgres = !!process.env.DATABASE_URL

interface Deferred {
  promise: Promise<void>
  resolve(): void
}
function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/**
 * The database, with the next transaction opened after arm() held at a gate: before it starts
 * (`before`: nothing of the batch is written yet) or after its work, just before COMMIT (`commit`:
 * written, not yet visible to anyone else; needs a second connection, so PostgreSQL only).
 */
function gatedDatabase(db: Db) {
  let armed: { at: 'before' | 'commit'; reached: Deferred; gate: Deferred } | null = null
  const proxy = new Proxy(db, {
    get(target, property) {
      if (property === 'transaction' && armed) {
        const { at, reached, gate } = armed
        armed = null
        return () => {
          const builder = target.transaction()
          return {
            async execute<T>(
              work: (trx: Parameters<Parameters<typeof builder.execute>[0]>[0]) => Promise<T>,
            ): Promise<T> {
              if (at === 'before') {
                reached.resolve()
                await gate.promise
                return builder.execute(work)
              }
              return builder.execute(async (trx) => {
                const result = await work(trx)
                reached.resolve()
                await gate.promise
                return result
              })
            },
          }
        }
      }
      const value = Reflect.get(target, property, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    db: proxy,
    arm(at: 'before' | 'commit') {
      armed = { at, reached: deferred(), gate: deferred() }
      return armed
    },
  }
}

describe('late pricing of events that race a price change', () => {
  let database: TestDatabase
  let gated: ReturnType<typeof gatedDatabase>
  let app: App
  let tenant: { id: string; apiKey: string }

  async function gql(query: string, variables: Record<string, unknown>): Promise<GqlResponse<any>> {
    const response = await app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tenant.apiKey}` },
      body: JSON.stringify({ query, variables }),
    })
    return (await response.json()) as GqlResponse<any>
  }

  async function override(model: string) {
    for (const [usageType, unitPrice] of [
      ['input', '0.000001'],
      ['output', '0.000004'],
    ] as const) {
      await app.services.catalog.setOverride(tenant.id, {
        provider: 'acme',
        model,
        usageType,
        unitPrice,
        effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      })
    }
  }

  async function stored(id: string) {
    return database.db
      .selectFrom('usage_events')
      .select(['status', 'cost', 'amount'])
      .where('tenant_id', '=', tenant.id)
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
  }

  async function rollupTotals() {
    const row = await database.db
      .selectFrom('usage_rollups')
      .select((eb) => [
        eb.fn.sum<string>('events').as('events'),
        eb.fn.sum<string>('unpriced_events').as('unpriced'),
        eb.fn.sum<string>('cost').as('cost'),
      ])
      .where('tenant_id', '=', tenant.id)
      .executeTakeFirstOrThrow()
    return { events: Number(row.events), unpriced: Number(row.unpriced), cost: new Decimal(row.cost).toFixed() }
  }

  beforeAll(async () => {
    database = await createTestDatabase()
    gated = gatedDatabase(database.db)
    app = createApp({
      db: gated.db,
      clock: fixedClock(NOW),
      config: defaultConfig({ LOG_LEVEL: 'silent' }),
      logger: createLogger('silent'),
    })
    await app.services.catalog.syncBundled()
    const created = await app.services.tenants.create({ name: 'race' })
    tenant = { id: created.tenant.id, apiKey: created.apiKey }
  })
  afterAll(() => database.destroy())

  it('prices an event the override committed between its pricing and its transaction, before recordUsage answers', async () => {
    const { reached, gate } = gated.arm('before')
    const recording = gql(RECORD, {
      e: {
        id: 'race-1',
        customerId: 'c',
        provider: 'acme',
        model: 'rocket-q',
        timestamp: '2026-11-20T11:00:00Z',
        inputTokens: 1000,
        outputTokens: 10,
      },
    })
    await reached.promise
    // Priced in memory already (no price for rocket-q): the override commits and sweeps now.
    await override('rocket-q')
    gate.resolve()
    const result = (await recording).data!.recordUsage
    // The answer shows the event as the batch stored it; the ledger has it priced already.
    expect(result).toMatchObject({ status: 'RECORDED', error: null, event: { status: 'UNPRICED' } })
    expect(await stored('race-1')).toEqual({ status: 'PRICED', cost: '0.00104', amount: '0.00104' })
    expect(await rollupTotals()).toEqual({ events: 1, unpriced: 0, cost: '0.00104' })
  })

  it.skipIf(!onPostgres)(
    'prices an event written but not yet committed while the override committed and swept',
    async () => {
      const { reached, gate } = gated.arm('commit')
      const recording = gql(RECORD, {
        e: {
          id: 'race-2',
          customerId: 'c',
          provider: 'acme',
          model: 'rocket-r',
          timestamp: '2026-11-20T11:30:00Z',
          inputTokens: 2000,
          outputTokens: 20,
        },
      })
      await reached.promise
      // The event row exists, uncommitted: the override's sweep cannot see it.
      await override('rocket-r')
      gate.resolve()
      expect((await recording).data!.recordUsage).toMatchObject({ status: 'RECORDED', error: null })
      expect(await stored('race-2')).toEqual({ status: 'PRICED', cost: '0.00208', amount: '0.00208' })
      expect(await rollupTotals()).toEqual({ events: 2, unpriced: 0, cost: '0.00312' })
    },
  )

  it('runs a sweep that failed again at the next catalog poll', async () => {
    await gql(RECORD, {
      e: {
        id: 'retry-1',
        customerId: 'c',
        provider: 'acme',
        model: 'rocket-s',
        timestamp: '2026-11-20T11:50:00Z',
        inputTokens: 1000,
        outputTokens: 10,
      },
    })
    const sweep = app.services.repricing.priceUnpriced
    app.services.repricing.priceUnpriced = async () => {
      throw new Error('connection lost')
    }
    try {
      await override('rocket-s')
    } finally {
      app.services.repricing.priceUnpriced = sweep
    }
    expect((await stored('retry-1')).status).toBe('UNPRICED')
    await app.services.catalog.poll()
    expect(await stored('retry-1')).toEqual({ status: 'PRICED', cost: '0.00104', amount: '0.00104' })
  })

  it('leaves an event UNPRICED when no price for it arrived, and sweeps nothing for it', async () => {
    let sweeps = 0
    const sweep = app.services.repricing.priceUnpriced
    app.services.repricing.priceUnpriced = async (scope) => {
      sweeps++
      return sweep(scope)
    }
    try {
      const result = await gql(RECORD, {
        e: {
          id: 'none-1',
          customerId: 'c',
          provider: 'acme',
          model: 'rocket-none',
          timestamp: '2026-11-20T11:40:00Z',
          inputTokens: 5,
        },
      })
      expect(result.data!.recordUsage).toMatchObject({ status: 'RECORDED', event: { status: 'UNPRICED' } })
      expect(sweeps).toBe(0)
      expect((await stored('none-1')).status).toBe('UNPRICED')
    } finally {
      app.services.repricing.priceUnpriced = sweep
    }
  })
})
