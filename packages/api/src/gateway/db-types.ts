import type { ColumnType, Generated, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string, Date | string>

export type GatewayProvider = 'openai' | 'anthropic'

/** One upstream provider key per tenant and provider, sealed (crypto.ts); never returned by the API. */
export interface GatewayProviderKeyTable {
  tenant_id: string
  provider: GatewayProvider
  key_enc: string
  key_hint: string
  created_at: Generated<Date>
  updated_at: Timestamp
}

export type GatewayProviderKeyRow = Selectable<GatewayProviderKeyTable>

export interface GatewayTables {
  gateway_provider_keys: GatewayProviderKeyTable
}
