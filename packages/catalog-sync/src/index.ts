export * from './units.ts'
export type { CatalogSyncSummary, NormalizedPrice, PriceTier, SourceSnapshot, TimeWindow } from './types.ts'
export { diffCatalog, rowInForce, samePrice, timeWindowKey, type CatalogDiff, type ExistingRow } from './diff.ts'
export { applyCatalogSnapshot, CATALOG_SYNC_LOCK_KEY, type ApplyOptions, type CatalogDB } from './apply.ts'
export {
  bundledGenaiPricesVersion,
  fromGenaiPrices,
  GENAI_PRICES_SOURCE,
  loadBundledGenaiPrices,
  resolveGenaiPricesModel,
  secondOfDay,
  SOURCE_EPOCH,
  UNIT_PRICE_SCALE,
  unitPriceOf,
  type GenaiPricesModelId,
} from './sources/genai-prices.ts'
