/** The webhook tables' names for domain code: aliases of the generated types (db/generated.ts). */
import type { Selectable } from '../db/types.ts'
import type * as G from '../db/generated.ts'

export type { WebhookDeliveryStatus } from '../db/column-types.ts'

export type WebhookEndpointTable = G.WebhookEndpoints
export type WebhookEventTable = G.WebhookEvents
export type WebhookDeliveryTable = G.WebhookDeliveries
export type WebhookAttemptTable = G.WebhookAttempts

export type WebhookEndpointRow = Selectable<WebhookEndpointTable>
export type WebhookDeliveryRow = Selectable<WebhookDeliveryTable>
export type WebhookAttemptRow = Selectable<WebhookAttemptTable>
