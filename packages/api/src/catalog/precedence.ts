/**
 * The one precedence rule between a tenant's negotiated prices and the public catalog: a tenant's
 * row wins, usage type by usage type, over every public row of the same provider and model (all
 * sources, all time windows). Used by the pricing path (CatalogService.pricesAt) and by the
 * providerPrices listing, so what a tenant sees is what it is billed at. Pure: rows in, rows out.
 */
export function withTenantOverrides<T extends { provider: string; model: string; usageType: string }>(
  own: readonly T[],
  publicRows: readonly T[],
): T[] {
  if (own.length === 0) return [...publicRows]
  const key = (row: T) => `${row.provider}\u0000${row.model}\u0000${row.usageType}`
  const overridden = new Set(own.map(key))
  return [...own, ...publicRows.filter((row) => !overridden.has(key(row)))]
}
