/** A tenant's negotiated prices: one set through the API, or a whole overrides document. */
import {
  OVERRIDE_SOURCE,
  OverrideError,
  overrideRow,
  parseOverridesFile,
  syncRunSummary,
  type OverrideInput,
} from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { CatalogWriter } from './applied.ts'
import type { OverrideResult, SyncSummary } from './types.ts'

interface OverrideDeps {
  clock: Clock
  writer: CatalogWriter
}

/** A tenant's negotiated price from `effectiveFrom` on (throws OverrideError on bad input). */
export async function setOverride(
  { clock, writer }: OverrideDeps,
  tenantId: string,
  input: OverrideInput,
): Promise<OverrideResult> {
  const row = overrideRow(input)
  const summary = await writer.apply(
    {
      source: OVERRIDE_SOURCE,
      sourceVersion: `mutation:${clock.now().toISOString()}`,
      prices: [row],
      models: 1,
      skipped: [],
    },
    // From its own date on, the new price replaces the tenant's override of that usage type.
    {
      observedAt: row.effectiveFrom,
      tenantId,
      holdRatio: Infinity,
      scope: { provider: row.provider, model: row.model, usageType: row.usageType },
      changedAt: clock.now(),
    },
  )
  return {
    provider: row.provider,
    model: row.model,
    usageType: row.usageType,
    rowsOpened: summary.rowsOpened,
    rowsClosed: summary.rowsClosed,
  }
}

/** An overrides file (YAML/JSON); with tenantId, every entry must be that tenant's. */
export async function applyOverridesFile(
  { clock, writer }: OverrideDeps,
  text: string,
  options: { tenantId?: string } = {},
): Promise<SyncSummary[]> {
  const snapshots = parseOverridesFile(text)
  const summaries: SyncSummary[] = []
  // Checked before anything is written: a file naming another tenant changes nothing at all.
  for (const tenantId of snapshots.keys()) {
    if (options.tenantId && tenantId !== options.tenantId)
      throw new OverrideError(`the document names tenant ${tenantId}; only your own tenant id is allowed`, 'tenant')
  }
  for (const [tenantId, tenantSnapshot] of snapshots) {
    const observedAt = new Date(Math.min(...tenantSnapshot.prices.map((p) => p.effectiveFrom.getTime())))
    const summary = await writer.apply(tenantSnapshot, {
      observedAt,
      tenantId,
      holdRatio: Infinity,
      changedAt: clock.now(),
    })
    summaries.push(syncRunSummary(summary, tenantSnapshot))
  }
  return summaries
}
