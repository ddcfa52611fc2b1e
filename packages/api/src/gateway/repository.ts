import type { Executor } from '../db/database.ts'
import type { GatewayProvider, GatewayProviderKeyRow } from './db-types.ts'

export async function upsertProviderKey(
  db: Executor,
  row: { tenantId: string; provider: GatewayProvider; keyEnc: string; keyHint: string; now: Date },
): Promise<GatewayProviderKeyRow> {
  return db
    .insertInto('gateway_provider_keys')
    .values({
      tenant_id: row.tenantId,
      provider: row.provider,
      key_enc: row.keyEnc,
      key_hint: row.keyHint,
      updated_at: row.now,
    })
    .onConflict((oc) =>
      oc
        .columns(['tenant_id', 'provider'])
        .doUpdateSet({ key_enc: row.keyEnc, key_hint: row.keyHint, updated_at: row.now }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function findProviderKey(
  db: Executor,
  tenantId: string,
  provider: GatewayProvider,
): Promise<GatewayProviderKeyRow | undefined> {
  return db
    .selectFrom('gateway_provider_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .executeTakeFirst()
}

export async function listProviderKeys(db: Executor, tenantId: string): Promise<GatewayProviderKeyRow[]> {
  return db
    .selectFrom('gateway_provider_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('provider')
    .execute()
}

export async function deleteProviderKey(db: Executor, tenantId: string, provider: GatewayProvider): Promise<boolean> {
  const result = await db
    .deleteFrom('gateway_provider_keys')
    .where('tenant_id', '=', tenantId)
    .where('provider', '=', provider)
    .executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}
