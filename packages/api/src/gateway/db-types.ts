/** The gateway's table names for domain code: aliases of the generated types (db/generated.ts). */
import type { Selectable } from '../db/types.ts'
import type * as G from '../db/generated.ts'

export type { GatewayProvider } from '../db/column-types.ts'

type GatewayProviderKeyTable = G.GatewayProviderKeys
export type GatewayProviderKeyRow = Selectable<GatewayProviderKeyTable>
