import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Tenant } from '../../src/db/types.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// The gateway's "does this customer have a hard budget?" is cached (budgets/hard-limits.ts): a
// setBudget in this process must be seen by the very next call, both ways.

let t: TestApp
let tenant: Tenant
beforeAll(async () => {
  t = await createTestApp()
  tenant = (await t.app.services.tenants.authenticate(t.tenant.apiKey))!
})
afterAll(() => t.close())

describe('hasHardLimit cache', () => {
  it('sees a hard budget set right after a cached "no", and its removal right after a cached "yes"', async () => {
    const budgets = t.app.services.budgets
    expect(await budgets.hasHardLimit(tenant, 'hl-cache')).toBe(false)
    expect(await budgets.hasHardLimit(tenant, 'hl-cache')).toBe(false)
    await budgets.setBudget(tenant, { customerId: 'hl-cache', period: 'MONTH', limit: '10', hardLimit: true })
    expect(await budgets.hasHardLimit(tenant, 'hl-cache')).toBe(true)
    await budgets.setBudget(tenant, { customerId: 'hl-cache', period: 'MONTH', limit: '10', hardLimit: false })
    expect(await budgets.hasHardLimit(tenant, 'hl-cache')).toBe(false)
  })

  it('does not cache an answer read while a setBudget ran', async () => {
    const budgets = t.app.services.budgets
    const [, read] = await Promise.all([
      budgets.setBudget(tenant, { customerId: 'hl-race', period: 'DAY', limit: '5', hardLimit: true }),
      budgets.hasHardLimit(tenant, 'hl-race'),
    ])
    expect(typeof read).toBe('boolean')
    expect(await budgets.hasHardLimit(tenant, 'hl-race')).toBe(true)
  })
})
