import { badInput } from '../shared/errors.ts'
import { createSecretBox, parseMasterKey, type SecretBox } from '../secrets/box.ts'
import { createProviderClients, type ProviderClients } from './clients.ts'
import * as repo from './repository.ts'
import type { ReconciliationDeps } from './types.ts'

export const DAY = 86_400_000
const MAX_RANGE_DAYS = 93
const DEFAULT_TOLERANCE = '1'

export const dayStart = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY)

export function checkRange(from: Date, to: Date, field = 'from'): void {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw badInput('from and to must be times', field)
  if (from.getTime() >= to.getTime()) throw badInput('from must be before to', field)
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY)
    throw badInput(`the range may span at most ${MAX_RANGE_DAYS} days`, 'to')
}

/** What every reconciliation use case shares, made once per service from its deps (read-only afterwards). */
export interface ReconciliationParts {
  deps: ReconciliationDeps
  /** Seals and opens provider admin keys; null when no encryption key is configured. */
  box: SecretBox | null
  requireBox(): SecretBox
  /** The sealing context of a tenant's admin key for a provider. */
  keyContext(tenantId: string, provider: string): string
  clients: ProviderClients
  tolerance(tenantId: string): Promise<string>
}

export function createParts(deps: ReconciliationDeps): ReconciliationParts {
  const { config } = deps
  const masterKey = config.RECONCILE_ENCRYPTION_KEY ?? config.GATEWAY_ENCRYPTION_KEY
  const box: SecretBox | null = masterKey
    ? createSecretBox(
        parseMasterKey(
          masterKey,
          config.RECONCILE_ENCRYPTION_KEY ? 'RECONCILE_ENCRYPTION_KEY' : 'GATEWAY_ENCRYPTION_KEY',
        ),
      )
    : null
  const clients = createProviderClients(
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
  return {
    deps,
    box,
    requireBox() {
      if (!box)
        throw badInput(
          'Provider admin keys cannot be stored on this server: set RECONCILE_ENCRYPTION_KEY (or GATEWAY_ENCRYPTION_KEY).',
        )
      return box
    },
    keyContext: (tenantId, provider) => `${tenantId}/provider-admin/${provider}`,
    clients,
    tolerance: async (tenantId) => (await repo.tolerancePercent(deps.db, tenantId)) ?? DEFAULT_TOLERANCE,
  }
}
