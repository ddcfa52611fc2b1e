import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db, Executor, Tx } from '../db/database.ts'
import { withJobId, type Logger } from '../logger.ts'
import { Decimal, isExactDecimalString, ZERO } from '../money/decimal.ts'
import type { BurnratePubSub, ReconciliationAlertEvent } from '../pubsub.ts'
import { createSecretBox, parseMasterKey, type SecretBox } from '../secrets/box.ts'
import { badInput } from '../shared/errors.ts'
import { createProviderClients, ProviderHttpError, type Fetch, type ProviderClients } from './clients.ts'
import type { ProviderAdminKeyRow, ReconciliationAlertRow, ReportingProvider, Tenant } from '../db/types.ts'
import {
  anthropicCostRows,
  anthropicUsageRows,
  bucketKey,
  contentHash,
  mergeRows,
  openaiCostRows,
  openaiUsageRows,
  openrouterCreditRows,
  openrouterGenerationRows,
  ReportShapeError,
  type ReportedRow,
} from './normalize.ts'
import {
  reconcile,
  toCsv,
  type CatalogChange,
  type OurHour,
  type ProviderFact,
  type ReconciliationRow,
} from './reconcile.ts'
import * as repo from './repository.ts'

const DAY = 86_400_000
const MAX_RANGE_DAYS = 93
const DEFAULT_TOLERANCE = '1'
const MAX_KEY_LENGTH = 1024
/** Generations looked up per import at most (each is one request). */
const MAX_GENERATIONS = 5_000

export interface AdminKeyView {
  provider: ReportingProvider
  hint: string
  updatedAt: Date
  lastImportAt: Date | null
  lastImportError: string | null
}

export interface ImportSummary {
  provider: ReportingProvider
  from: Date
  to: Date
  /** Provider buckets read. */
  buckets: number
  /** Buckets seen for the first time. */
  inserted: number
  /** Buckets whose figures changed: stored as a new revision. */
  revised: number
  unchanged: number
  /** Set when the import failed; nothing of it was stored. */
  error: string | null
}

export interface ReconciliationTable {
  from: Date
  to: Date
  currency: string
  tolerancePercent: string
  rows: ReconciliationRow[]
}

export interface ReconciliationService {
  readonly enabled: boolean
  setAdminKey(tenant: Tenant, provider: ReportingProvider, apiKey: string): Promise<AdminKeyView>
  deleteAdminKey(tenant: Tenant, provider: ReportingProvider): Promise<boolean>
  adminKeys(tenant: Tenant): Promise<AdminKeyView[]>
  tolerancePercent(tenant: Tenant): Promise<string>
  setTolerancePercent(tenant: Tenant, percent: string): Promise<string>
  /** Imports the providers' reports for [from, to) (UTC days), then raises alerts for the complete days. */
  importUsage(
    tenant: Tenant,
    options: { provider?: ReportingProvider | null; from?: Date | null; to?: Date | null },
  ): Promise<ImportSummary[]>
  reconciliation(
    tenant: Tenant,
    options: { from: Date; to: Date; provider?: string | null; onlyDifferences?: boolean | null },
  ): Promise<ReconciliationTable>
  reconciliationCsv(
    tenant: Tenant,
    options: { from: Date; to: Date; provider?: string | null; onlyDifferences?: boolean | null },
  ): Promise<string>
  alerts(tenant: Tenant, from: Date, to: Date): Promise<ReconciliationAlertEvent[]>
  /** One scheduled round: every tenant and provider with a key whose last import is older than the interval. */
  runScheduled(): Promise<void>
  start(): void
  stop(): Promise<void>
}

export interface ReconciliationDeps {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  pubsub: BurnratePubSub
  /** Reaches provider report APIs; defaults to the global fetch. */
  fetch?: Fetch
  /** Waits between retries; defaults to a timer. */
  sleep?: (ms: number) => Promise<void>
  /** The catalog's name for a reported model (catalog.resolve); providers report dated model ids. */
  resolveModel?: (model: string, provider: string, tenantId: string) => { provider: string; model: string } | null
  /** Reloads the catalog snapshot resolveModel reads when another process changed it. */
  refreshCatalog?: () => Promise<void>
  /** Enqueues a webhook event in the caller's transaction (webhooks/service.ts). */
  enqueueWebhook: (
    trx: Executor,
    event: { tenantId: string; type: 'reconciliation.alert'; dedupeKey: string; payload: Record<string, unknown> },
  ) => Promise<unknown>
}

const alertEventOf = (row: ReconciliationAlertRow): ReconciliationAlertEvent => {
  const details = (typeof row.details === 'string' ? JSON.parse(row.details) : row.details) as Record<string, unknown>
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    provider: row.provider,
    day: new Date(row.day).toISOString(),
    kind: row.kind,
    models: (details.models as string[]) ?? [],
    usageTypes: (details.usageTypes as string[]) ?? [],
    costDifference: (details.costDifference as string | null) ?? null,
    estimatedBillableAmount: (details.estimatedBillableAmount as string | null) ?? null,
    raisedAt: new Date(row.raised_at).toISOString(),
  }
}

const view = (row: ProviderAdminKeyRow): AdminKeyView => ({
  provider: row.provider,
  hint: row.key_hint,
  updatedAt: new Date(row.updated_at),
  lastImportAt: row.last_import_at ? new Date(row.last_import_at) : null,
  lastImportError: row.last_import_error,
})

const dayStart = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY)

export function createReconciliationService(deps: ReconciliationDeps): ReconciliationService {
  const { db, clock, config, logger, pubsub } = deps
  const masterKey = config.RECONCILE_ENCRYPTION_KEY ?? config.GATEWAY_ENCRYPTION_KEY
  const box: SecretBox | null = masterKey
    ? createSecretBox(
        parseMasterKey(
          masterKey,
          config.RECONCILE_ENCRYPTION_KEY ? 'RECONCILE_ENCRYPTION_KEY' : 'GATEWAY_ENCRYPTION_KEY',
        ),
      )
    : null
  const context = (tenantId: string, provider: string) => `${tenantId}/provider-admin/${provider}`
  const clients: ProviderClients = createProviderClients(
    {
      openai: config.RECONCILE_OPENAI_URL,
      anthropic: config.RECONCILE_ANTHROPIC_URL,
      openrouter: config.RECONCILE_OPENROUTER_URL,
    },
    {
      fetch: deps.fetch ?? ((...args) => globalThis.fetch(...args)),
      timeoutMs: config.RECONCILE_TIMEOUT_MS,
      maxRetries: config.RECONCILE_MAX_RETRIES,
      sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    },
  )

  const requireBox = (): SecretBox => {
    if (!box)
      throw badInput(
        'Provider admin keys cannot be stored on this server: set RECONCILE_ENCRYPTION_KEY (or GATEWAY_ENCRYPTION_KEY).',
      )
    return box
  }

  function checkRange(from: Date, to: Date, field = 'from'): void {
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw badInput('from and to must be times', field)
    if (from.getTime() >= to.getTime()) throw badInput('from must be before to', field)
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY)
      throw badInput(`the range may span at most ${MAX_RANGE_DAYS} days`, 'to')
  }

  async function tolerance(tenantId: string): Promise<string> {
    return (await repo.tolerancePercent(db, tenantId)) ?? DEFAULT_TOLERANCE
  }

  /** Everything the provider reports for [from, to), normalized; throws ProviderHttpError / ReportShapeError. */
  async function fetchReports(tenantId: string, provider: ReportingProvider, key: string, from: Date, to: Date) {
    const rows: ReportedRow[] = []
    if (provider === 'openai') {
      for await (const page of clients.openaiCompletions(key, from, to)) rows.push(...openaiUsageRows(page))
      for await (const page of clients.openaiCosts(key, from, to)) rows.push(...openaiCostRows(page))
    } else if (provider === 'anthropic') {
      for await (const page of clients.anthropicUsage(key, from, to)) rows.push(...anthropicUsageRows(page))
      for await (const page of clients.anthropicCosts(key, from, to)) rows.push(...anthropicCostRows(page))
    } else {
      const ids = await repo.openrouterGenerationIds(db, tenantId, from, to)
      const known = await repo.importedGenerationIds(db, tenantId, ids)
      for (const id of ids.filter((i) => !known.has(i)).slice(0, MAX_GENERATIONS)) {
        const generation = await clients.openrouterGeneration(key, id)
        if (generation) rows.push(...openrouterGenerationRows(generation))
      }
      rows.push(...openrouterCreditRows(await clients.openrouterKey(key), clock.now()))
    }
    return mergeRows(rows)
  }

  /** Stores what changed: a new bucket as revision 1, a changed one as the next revision, nothing else. */
  async function store(tenantId: string, provider: ReportingProvider, rows: readonly ReportedRow[]) {
    const counts = { inserted: 0, revised: 0, unchanged: 0 }
    if (rows.length === 0) return counts
    const starts = rows.map((r) => r.bucketStart.getTime())
    const now = clock.now()
    await db.transaction().execute(async (trx) => {
      await repo.lockImport(trx, tenantId, provider)
      const latest = new Map(
        (
          await repo.latestRevisions(
            trx,
            tenantId,
            provider,
            new Date(Math.min(...starts)),
            new Date(Math.max(...starts) + 1),
          )
        ).map((r) => [
          bucketKey({
            source: r.source,
            bucketStart: new Date(r.bucket_start),
            bucketWidth: r.bucket_width,
            model: r.model,
            usageType: r.usage_type,
            line: r.line,
          }),
          r,
        ]),
      )
      const fresh: (ReportedRow & { revision: number; contentHash: string })[] = []
      for (const row of rows) {
        const hash = contentHash(row)
        const previous = latest.get(bucketKey(row))
        if (!previous) counts.inserted++
        else if (previous.content_hash === hash) {
          counts.unchanged++
          continue
        } else counts.revised++
        fresh.push({ ...row, revision: (previous?.revision ?? 0) + 1, contentHash: hash })
      }
      await repo.insertRevisions(trx, tenantId, provider, fresh, now)
    })
    return counts
  }

  async function importOne(
    tenantId: string,
    provider: ReportingProvider,
    from: Date,
    to: Date,
  ): Promise<ImportSummary> {
    const summary: ImportSummary = {
      provider,
      from,
      to,
      buckets: 0,
      inserted: 0,
      revised: 0,
      unchanged: 0,
      error: null,
    }
    const row = await repo.findAdminKey(db, tenantId, provider)
    if (!row) {
      summary.error = `no ${provider} admin key is set`
      return summary
    }
    try {
      const key = requireBox().open(row.key_enc, context(tenantId, provider))
      const rows = await fetchReports(tenantId, provider, key, from, to)
      summary.buckets = rows.length
      Object.assign(summary, await store(tenantId, provider, rows))
      await repo.markImport(db, tenantId, provider, clock.now(), null)
    } catch (error) {
      if (!(error instanceof ProviderHttpError || error instanceof ReportShapeError)) throw error
      summary.error = `${provider}: ${error.message}`
      logger.warn('provider usage import failed', { tenantId, provider, error: error.message })
      await repo.markImport(db, tenantId, provider, clock.now(), summary.error.slice(0, 500))
    }
    return summary
  }

  async function table(
    tenantId: string,
    currency: string,
    options: { from: Date; to: Date; provider?: string | null; onlyDifferences?: boolean | null },
  ): Promise<ReconciliationTable> {
    const from = dayStart(options.from)
    const to = new Date(Math.ceil(options.to.getTime() / DAY) * DAY)
    checkRange(from, to)
    await deps.refreshCatalog?.()
    const [revisions, ours, lineCosts, tol, plans] = await Promise.all([
      repo.latestRevisions(db, tenantId, options.provider ?? null, from, to),
      repo.ourHours(db, tenantId, from, to),
      repo.ourLineCosts(db, tenantId, from, to),
      tolerance(tenantId),
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

  async function tenantCurrency(tenantId: string): Promise<string> {
    return (await repo.tenantCurrency(db, tenantId)) ?? 'USD'
  }

  /** Alerts for the complete days of [from, to): one per provider, day and kind, ever. */
  async function raiseAlerts(tenantId: string, from: Date, to: Date): Promise<void> {
    const complete = new Date(Math.min(to.getTime(), dayStart(clock.now()).getTime()))
    if (complete <= from) return
    const { rows } = await table(tenantId, await tenantCurrency(tenantId), { from, to: complete })
    const groups = new Map<string, ReconciliationRow[]>()
    for (const row of rows) {
      if (row.status === 'MATCHED') continue
      const key = `${row.provider}|${row.day.getTime()}|${row.status}`
      groups.set(key, [...(groups.get(key) ?? []), row])
    }
    if (groups.size === 0) return
    const now = clock.now()
    const sum = (values: (Decimal | null)[]) => {
      const known = values.filter((v): v is Decimal => v !== null)
      return known.length ? known.reduce((a, b) => a.plus(b), ZERO).toFixed() : null
    }
    const candidates = [...groups.values()].map((group) => ({
      tenantId,
      provider: group[0]!.provider,
      day: group[0]!.day,
      kind: group[0]!.status,
      now,
      details: {
        models: [...new Set(group.map((r) => r.model))].sort(),
        usageTypes: [...new Set(group.map((r) => r.usageType))].sort(),
        costDifference: sum(group.map((r) => r.costDifference)),
        estimatedBillableAmount: sum(group.map((r) => r.estimatedBillableAmount)),
      },
    }))
    const raised = await db.transaction().execute(async (trx: Tx) => {
      const inserted = await repo.insertAlerts(trx, candidates)
      for (const row of inserted) {
        const event = alertEventOf(row)
        const { tenantId: _t, ...payload } = event
        await deps.enqueueWebhook(trx, {
          tenantId,
          type: 'reconciliation.alert',
          dedupeKey: `reconciliation.alert:${row.provider}:${event.day}:${row.kind}`,
          payload,
        })
      }
      return inserted
    })
    for (const row of raised) pubsub.publish('reconciliationAlert', tenantId, alertEventOf(row))
  }

  let timer: ReturnType<typeof setInterval> | null = null
  let running: Promise<void> | null = null

  const service: ReconciliationService = {
    enabled: box !== null,

    async setAdminKey(tenant, provider, apiKey) {
      const sealer = requireBox()
      const key = apiKey.trim()
      if (key.length < 8 || key.length > MAX_KEY_LENGTH || /\s/.test(key))
        throw badInput(`apiKey must be 8-${MAX_KEY_LENGTH} characters without spaces`, 'input.apiKey')
      const row = await repo.upsertAdminKey(db, {
        tenantId: tenant.id,
        provider,
        keyEnc: sealer.seal(key, context(tenant.id, provider)),
        keyHint: `…${key.slice(-4)}`,
        now: clock.now(),
      })
      return view(row)
    },

    deleteAdminKey: (tenant, provider) => repo.deleteAdminKey(db, tenant.id, provider),

    adminKeys: async (tenant) => (await repo.listAdminKeys(db, tenant.id)).map(view),

    tolerancePercent: (tenant) => tolerance(tenant.id),

    async setTolerancePercent(tenant, percent) {
      const text = percent.trim()
      if (!isExactDecimalString(text) || new Decimal(text).isNegative() || new Decimal(text).greaterThan(100))
        throw badInput('tolerancePercent must be a decimal from 0 to 100', 'tolerancePercent')
      await repo.setTolerancePercent(db, tenant.id, new Decimal(text).toFixed(), clock.now())
      return new Decimal(text).toFixed()
    },

    async importUsage(tenant, options) {
      requireBox()
      const now = clock.now()
      const to = options.to ?? now
      const from = options.from ?? new Date(dayStart(now).getTime() - config.RECONCILE_LOOKBACK_DAYS * DAY)
      checkRange(from, to)
      const alignedFrom = dayStart(from)
      const providers = options.provider
        ? [options.provider]
        : (await repo.listAdminKeys(db, tenant.id)).map((k) => k.provider)
      if (options.provider && !(await repo.findAdminKey(db, tenant.id, options.provider)))
        throw badInput(`no ${options.provider} admin key is set: setProviderAdminKey first`, 'provider')
      const summaries: ImportSummary[] = []
      for (const provider of providers) summaries.push(await importOne(tenant.id, provider, alignedFrom, to))
      await raiseAlerts(tenant.id, alignedFrom, to)
      return summaries
    },

    reconciliation: (tenant, options) => table(tenant.id, tenant.currency, options),

    async reconciliationCsv(tenant, options) {
      const t = await table(tenant.id, tenant.currency, options)
      return toCsv(t.rows, t.currency)
    },

    async alerts(tenant, from, to) {
      checkRange(from, to)
      return (await repo.listAlerts(db, tenant.id, from, to)).map(alertEventOf)
    },

    async runScheduled() {
      if (!box) return
      const now = clock.now()
      const from = new Date(dayStart(now).getTime() - config.RECONCILE_LOOKBACK_DAYS * DAY)
      const due = await repo.claimDueImports(db, now, new Date(now.getTime() - config.RECONCILE_INTERVAL / 2))
      const tenants = new Set<string>()
      for (const { tenant_id, provider } of due) {
        try {
          await importOne(tenant_id, provider, from, now)
          tenants.add(tenant_id)
        } catch (error) {
          logger.error('scheduled provider import failed', { tenantId: tenant_id, provider, error: String(error) })
        }
      }
      for (const tenantId of tenants) {
        try {
          await raiseAlerts(tenantId, from, now)
        } catch (error) {
          logger.error('reconciliation alerts failed', { tenantId, error: String(error) })
        }
      }
    },

    start() {
      if (timer || config.RECONCILE_INTERVAL === 0 || !box) return
      const tick = () => {
        if (running) return
        running = withJobId(logger, 'reconciliation', () => service.runScheduled()).finally(() => {
          running = null
        })
      }
      timer = setInterval(tick, Math.min(config.RECONCILE_INTERVAL, 2 ** 31 - 1))
      timer.unref?.()
      tick()
    },

    async stop() {
      if (timer) clearInterval(timer)
      timer = null
      await running
    },
  }
  return service
}
