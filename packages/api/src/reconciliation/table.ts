import { Decimal } from '../money/decimal.ts'
import { checkRange, dayStart, DAY, type ReconciliationParts } from './parts.ts'
import { reconcile, toCsv, type CatalogChange, type OurHour, type ProviderFact } from './reconcile.ts'
import * as repo from './repository.ts'
import type { ReconciliationService, ReconciliationTable, TableOptions } from './types.ts'

/** The reconciliation table of [from, to) (widened to UTC days): provider facts against our usage and costs. */
export type BuildTable = (tenantId: string, currency: string, options: TableOptions) => Promise<ReconciliationTable>

export function tableBuilder(parts: ReconciliationParts): BuildTable {
  const { deps } = parts
  const { db } = deps
  return async function table(tenantId, currency, options) {
    const from = dayStart(options.from)
    const to = new Date(Math.ceil(options.to.getTime() / DAY) * DAY)
    checkRange(from, to)
    await deps.refreshCatalog?.()
    const [revisions, ours, lineCosts, tol, plans] = await Promise.all([
      repo.latestRevisions(db, tenantId, options.provider ?? null, from, to),
      repo.ourHours(db, tenantId, from, to),
      repo.ourLineCosts(db, tenantId, from, to),
      parts.tolerance(tenantId),
      repo.defaultPlans(db, tenantId),
    ])
    const resolved = new Map<string, string>()
    const ourName = (provider: string, model: string) => {
      if (!model || model === '*' || !deps.resolveModel) return model
      const key = `${provider}\u0001${model}`
      let name = resolved.get(key)
      if (name === undefined) {
        name = deps.resolveModel(model, provider, tenantId)?.model ?? model
        resolved.set(key, name)
      }
      return name
    }
    const facts: ProviderFact[] = revisions.map((r) => ({
      provider: r.provider,
      source: r.source,
      bucketStart: new Date(r.bucket_start),
      bucketWidth: r.bucket_width,
      model: ourName(r.provider, r.model),
      reportedModel: r.model,
      usageType: r.usage_type,
      quantity: r.quantity === null ? null : new Decimal(r.quantity),
      cost: r.cost === null ? null : new Decimal(r.cost),
    }))
    const ourHours: OurHour[] = ours
      .filter((o) => !options.provider || o.provider === options.provider)
      .map((o) => ({
        hour: o.hour,
        provider: o.provider,
        model: o.model,
        events: Number(o.events),
        unpricedEvents: Number(o.unpriced_events),
        quantities: {
          input: new Decimal(o.input),
          output: new Decimal(o.output),
          cache_read: new Decimal(o.cache_read),
          cache_write: new Decimal(o.cache_write),
          input_audio_tokens: new Decimal(o.input_audio_tokens),
          output_audio_tokens: new Decimal(o.output_audio_tokens),
          web_searches: new Decimal(o.web_searches),
          requests: new Decimal(o.events),
        },
      }))
    const models = [...new Set([...ours.map((o) => o.model), ...revisions.map((r) => r.model)])].filter(Boolean)
    const changes: CatalogChange[] = []
    for (const c of await repo.catalogChanges(db, tenantId, models, from, to)) {
      const base = { provider: c.provider, model: c.model, usageType: c.usage_type, unitPrice: c.unit_price }
      const source = c.tenant_id ? `${c.source} (your price)` : c.source
      const opened = new Date(c.effective_from)
      if (opened >= from && opened < to) changes.push({ ...base, kind: 'OPENED', at: opened, source })
      if (c.effective_to) {
        const closed = new Date(c.effective_to)
        if (closed >= from && closed < to) changes.push({ ...base, kind: 'CLOSED', at: closed, source })
      }
    }
    let rows = reconcile({
      from,
      to,
      tolerancePercent: new Decimal(tol),
      facts,
      ours: ourHours,
      ourCosts: lineCosts
        .filter((c) => !options.provider || c.provider === options.provider)
        .map((c) => ({
          hour: c.hour,
          provider: c.provider,
          model: c.model,
          usageType: c.usage_type,
          cost: new Decimal(c.cost),
        })),
      catalogChanges: changes,
      defaultPlans: plans.map((p) => ({
        kind: p.kind,
        percent: p.percent,
        customerId: null,
        effectiveFrom: new Date(p.effective_from),
      })),
      currency,
    })
    if (options.onlyDifferences) rows = rows.filter((r) => r.status !== 'MATCHED')
    return { from, to, currency, tolerancePercent: tol, rows }
  }
}

export function tableUseCases(table: BuildTable): Pick<ReconciliationService, 'reconciliation' | 'reconciliationCsv'> {
  return {
    reconciliation: (tenant, options) => table(tenant.id, tenant.currency, options),
    async reconciliationCsv(tenant, options) {
      const t = await table(tenant.id, tenant.currency, options)
      return toCsv(t.rows, t.currency)
    },
  }
}
