import { alertRaiser, alertUseCases } from './alerts.ts'
import { importer, importUseCases } from './imports.ts'
import { keyUseCases } from './keys.ts'
import { createParts } from './parts.ts'
import { scheduleUseCases } from './schedule.ts'
import { tableBuilder, tableUseCases } from './table.ts'
import type { ReconciliationDeps, ReconciliationService } from './types.ts'

export type { ReconciliationService } from './types.ts'

/**
 * Reconciliation with the providers' own reports, composed of its use cases: admin keys and
 * tolerance (keys.ts), imports of the reports (imports.ts), the table (table.ts), alerts on
 * differences (alerts.ts) and the scheduled imports (schedule.ts); parts.ts holds what they share.
 */
export function createReconciliationService(deps: ReconciliationDeps): ReconciliationService {
  const parts = createParts(deps)
  const table = tableBuilder(parts)
  const raiseAlerts = alertRaiser(parts, table)
  const importOne = importer(parts)
  return {
    enabled: parts.box !== null,
    ...keyUseCases(parts),
    ...importUseCases(parts, importOne, raiseAlerts),
    ...tableUseCases(table),
    ...alertUseCases(parts),
    ...scheduleUseCases(parts, importOne, raiseAlerts),
  }
}
