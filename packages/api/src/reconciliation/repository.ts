import { sql, type Transaction } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { DB } from '../db/types.ts'
import type {
  ProviderAdminKeyRow,
  ProviderUsageRevisionRow,
  ReconciliationAlertRow,
  ReportingProvider,
} from '../db/types.ts'
import type { ReportedRow } from './normalize.ts'

// ---- admin keys ----------------------------------------------------------------------------

export function upsertAdminKey(
  db: Executor,
  row: { tenantId: string; provider: ReportingProvider; keyEnc: string; keyHint: string; now: Date },
): Promise<ProviderAdminKeyRow> {
  return db
    .insertInto('provider_admin_keys')
    .values({
      tenant_id: row.tenantId,
      provider: row.provider,
      key_enc: row.keyEnc,
      key_hint: row.keyHint,
      updated_at: row.now,
    })
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'provider']).doUpdateSet({
        key_enc: row.keyEnc,
        key_hint: row.keyHint,
        updated_at: row.now,
        last_import_error: null,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}

export function findAdminKey(
  db: Executor,
  tenantId: string,
  provider: ReportingProvider,
): Promise<ProviderAdminKeyRow | undefined> {
  return db
    .selectFrom('provider_admin_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .executeTakeFirst()
}

export function listAdminKeys(db: Executor, tenantId: string): Promise<ProviderAdminKeyRow[]> {
  return db
    .selectFrom('provider_admin_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('provider')
    .execute()
}

export async function deleteAdminKey(db: Executor, tenantId: string, provider: ReportingProvider): Promise<boolean> {
  const result = await db
    .deleteFrom('provider_admin_keys')
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}

export async function markImport(
  db: Executor,
  tenantId: string,
  provider: ReportingProvider,
  at: Date,
  error: string | null,
): Promise<void> {
  await db
    .updateTable('provider_admin_keys')
    .set({ last_import_at: at, last_import_error: error })
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .execute()
}

// ---- settings ------------------------------------------------------------------------------

export async function tolerancePercent(db: Executor, tenantId: string): Promise<string | null> {
  const row = await db
    .selectFrom('reconciliation_settings')
    .select('tolerance_percent')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst()
  return row?.tolerance_percent ?? null
}

export async function setTolerancePercent(db: Executor, tenantId: string, percent: string, now: Date): Promise<void> {
  await db
    .insertInto('reconciliation_settings')
    .values({ tenant_id: tenantId, tolerance_percent: percent, updated_at: now })
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ tolerance_percent: percent, updated_at: now }))
    .execute()
}

// ---- provider revisions --------------------------------------------------------------------

/** Serializes imports of one tenant and provider, so revision numbers never collide. */
export async function lockImport(trx: Transaction<DB>, tenantId: string, provider: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${'burnrate.provider-import:' + tenantId + ':' + provider}, 0))`.execute(
    trx,
  )
}

/** The latest revision of every bucket of the tenant and provider starting in [from, to). */
export async function latestRevisions(
  db: Executor,
  tenantId: string,
  provider: string | null,
  from: Date,
  to: Date,
  sources?: readonly ('usage' | 'cost' | 'generation' | 'credits')[],
): Promise<ProviderUsageRevisionRow[]> {
  let q = db
    .selectFrom('provider_usage_revisions')
    .selectAll()
    .distinctOn(['provider', 'source', 'bucket_start', 'bucket_width', 'model', 'usage_type', 'line'])
    .where('tenant_id', '=', tenantId)
    .where('bucket_start', '>=', from)
    .where('bucket_start', '<', to)
  if (provider) q = q.where('provider', '=', provider)
  if (sources) q = q.where('source', 'in', [...sources])
  return q
    .orderBy('provider')
    .orderBy('source')
    .orderBy('bucket_start')
    .orderBy('bucket_width')
    .orderBy('model')
    .orderBy('usage_type')
    .orderBy('line')
    .orderBy('revision', 'desc')
    .execute()
}

export async function insertRevisions(
  trx: Executor,
  tenantId: string,
  provider: string,
  rows: readonly (ReportedRow & { revision: number; contentHash: string })[],
  now: Date,
): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await trx
      .insertInto('provider_usage_revisions')
      .values(
        rows.slice(i, i + 500).map((r) => ({
          tenant_id: tenantId,
          provider,
          source: r.source,
          bucket_start: r.bucketStart,
          bucket_width: r.bucketWidth,
          model: r.model,
          usage_type: r.usageType,
          line: r.line,
          revision: r.revision,
          quantity: r.quantity,
          cost: r.cost,
          currency: r.currency,
          content_hash: r.contentHash,
          imported_at: now,
        })),
      )
      .execute()
  }
}

/** Generation ids already imported (a finished generation's statistics do not change). */
export async function importedGenerationIds(
  db: Executor,
  tenantId: string,
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const rows = await db
    .selectFrom('provider_usage_revisions')
    .select('line')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', 'openrouter')
    .where('source', '=', 'generation')
    .where('line', 'in', [...ids])
    .execute()
  return new Set(rows.map((r) => r.line))
}

/**
 * OpenRouter generation ids of the tenant's events in [from, to): `metadata.generationId`, or the
 * event id itself when it is one (`gen-…`).
 */
export async function openrouterGenerationIds(db: Executor, tenantId: string, from: Date, to: Date): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    select distinct coalesce(metadata->>'generationId', id) as id
      from usage_events
     where tenant_id = ${tenantId} and ts >= ${from} and ts < ${to}
       and coalesce(canonical_provider, provider) = 'openrouter'
       and (metadata->>'generationId' is not null or id like 'gen-%')
     order by 1`.execute(db)
  return rows.rows.map((r) => r.id)
}

// ---- our side ------------------------------------------------------------------------------

export interface OurHourRow {
  hour: Date
  provider: string
  model: string
  events: string
  unpriced_events: string
  input: string
  output: string
  cache_read: string
  cache_write: string
  input_audio_tokens: string
  output_audio_tokens: string
  web_searches: string
  cost: string
}

const unitSum = (unit: string) => sql<string>`coalesce(sum((
    select sum((u->>'quantity')::numeric) from jsonb_array_elements(
      case when jsonb_typeof(units) = 'array' then units else '[]'::jsonb end) u
     where u->>'unit' = ${unit})), 0)::text`

/** The tenant's metered events in [from, to) by UTC hour, provider and model (names as the rollups key them). */
export async function ourHours(db: Executor, tenantId: string, from: Date, to: Date): Promise<OurHourRow[]> {
  const rows = await sql<OurHourRow>`
    select date_bin('1 hour', ts, timestamptz '2000-01-01T00:00:00Z') as hour,
           coalesce(canonical_provider, provider, '') as provider,
           coalesce(canonical_model, model) as model,
           count(*)::text as events,
           count(*) filter (where status = 'UNPRICED')::text as unpriced_events,
           sum(input_tokens)::text as input,
           sum(output_tokens)::text as output,
           sum(cache_read_tokens)::text as cache_read,
           sum(cache_write_tokens)::text as cache_write,
           ${unitSum('input_audio_tokens')} as input_audio_tokens,
           ${unitSum('output_audio_tokens')} as output_audio_tokens,
           ${unitSum('web_searches')} as web_searches,
           coalesce(sum(cost), 0)::text as cost
      from usage_events
     where tenant_id = ${tenantId} and ts >= ${from} and ts < ${to}
     group by 1, 2, 3
     order by 1, 2, 3`.execute(db)
  return rows.rows.map((r) => ({ ...r, hour: new Date(r.hour) }))
}

export interface OurLineCostRow {
  hour: Date
  provider: string
  model: string
  usage_type: string
  cost: string
}

/** Cost of the priced lines in [from, to) by hour, provider, model and usage type (corrections included). */
export async function ourLineCosts(db: Executor, tenantId: string, from: Date, to: Date): Promise<OurLineCostRow[]> {
  const rows = await db
    .selectFrom('usage_line_rollups')
    .select(['bucket as hour', 'provider', 'model', 'usage_type'])
    .select(sql<string>`sum(cost)::text`.as('cost'))
    .where('tenant_id', '=', tenantId)
    .where('bucket', '>=', from)
    .where('bucket', '<', to)
    .groupBy(['bucket', 'provider', 'model', 'usage_type'])
    .execute()
  return rows.map((r) => ({ ...r, hour: new Date(r.hour) }))
}

export interface CatalogChangeRow {
  provider: string
  model: string
  usage_type: string
  unit_price: string
  effective_from: Date
  effective_to: Date | null
  source: string
  tenant_id: string | null
}

/** Catalog rows (public and the tenant's own) of these models that opened or closed in [from, to). */
export async function catalogChanges(
  db: Executor,
  tenantId: string,
  models: readonly string[],
  from: Date,
  to: Date,
): Promise<CatalogChangeRow[]> {
  if (models.length === 0) return []
  return db
    .selectFrom('price_catalog')
    .select(['provider', 'model', 'usage_type', 'unit_price', 'effective_from', 'effective_to', 'source', 'tenant_id'])
    .where('model', 'in', [...new Set(models)])
    .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenantId)]))
    .where((eb) =>
      eb.or([
        eb.and([eb('effective_from', '>=', from), eb('effective_from', '<', to)]),
        eb.and([eb('effective_to', '>=', from), eb('effective_to', '<', to)]),
      ]),
    )
    .orderBy('effective_from')
    .execute()
}

/** The tenant's default pricing plans (no customer), every version. */
export function defaultPlans(db: Executor, tenantId: string) {
  return db
    .selectFrom('pricing_plans')
    .select(['kind', 'percent', 'effective_from'])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'is', null)
    .orderBy('effective_from')
    .execute()
}

// ---- alerts --------------------------------------------------------------------------------

/** Inserts the alerts not raised before; returns those inserted (each exactly once, ever). */
export async function insertAlerts(
  trx: Executor,
  alerts: readonly { tenantId: string; provider: string; day: Date; kind: string; details: unknown; now: Date }[],
): Promise<ReconciliationAlertRow[]> {
  const inserted: ReconciliationAlertRow[] = []
  for (const a of alerts) {
    const row = await trx
      .insertInto('reconciliation_alerts')
      .values({
        tenant_id: a.tenantId,
        provider: a.provider,
        day: a.day,
        kind: a.kind,
        details: JSON.stringify(a.details),
        raised_at: a.now,
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'provider', 'day', 'kind']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (row) inserted.push(row)
  }
  return inserted
}

export function listAlerts(db: Executor, tenantId: string, from: Date, to: Date): Promise<ReconciliationAlertRow[]> {
  return db
    .selectFrom('reconciliation_alerts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('day', '>=', from)
    .where('day', '<', to)
    .orderBy('day')
    .orderBy('provider')
    .orderBy('kind')
    .execute()
}

export async function tenantCurrency(db: Executor, tenantId: string): Promise<string | null> {
  const row = await db.selectFrom('tenants').select('currency').where('id', '=', tenantId).executeTakeFirst()
  return row?.currency ?? null
}

/**
 * Claims the (tenant, provider) imports due: those last imported before `dueBefore`. The claim
 * stamps last_import_at, so another process running the schedule at the same time skips them.
 */
export function claimDueImports(
  db: Executor,
  now: Date,
  dueBefore: Date,
): Promise<{ tenant_id: string; provider: ReportingProvider }[]> {
  return db
    .updateTable('provider_admin_keys')
    .set({ last_import_at: now })
    .where((eb) => eb.or([eb('last_import_at', 'is', null), eb('last_import_at', '<', dueBefore)]))
    .returning(['tenant_id', 'provider'])
    .execute()
}
