import { sql, type KyselyPlugin } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../api/test/support/db.ts'
import { applyCatalogSnapshot } from '../src/apply.ts'
import { loadBundledGenaiPrices } from '../src/sources/genai-prices.ts'
import type { NormalizedPrice, SourceSnapshot } from '../src/types.ts'

async function catalogVersion(database: TestDatabase): Promise<number> {
  const row = await database.db
    .selectFrom('catalog_state')
    .select('version')
    .where('id', '=', 1)
    .executeTakeFirstOrThrow()
  return row.version
}

async function rowCount(database: TestDatabase): Promise<number> {
  const row = await database.db
    .selectFrom('price_catalog')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Rows that say the same thing twice: what a race between two syncs would leave. */
async function duplicateRows(database: TestDatabase): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select 1 from price_catalog
      group by provider, model, usage_type, time_window, effective_from, source, tenant_id
      having count(*) > 1
    ) as duplicated`.execute(database.db)
  return rows[0]!.n
}

/** Counts statements: how a sync's cost is checked without timing a shared CI machine. */
function statementCounter(): KyselyPlugin & { count: number } {
  return {
    count: 0,
    transformQuery(args) {
      this.count++
      return args.node
    },
    transformResult: async (args) => args.result,
  }
}

/** Rows of a snapshot in force at `at`. */
const inForce = (prices: readonly NormalizedPrice[], at: Date) =>
  prices.filter((p) => p.effectiveFrom <= at && (p.effectiveTo === null || p.effectiveTo > at)).length

describe('applyCatalogSnapshot', () => {
  let database: TestDatabase
  let bundled: SourceSnapshot

  beforeAll(async () => {
    database = await createTestDatabase()
    bundled = await loadBundledGenaiPrices()
  })
  afterAll(() => database.destroy())

  it('loads the whole bundled catalog into an empty database in one go', async () => {
    const counter = statementCounter()
    const summary = await applyCatalogSnapshot(database.db.withPlugin(counter), bundled, {
      observedAt: new Date('2026-11-23T10:00:00Z'),
    })
    expect(summary).toMatchObject({
      source: 'genai-prices',
      sourceVersion: '0.1.8',
      models: bundled.models,
      rowsOpened: bundled.prices.length,
      rowsClosed: 0,
      unchanged: 0,
      held: 0,
    })
    expect(summary.changes).toHaveLength(bundled.prices.length)
    expect(await rowCount(database)).toBe(bundled.prices.length)
    expect(await catalogVersion(database)).toBe(1)
    // Lock, read, one INSERT per 500 rows and one per 500 change-log entries, pending clean-up, version bump,
    // the sync run and the look-up of its feed version's issues (the bundled data has none to store).
    expect(counter.count).toBe(6 + 2 * Math.ceil(bundled.prices.length / 500))

    const input = await database.db
      .selectFrom('price_catalog')
      .selectAll()
      .where('provider', '=', 'anthropic')
      .where('model', '=', 'claude-sonnet-4-6')
      .where('usage_type', '=', 'input')
      .orderBy('effective_from')
      .execute()
    expect(
      input.map((r) => [
        r.unit_price,
        r.tiers,
        r.effective_from.toISOString(),
        r.effective_to?.toISOString() ?? null,
        r.source_version,
        r.tenant_id,
      ]),
    ).toEqual([
      [
        '0.000003',
        [{ start: 200000, unitPrice: '0.000006' }],
        '1970-01-01T00:00:00.000Z',
        '2026-03-13T00:00:00.000Z',
        '0.1.8',
        null,
      ],
      ['0.000003', null, '2026-03-13T00:00:00.000Z', null, '0.1.8', null],
    ])
    const window = await database.db
      .selectFrom('price_catalog')
      .select(['unit_price', 'time_window'])
      .where('model', '=', 'deepseek-chat')
      .where('usage_type', '=', 'output')
      .where('time_window', 'is not', null)
      .executeTakeFirstOrThrow()
    expect(window).toEqual({ unit_price: '0.0000011', time_window: { startSecond: 1800, endSecond: 59400 } })
  })

  it('writes nothing and keeps the version on a second run', async () => {
    const counter = statementCounter()
    const summary = await applyCatalogSnapshot(database.db.withPlugin(counter), bundled, {
      observedAt: new Date('2026-11-24T10:00:00Z'),
    })
    // Unchanged counts the rows in force, not the dated history before them.
    expect(summary).toMatchObject({
      rowsOpened: 0,
      rowsClosed: 0,
      unchanged: inForce(bundled.prices, new Date('2026-11-24T10:00:00Z')),
    })
    expect(await rowCount(database)).toBe(bundled.prices.length)
    expect(await catalogVersion(database)).toBe(1)
    // Lock, read, the pending clean-up (a no-op update), and the run's record: nothing in the catalog.
    expect(counter.count).toBe(5)
  })

  it('closes and opens on a price change, without touching the old row, and bumps the version', async () => {
    const observedAt = new Date('2026-11-25T10:00:00Z')
    const cheaper: SourceSnapshot = {
      ...bundled,
      sourceVersion: '0.1.9-test',
      prices: bundled.prices.map((p) =>
        p.provider === 'openai' && p.model === 'gpt-4o' && p.usageType === 'input'
          ? { ...p, unitPrice: '0.000002' }
          : p,
      ),
    }
    const summary = await applyCatalogSnapshot(database.db, cheaper, { observedAt })
    expect(summary).toMatchObject({
      sourceVersion: '0.1.9-test',
      rowsOpened: 1,
      rowsClosed: 1,
      unchanged: inForce(bundled.prices, observedAt) - 1,
    })
    expect(await catalogVersion(database)).toBe(2)
    const rows = await database.db
      .selectFrom('price_catalog')
      .select(['unit_price', 'effective_from', 'effective_to', 'source_version'])
      .where('provider', '=', 'openai')
      .where('model', '=', 'gpt-4o')
      .where('usage_type', '=', 'input')
      .orderBy('effective_from')
      .execute()
    expect(rows).toEqual([
      {
        unit_price: '0.0000025',
        effective_from: new Date('1970-01-01T00:00:00Z'),
        effective_to: observedAt,
        source_version: '0.1.8',
      },
      { unit_price: '0.000002', effective_from: observedAt, effective_to: null, source_version: '0.1.9-test' },
    ])
    expect(
      await applyCatalogSnapshot(database.db, cheaper, { observedAt: new Date('2026-11-26T10:00:00Z') }),
    ).toMatchObject({ rowsOpened: 0, rowsClosed: 0 })
    expect(await catalogVersion(database)).toBe(2)
  })
})

describe('concurrent syncs', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  it('serialize on the advisory lock: three at once leave exactly one copy of each row', async () => {
    const bundled = await loadBundledGenaiPrices()
    const observedAt = new Date('2026-11-23T10:00:00Z')
    const summaries = await Promise.all([1, 2, 3].map(() => applyCatalogSnapshot(database.db, bundled, { observedAt })))
    expect(summaries.map((s) => s.rowsOpened).sort((a, b) => a - b)).toEqual([0, 0, bundled.prices.length])
    expect(await rowCount(database)).toBe(bundled.prices.length)
    expect(await duplicateRows(database)).toBe(0)
    expect(await catalogVersion(database)).toBe(1)
  })
})

describe('a source correcting the past with a stated start date', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  const row = (unitPrice: string, from = '1970-01-01T00:00:00Z', to: string | null = null, model = 'rocket-1') => ({
    provider: 'acme',
    model,
    usageType: 'input',
    unit: 'token',
    unitPrice,
    currency: 'USD' as const,
    tiers: null,
    timeWindow: null,
    effectiveFrom: new Date(from),
    effectiveTo: to ? new Date(to) : null,
  })
  const snapshot = (version: string, prices: ReturnType<typeof row>[]): SourceSnapshot => ({
    source: 'genai-prices',
    sourceVersion: version,
    prices,
    models: 2,
    skipped: [],
  })
  const D = '2026-06-01T00:00:00Z'

  it('applies the stated start, logs the past effective date and reports the correction; a re-run writes nothing', async () => {
    await applyCatalogSnapshot(
      database.db,
      snapshot('1', [row('0.000001'), row('0.000001', undefined, null, 'rocket-2')]),
      { observedAt: new Date('2026-01-01T00:00:00Z') },
    )
    const corrected = snapshot('2', [
      row('0.000001', undefined, D),
      row('0.0000012', D),
      row('0.000001', undefined, null, 'rocket-2'),
    ])
    const summary = await applyCatalogSnapshot(database.db, corrected, {
      observedAt: new Date('2026-11-23T10:00:00Z'),
      changedAt: new Date('2026-11-23T10:00:00Z'),
    })
    expect(summary).toMatchObject({ rowsOpened: 1, rowsClosed: 1, held: 0 })
    expect(summary.corrections).toEqual([
      { provider: 'acme', model: 'rocket-1', usageType: 'input', timeWindow: null, from: new Date(D) },
    ])
    expect(summary.changes).toEqual([
      expect.objectContaining({
        model: 'rocket-1',
        oldUnitPrice: '0.000001',
        newUnitPrice: '0.0000012',
        effectiveFrom: new Date(D),
      }),
    ])
    const log = await database.db
      .selectFrom('price_change_log')
      .select(['effective_from', 'new_unit_price'])
      .where('model', '=', 'rocket-1')
      .where('source_version', '=', '2')
      .execute()
    expect(log).toEqual([{ effective_from: new Date(D), new_unit_price: '0.0000012' }])
    const again = await applyCatalogSnapshot(database.db, corrected, { observedAt: new Date('2026-11-24T10:00:00Z') })
    expect(again).toMatchObject({ rowsOpened: 0, rowsClosed: 0, corrections: [] })
  })

  it('holds a correction that moves the billed past beyond the ratio, then applies it from the stated start on confirmation', async () => {
    const typo = snapshot('3', [
      row('0.000001', undefined, null, 'rocket-1'),
      row('0.000001', undefined, D, 'rocket-2'),
      row('0.001', D, null, 'rocket-2'),
    ])
    const observedAt = new Date('2026-11-25T10:00:00Z')
    // rocket-1 goes back to its epoch price: an undated change, applied from observedAt only.
    const summary = await applyCatalogSnapshot(database.db, typo, { observedAt })
    expect(summary.held).toBe(1)
    expect(summary.corrections).toEqual([])
    const pending = await database.db
      .selectFrom('catalog_pending_changes')
      .selectAll()
      .where('status', '=', 'PENDING')
      .execute()
    expect(pending.map((p) => [p.model, p.old_unit_price, p.new_unit_price])).toEqual([
      ['rocket-2', '0.000001', '0.001'],
    ])
    const confirmed = await applyCatalogSnapshot(database.db, typo, {
      observedAt,
      holdRatio: Infinity,
      scope: { provider: 'acme', model: 'rocket-2' },
    })
    expect(confirmed.corrections).toEqual([
      { provider: 'acme', model: 'rocket-2', usageType: 'input', timeWindow: null, from: new Date(D) },
    ])
  })
})
