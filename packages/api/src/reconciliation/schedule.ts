import { withJobId } from '../logger.ts'
import type { RaiseAlerts } from './alerts.ts'
import type { ImportOne } from './imports.ts'
import { dayStart, DAY, type ReconciliationParts } from './parts.ts'
import * as repo from './repository.ts'
import type { ReconciliationService } from './types.ts'

/** The scheduled imports: a timer per service instance, one round at a time. */
export function scheduleUseCases(
  parts: ReconciliationParts,
  importOne: ImportOne,
  raiseAlerts: RaiseAlerts,
): Pick<ReconciliationService, 'runScheduled' | 'start' | 'stop'> {
  const { db, clock, config, logger } = parts.deps
  let timer: ReturnType<typeof setInterval> | null = null
  let running: Promise<void> | null = null

  async function runScheduled() {
    if (!parts.box) return
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
  }

  return {
    runScheduled,
    start() {
      if (timer || config.RECONCILE_INTERVAL === 0 || !parts.box) return
      const tick = () => {
        if (running) return
        running = withJobId(logger, 'reconciliation', runScheduled).finally(() => {
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
}
