import type { ColumnType, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string, Date | string>
type Json<T> = ColumnType<T, string, string>

export type WebhookDeliveryStatus = 'PENDING' | 'SUCCEEDED' | 'DEAD'

export interface WebhookEndpointTable {
  id: string
  tenant_id: string
  url: string
  event_types: Json<string[]>
  secret: string
  /** The secret replaced by the last rotation: it signs too (beside `secret`) until previous_secret_expires_at. */
  previous_secret: ColumnType<string | null, string | null | undefined, string | null>
  previous_secret_expires_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
  secret_rotated_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
  description: string | null
  enabled: boolean
  created_at: Timestamp
  disabled_at: Timestamp | null
}

export interface WebhookEventTable {
  id: string
  tenant_id: string
  type: string
  dedupe_key: string
  payload: Json<Record<string, unknown>>
  created_at: Timestamp
}

export interface WebhookDeliveryTable {
  id: string
  tenant_id: string
  endpoint_id: string
  event_id: string
  status: WebhookDeliveryStatus
  attempts: number
  attempt_limit: number
  next_attempt_at: Timestamp
  last_attempt_at: Timestamp | null
  last_status_code: number | null
  last_error: string | null
  delivered_at: Timestamp | null
  created_at: Timestamp
}

export interface WebhookAttemptTable {
  delivery_id: string
  attempt: number
  started_at: Timestamp
  duration_ms: number
  status_code: number | null
  error: string | null
  /** Where the attempt went (null for attempts made before URLs could change). */
  url: ColumnType<string | null, string | null | undefined, string | null>
}

/** The webhook tables, merged into the DB type in db/types.ts. */
export interface WebhookTables {
  webhook_endpoints: WebhookEndpointTable
  webhook_events: WebhookEventTable
  webhook_deliveries: WebhookDeliveryTable
  webhook_attempts: WebhookAttemptTable
}

export type WebhookEndpointRow = Selectable<WebhookEndpointTable>
export type WebhookDeliveryRow = Selectable<WebhookDeliveryTable>
export type WebhookAttemptRow = Selectable<WebhookAttemptTable>
