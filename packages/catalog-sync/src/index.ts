export * from './units.ts'
export type {
  AppliedPriceChange,
  CatalogCorrection,
  CatalogSyncSummary,
  FeedIssue,
  HeldPriceChange,
  NormalizedPrice,
  PriceTier,
  RejectedPrice,
  SourceSnapshot,
  TimeWindow,
} from './types.ts'
export { diffCatalog, rowInForce, samePrice, timeWindowKey, type CatalogDiff, type ExistingRow } from './diff.ts'
export {
  applyCatalogSnapshot,
  CATALOG_SYNC_LOCK_KEY,
  DEFAULT_HOLD_RATIO,
  deserializePrices,
  movesBeyond,
  type ApplyOptions,
  type CatalogDB,
} from './apply.ts'
export {
  bundledGenaiPricesVersion,
  fetchGenaiPrices,
  fromGenaiPrices,
  fromGenaiPricesJson,
  GENAI_PRICES_DATA_URL,
  GENAI_PRICES_SOURCE,
  loadBundledGenaiPrices,
  resolveGenaiPricesModel,
  secondOfDay,
  SOURCE_EPOCH,
  UNIT_PRICE_SCALE,
  unitPriceOf,
  type GenaiPricesModelId,
} from './sources/genai-prices.ts'
export { contentVersion, DEFAULT_FETCH_TIMEOUT_MS, fetchJson, SourceError, type FetchOptions } from './sources/fetch.ts'
export { parsePrice, rawValueText, type PriceValue } from './sources/price-value.ts'
export { fetchOpenRouter, fromOpenRouter, OPENROUTER_MODELS_URL, OPENROUTER_SOURCE } from './sources/openrouter.ts'
export { fetchLitellm, fromLitellm, LITELLM_PRICES_URL, LITELLM_SOURCE } from './sources/litellm.ts'
export {
  OVERRIDE_SOURCE,
  OverrideError,
  overrideRow,
  overrideTimelines,
  parseOverridesFile,
  type OverrideInput,
} from './sources/overrides.ts'
export {
  DEFAULT_SOURCE_URLS,
  isPublicSource,
  loadPublicSource,
  PUBLIC_SOURCES,
  SOURCE_URL_ENV,
  withRetry,
  type PublicSourceName,
} from './sources/registry.ts'
export { modelKey } from './model-key.ts'
export {
  conflictsAmong,
  findCatalogConflicts,
  SOURCE_PRIORITY,
  sourceRank,
  type CatalogConflict,
  type CatalogRow,
} from './conflicts.ts'
export {
  recordSyncFailure,
  recordSyncSuccess,
  syncRunSummary,
  type SyncRunFailure,
  type SyncRunSuccess,
  type SyncRunSummary,
} from './source-state.ts'
export { listPendingChanges, resolvePendingChange, type PendingChange, type ResolvedPendingChange } from './pending.ts'
export {
  acquireDataDirLock,
  API_LOCK_HOLDER,
  DataDirLockedError,
  lockPathOf,
  type DataDirLock,
  type DataDirLockOwner,
} from './data-dir-lock.ts'
