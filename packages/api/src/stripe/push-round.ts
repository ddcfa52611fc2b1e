/** What one pusher round's steps share: the injected dependencies, the lease owner and the tallies. */
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { StripeAlerts } from './alerts.ts'
import type { StripeClient } from './client.ts'

export interface PushRound {
  groups: number
  planned: number
  sent: number
  duplicates: number
  retried: number
  failed: number
  expired: number
}

export const emptyRound = (): PushRound => ({
  groups: 0,
  planned: 0,
  sent: 0,
  duplicates: 0,
  retried: 0,
  failed: 0,
  expired: 0,
})

/**
 * What the true-up of a minimum commitment comes from (the rating domain, injected in services.ts):
 * which customers have one, and a closed period's subtotal and true-up as invoicePreview shows them.
 */
export interface TrueUpSource {
  withMinimum(tenantId: string, customerIds: readonly string[], at: Date): Promise<Set<string>>
  periodTrueUp(tenantId: string, customerId: string, periodStart: Date): Promise<{ subtotal: string; trueUp: string }>
}

/** One pusher's dependencies and settings; `killed()` turns true when the pusher is killed. */
export interface PushContext {
  db: Db
  clock: Clock
  logger: Logger
  alerts: StripeAlerts
  /** Null: no minimum-commitment true-ups are sent. */
  trueUps: TrueUpSource | null
  /** Identifies this process's claims. */
  owner: string
  leaseMs: number
  maxAttempts: number
  /** The delay before the next attempt after `attempts` attempts. */
  backoff(attempts: number): number
  killed(): boolean
}

/** One Stripe client per tenant per round (decrypting the key and building a client is costly). */
export type RoundClients = (tenantId: string) => Promise<StripeClient | null>
