import { Decimal as DecimalJs } from 'decimal.js'
import type { Kysely, Selectable, Transaction } from 'kysely'
import type { CatalogDB } from './apply.ts'

/**
 * Which public source prices a model when several know it: sources are never merged, so the first
 * of this list that has rows for the model prices all of it (a disagreement shows up in
 * catalogConflicts). OpenRouter's own API is the authority on what routing through it costs; it
 * only ever writes rows for provider `openrouter`. Unknown sources come last, by name.
 */
export const SOURCE_PRIORITY = ['openrouter', 'genai-prices', 'litellm'] as const

export function sourceRank(source: string): number {
  const i = (SOURCE_PRIORITY as readonly string[]).indexOf(source)
  return i === -1 ? SOURCE_PRIORITY.length : i
}

export type CatalogRow = Selectable<CatalogDB['price_catalog']>

export interface CatalogConflict<Row> {
  provider: string
  model: string
  usageType: string
  /** The source that prices events (the source priority). */
  usedSource: string
  /** One row per source, the used source first. */
  prices: Row[]
}

/** Public rows in force at `at` (unwindowed) of (provider, model, usage type)s that more than one source prices. */
async function publicRowsInForceBySource<DB extends CatalogDB>(
  db: Kysely<DB> | Transaction<DB>,
  at: Date,
): Promise<CatalogRow[]> {
  return (db as unknown as Kysely<CatalogDB>)
    .selectFrom('price_catalog')
    .selectAll()
    .where('tenant_id', 'is', null)
    .where('time_window', 'is', null)
    .where('effective_from', '<=', at)
    .where((eb) => eb.or([eb('effective_to', 'is', null), eb('effective_to', '>', at)]))
    .where(({ exists, selectFrom, ref }) =>
      // Only models that more than one source prices: a handful among thousands of rows.
      exists(
        selectFrom('price_catalog as other')
          .select('other.id')
          .whereRef('other.provider', '=', ref('price_catalog.provider'))
          .whereRef('other.model', '=', ref('price_catalog.model'))
          .whereRef('other.usage_type', '=', ref('price_catalog.usage_type'))
          .whereRef('other.source', '<>', ref('price_catalog.source'))
          .where('other.tenant_id', 'is', null)
          .where('other.time_window', 'is', null)
          .where('other.effective_from', '<=', at)
          .where((eb) => eb.or([eb('other.effective_to', 'is', null), eb('other.effective_to', '>', at)])),
      ),
    )
    .orderBy('provider')
    .orderBy('model')
    .orderBy('usage_type')
    .orderBy('source')
    .orderBy('effective_from', 'desc')
    .execute()
}

/** Groups rows in force by (provider, model, usage type) and keeps those whose sources disagree (pure). */
export function conflictsAmong<
  Row extends Pick<CatalogRow, 'provider' | 'model' | 'usage_type' | 'source' | 'unit_price' | 'tiers'>,
>(rows: readonly Row[]): CatalogConflict<Row>[] {
  const groups = new Map<string, Row[]>()
  for (const row of rows) {
    const key = `${row.provider}\u0000${row.model}\u0000${row.usage_type}`
    const group = groups.get(key) ?? []
    // One row per source: the latest start is the one in force.
    if (!group.some((other) => other.source === row.source)) group.push(row)
    groups.set(key, group)
  }
  const conflicts: CatalogConflict<Row>[] = []
  for (const prices of groups.values()) {
    if (prices.length < 2) continue
    const first = prices[0]!
    const differ = prices.some(
      (p) =>
        !new DecimalJs(p.unit_price).eq(first.unit_price) || JSON.stringify(p.tiers) !== JSON.stringify(first.tiers),
    )
    if (!differ) continue
    const ranked = [...prices].sort(
      (a, b) => sourceRank(a.source) - sourceRank(b.source) || a.source.localeCompare(b.source),
    )
    conflicts.push({
      provider: first.provider,
      model: first.model,
      usageType: first.usage_type,
      usedSource: ranked[0]!.source,
      prices: ranked,
    })
  }
  return conflicts
}

/**
 * Where public sources disagree about the price in force at `at`: what the API's catalogConflicts
 * lists and the CLI's summary counts, from this one function.
 */
export async function findCatalogConflicts<DB extends CatalogDB>(
  db: Kysely<DB> | Transaction<DB>,
  at: Date,
): Promise<CatalogConflict<CatalogRow>[]> {
  return conflictsAmong(await publicRowsInForceBySource(db, at))
}
