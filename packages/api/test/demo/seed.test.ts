import { afterAll, beforeAll, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { findTenantById } from '../../src/auth/repository.ts'
import { seedDemo } from '../../src/demo/index.ts'
import { DEMO_CUSTOMER } from '../../src/demo/seed.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * What `npm start` seeds for the demo customer: a plan with an input allowance, graduated output
 * tiers and a markup, and a $25 prepaid credit grant; its invoicePreview shows each of them with
 * numbers that follow from the rules exactly. Pinned clock: the seeded usage is the same every run.
 */
const clock = fixedClock('2026-11-30T20:00:00Z')
let t: TestApp

const PREVIEW = `query ($c: String!) { invoicePreview(customerId: $c) {
  plan { version rules { id type quantity tiers { upTo unitPrice } } }
  lines { kind ruleId tier usageType quantity unitPrice amount } subtotal creditsApplied creditsRemaining total } }`

beforeAll(async () => {
  t = await createTestApp({ clock })
  const tenant = (await findTenantById(t.database.db, t.tenant.id))!
  await seedDemo(t.app.services, t.database.db, tenant)
  // Seeding twice (a restart) changes nothing.
  await seedDemo(t.app.services, t.database.db, tenant)
}, 120_000)
afterAll(() => t.close())

it('the demo customer has an allowance, tiers and credits, and its invoice preview shows them exactly', async () => {
  const r = await t.gql(PREVIEW, { c: DEMO_CUSTOMER.id })
  expect(r.errors).toBeUndefined()
  const p = r.data!.invoicePreview
  expect(p.plan.rules.map((x: { id: string; type: string }) => [x.id, x.type])).toEqual([
    ['free-input', 'TOKEN_ALLOWANCE'],
    ['output-tiers', 'TOKEN_TIERS'],
    ['markup', 'COST_BASED'],
  ])
  type Line = { kind: string; tier: number | null; quantity: string | null; unitPrice: string | null; amount: string }
  const lines = p.lines as Line[]
  // The month's first 1,000,000 input tokens are free: one allowance line of that much, at 0.
  const allowance = lines.filter((l) => l.kind === 'TOKEN_ALLOWANCE')
  expect(allowance.reduce((s, l) => s.plus(l.quantity!), new Decimal(0)).toFixed()).toBe('1000000')
  expect(allowance.every((l) => new Decimal(l.amount).isZero())).toBe(true)
  // Output in graduated tiers: exactly 200,000 tokens at $12 per 1M, the rest at $9.
  const tier = (n: number) => lines.filter((l) => l.kind === 'TOKEN_TIERS' && l.tier === n)
  const quantity = (ls: Line[]) => ls.reduce((s, l) => s.plus(l.quantity!), new Decimal(0))
  const amount = (ls: Line[]) => ls.reduce((s, l) => s.plus(l.amount), new Decimal(0))
  expect(quantity(tier(1)).toFixed()).toBe('200000')
  expect(amount(tier(1)).toFixed()).toBe('2.4')
  expect(quantity(tier(2)).greaterThan(0)).toBe(true)
  expect(amount(tier(2)).toFixed()).toBe(quantity(tier(2)).times(9).div(1_000_000).toFixed())
  // The lines add up to the subtotal; the $25 grant pays it (or runs out), and the rest is owed.
  const subtotal = new Decimal(p.subtotal)
  expect(amount(lines).toFixed()).toBe(subtotal.toFixed())
  expect(p.creditsApplied).toBe(Decimal.min(subtotal, 25).toFixed())
  expect(p.creditsRemaining).toBe(new Decimal(25).minus(p.creditsApplied).toFixed())
  expect(p.total).toBe(subtotal.minus(p.creditsApplied).toFixed())
  expect(subtotal.greaterThan(0)).toBe(true)
})
