/** Recording one gateway call's usage, through the same group commit as single recordUsage calls. */
import type { MeteredUsage } from '@burnrate/sdk'
import type { Tenant } from '../../db/types.ts'
import type { GatewayDeps } from './deps.ts'
import type { ProviderSpec } from './providers.ts'

/** What recording a call's usage did: whether its usage is in the ledger, and whether it settled the call's own reservation. */
export interface Recorded {
  inLedger: boolean
  settledReservation: boolean
}

/** Records the call's usage (null: the provider gave none). */
export type Recorder = (usage: MeteredUsage | null, completeness: 'complete' | 'partial') => Promise<Recorded>

const NOTHING: Recorded = { inLedger: false, settledReservation: false }

/**
 * Records one call's usage exactly once; a failure is logged with the whole event so it can be
 * replayed. With a budget reservation, the event carries its id and settles it: the answer says
 * whether it did (a newly recorded event), so the caller releases the reservation otherwise; a
 * hold on a lease is kept as taken when the usage is in the ledger, else given back.
 */
export function recorder(
  deps: Pick<GatewayDeps, 'logger' | 'usage'>,
  spec: ProviderSpec,
  tenant: Tenant,
  customerId: string,
  feature: string | null,
  reservationId: string | null,
): Recorder {
  let done = false
  return async (usage, completeness) => {
    if (done) return NOTHING
    done = true
    if (!usage) {
      // OpenAI reports a stream's usage only in its last chunk: a stream cut before it has no provider numbers.
      deps.logger.warn('gateway: call ended without provider usage; nothing recorded', {
        provider: spec.provider,
        tenantId: tenant.id,
        customerId,
        completeness,
      })
      return NOTHING
    }
    const event = {
      id: usage.id,
      customerId,
      model: usage.model,
      provider: usage.provider ?? spec.provider,
      timestamp: new Date(usage.timestamp),
      inputTokens: usage.inputTokens ?? 0,
      outputTokens: usage.outputTokens ?? 0,
      cacheReadTokens: usage.cacheReadTokens ?? 0,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      reasoningTokens: usage.reasoningTokens ?? 0,
      units: usage.units ?? null,
      feature,
      metadata: completeness === 'partial' ? { source: 'gateway', partial: true } : { source: 'gateway' },
    }
    // Logged without the reservation: an event that did not settle it is released, and a replay must not name it.
    try {
      const result = await deps.usage.recordOne(tenant, reservationId ? { ...event, reservationId } : event)
      if (result?.status === 'REJECTED')
        deps.logger.error('gateway: usage rejected', { tenantId: tenant.id, event, error: result.error })
      return {
        // A duplicate is the same call recorded before (a replayed response id): its usage is in the ledger.
        inLedger: result?.status === 'RECORDED' || result?.status === 'DUPLICATE',
        settledReservation: result?.status === 'RECORDED' && reservationId !== null,
      }
    } catch (error) {
      deps.logger.error('gateway: usage could not be recorded', {
        tenantId: tenant.id,
        event,
        error: error instanceof Error ? error.message : String(error),
      })
      return NOTHING
    }
  }
}
