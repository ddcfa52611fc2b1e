import { Decimal, isExactDecimalString } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import type { ProviderAdminKeyRow } from '../db/types.ts'
import type { ReconciliationParts } from './parts.ts'
import * as repo from './repository.ts'
import type { AdminKeyView, ReconciliationService } from './types.ts'

const MAX_KEY_LENGTH = 1024

const view = (row: ProviderAdminKeyRow): AdminKeyView => ({
  provider: row.provider,
  hint: row.key_hint,
  updatedAt: new Date(row.updated_at),
  lastImportAt: row.last_import_at ? new Date(row.last_import_at) : null,
  lastImportError: row.last_import_error,
})

/** Provider admin keys (sealed at rest) and the tenant's tolerance. */
export function keyUseCases(
  parts: ReconciliationParts,
): Pick<
  ReconciliationService,
  'setAdminKey' | 'deleteAdminKey' | 'adminKeys' | 'tolerancePercent' | 'setTolerancePercent'
> {
  const { db, clock } = parts.deps
  return {
    async setAdminKey(tenant, provider, apiKey) {
      const sealer = parts.requireBox()
      const key = apiKey.trim()
      if (key.length < 8 || key.length > MAX_KEY_LENGTH || /\s/.test(key))
        throw badInput(`apiKey must be 8-${MAX_KEY_LENGTH} characters without spaces`, 'input.apiKey')
      const row = await repo.upsertAdminKey(db, {
        tenantId: tenant.id,
        provider,
        keyEnc: sealer.seal(key, parts.keyContext(tenant.id, provider)),
        keyHint: `…${key.slice(-4)}`,
        now: clock.now(),
      })
      return view(row)
    },

    deleteAdminKey: (tenant, provider) => repo.deleteAdminKey(db, tenant.id, provider),

    adminKeys: async (tenant) => (await repo.listAdminKeys(db, tenant.id)).map(view),

    tolerancePercent: (tenant) => parts.tolerance(tenant.id),

    async setTolerancePercent(tenant, percent) {
      const text = percent.trim()
      if (!isExactDecimalString(text) || new Decimal(text).isNegative() || new Decimal(text).greaterThan(100))
        throw badInput('tolerancePercent must be a decimal from 0 to 100', 'tolerancePercent')
      await repo.setTolerancePercent(db, tenant.id, new Decimal(text).toFixed(), clock.now())
      return new Decimal(text).toFixed()
    },
  }
}
