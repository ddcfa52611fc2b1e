import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Decimal, ZERO } from '../../src/money/decimal.ts'
import type { CostLine } from '../../src/pricing/engine.ts'
import { rateEvent } from '../../src/rating/rate.ts'
import type { RatingPlan, RuleJson } from '../../src/rating/rules.ts'

/**
 * The straightforward reference: the period charge of a total quantity, computed tier by tier
 * with no increments, counters or splitting. Rating events one by one, in any order, must land
 * on exactly this total.
 */
function reference(
  mode: 'GRADUATED' | 'VOLUME',
  tiers: { upTo: number | null; price: Decimal }[],
  q: Decimal,
): Decimal {
  if (q.lessThanOrEqualTo(0)) return ZERO
  if (mode === 'VOLUME') {
    for (const t of tiers) if (t.upTo === null || q.lessThanOrEqualTo(t.upTo)) return q.times(t.price)
  }
  let total = ZERO
  let lower = new Decimal(0)
  for (const t of tiers) {
    const upper = t.upTo === null ? q : Decimal.min(q, t.upTo)
    if (upper.greaterThan(lower)) total = total.plus(upper.minus(lower).times(t.price))
    if (t.upTo === null) break
    lower = new Decimal(t.upTo)
  }
  return total
}

const tiersArb = fc
  .tuple(
    fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 0, maxLength: 4 }),
    fc.array(fc.integer({ min: 0, max: 9_000_000 }), { minLength: 5, maxLength: 5 }),
  )
  .map(([bounds, prices]) => {
    const sorted = [...bounds].sort((a, b) => a - b)
    return [...sorted, null].map((upTo, i) => ({ upTo, pricePerMillion: prices[i]! }))
  })

const line = (quantity: number, usageType = 'input'): CostLine => ({
  usageType,
  quantity: new Decimal(quantity),
  unitPrice: new Decimal('0.000001'),
  cost: new Decimal(quantity).times('0.000001'),
  priceId: 'p',
})

const plan = (rules: RuleJson[]): RatingPlan => ({
  id: 'v1',
  customerId: null,
  version: 1,
  effectiveFrom: new Date(0),
  prepaidOnly: false,
  rules,
})

const eventsArb = fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 25 })

function checkLines(rated: ReturnType<typeof rateEvent>) {
  let sum = ZERO
  for (const l of rated.lines) {
    const parts = l.parts.reduce((s, p) => s.plus(p.amount), ZERO)
    expect(parts.toFixed()).toBe(l.amount.toFixed())
    sum = sum.plus(l.amount)
  }
  expect(sum.toFixed()).toBe(rated.amount.toFixed())
}

describe('rating is incremental and exact (telescoping)', () => {
  it('token tiers with an allowance: the period total is the plan applied to the total quantity, in any order', () => {
    fc.assert(
      fc.property(
        tiersArb,
        fc.constantFrom('GRADUATED' as const, 'VOLUME' as const),
        fc.option(fc.integer({ min: 1, max: 50 }), { nil: null }),
        eventsArb,
        fc.func(fc.integer()),
        (tiers, mode, allowance, quantities, orderKey) => {
          const rules: RuleJson[] = []
          if (allowance !== null)
            rules.push({
              id: 'free',
              type: 'TOKEN_ALLOWANCE',
              model: '*',
              usageType: 'input',
              quantity: String(allowance),
            })
          rules.push({
            id: 'tiers',
            type: 'TOKEN_TIERS',
            model: 'claude-sonnet-*',
            usageType: 'input',
            mode,
            tiers: tiers.map((t) => ({
              upTo: t.upTo === null ? null : String(t.upTo),
              unitPrice: String(t.pricePerMillion),
            })),
          })
          const p = plan(rules)
          const order = quantities.map((q, i) => ({ q, k: orderKey(i) })).sort((a, b) => a.k - b.k)
          const counters = new Map<string, Decimal>()
          let total = ZERO
          for (const { q } of order) {
            const rated = rateEvent(p, { lines: q ? [line(q)] : [], model: 'claude-sonnet-4-5', units: [] }, counters)
            checkLines(rated)
            if (mode === 'GRADUATED')
              for (const l of rated.lines) for (const part of l.parts) expect(part.amount.isNegative()).toBe(false)
            // The quantity is never lost or counted twice: the parts' quantities are the line's.
            for (const l of rated.lines)
              expect(l.parts.reduce((s, x) => s.plus(x.quantity), ZERO).toFixed()).toBe(l.quantity.toFixed())
            total = total.plus(rated.amount)
          }
          const sum = quantities.reduce((a, b) => a + b, 0)
          const billable = new Decimal(Math.max(0, sum - (allowance ?? 0)))
          const expected = reference(
            mode,
            tiers.map((t) => ({ upTo: t.upTo, price: new Decimal(t.pricePerMillion).dividedBy(1_000_000) })),
            billable,
          )
          expect(total.toFixed()).toBe(expected.toFixed())
        },
      ),
      { numRuns: 400 },
    )
  })

  it('amount allowance and amount tiers over fixed-price lines and unit fees: exact period total in any order', () => {
    fc.assert(
      fc.property(
        tiersArb,
        fc.constantFrom('GRADUATED' as const, 'VOLUME' as const),
        fc.integer({ min: 0, max: 30 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 })), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.func(fc.integer()),
        (tiers, mode, allowance, events, orderKey) => {
          // $2 per 1M input tokens, $0.25 per agent task; amount tiers priced per $1 of amount (prices/1M as rates).
          const rules: RuleJson[] = [
            { id: 'fixed', type: 'FIXED_PRICE', model: '*', usageType: 'input', pricePerMillion: '2000000' },
            { id: 'task', type: 'UNIT_FEE', unit: 'custom.agent_task', unitPrice: '0.25' },
            {
              id: 'amount-tiers',
              type: 'AMOUNT_TIERS',
              mode,
              tiers: tiers.map((t) => ({
                upTo: t.upTo === null ? null : String(t.upTo),
                unitPrice: new Decimal(t.pricePerMillion).dividedBy(1_000_000).toFixed(),
              })),
            },
          ]
          if (allowance > 0) rules.push({ id: 'free-dollars', type: 'AMOUNT_ALLOWANCE', amount: String(allowance) })
          const p = plan(rules)
          const counters = new Map<string, Decimal>()
          let total = ZERO
          const order = events.map((e, i) => ({ e, k: orderKey(i) })).sort((a, b) => a.k - b.k)
          for (const {
            e: [q, tasks],
          } of order) {
            const rated = rateEvent(
              p,
              {
                lines: q ? [line(q), line(q, 'output')] : [],
                model: 'm',
                units: tasks ? [{ unit: 'custom.agent_task', quantity: String(tasks) }] : [],
              },
              counters,
            )
            checkLines(rated)
            total = total.plus(rated.amount)
          }
          // Input at $2/token (2000000 per 1M), output at cost 0.000001/token, tasks at 0.25.
          const base = events.reduce(
            (s, [q, tasks]) =>
              s
                .plus(new Decimal(q).times(2))
                .plus(new Decimal(q).times('0.000001'))
                .plus(new Decimal(tasks).times('0.25')),
            ZERO,
          )
          const expected = reference(
            mode,
            tiers.map((t) => ({ upTo: t.upTo, price: new Decimal(t.pricePerMillion).dividedBy(1_000_000) })),
            Decimal.max(0, base.minus(allowance)),
          )
          expect(total.toFixed()).toBe(expected.toFixed())
        },
      ),
      { numRuns: 300 },
    )
  })

  it('splits an event that crosses a graduated tier boundary into one part per tier', () => {
    const p = plan([
      { id: 'free', type: 'TOKEN_ALLOWANCE', model: '*', usageType: 'input', quantity: '1000' },
      {
        id: 'tiers',
        type: 'TOKEN_TIERS',
        model: '*',
        usageType: 'input',
        mode: 'GRADUATED',
        tiers: [
          { upTo: '1000000', unitPrice: '3' },
          { upTo: null, unitPrice: '2' },
        ],
      },
    ])
    const counters = new Map<string, Decimal>()
    const first = rateEvent(p, { lines: [line(500)], model: 'm', units: [] }, counters)
    expect(first.amount.toFixed()).toBe('0') // within the 1,000 free tokens
    const second = rateEvent(p, { lines: [line(998_500)], model: 'm', units: [] }, counters)
    expect(second.amount.toFixed()).toBe('2.994') // 500 free, 998,000 at $3 / 1M
    const third = rateEvent(p, { lines: [line(3_000)], model: 'm', units: [] }, counters)
    expect(third.amount.toFixed()).toBe('0.008') // 2,000 at $3 / 1M up to 1M, 1,000 at $2 / 1M
    expect(
      third.lines[0]!.parts.map((x) => [x.rule, x.tier ?? null, x.quantity.toFixed(), x.amount.toFixed()]),
    ).toEqual([
      ['TOKEN_TIERS', 1, '2000', '0.006'],
      ['TOKEN_TIERS', 2, '1000', '0.002'],
    ])
    expect(
      second.lines[0]!.parts.map((x) => [x.rule, x.tier ?? null, x.quantity.toFixed(), x.amount.toFixed()]),
    ).toEqual([
      ['TOKEN_ALLOWANCE', null, '500', '0'],
      ['TOKEN_TIERS', 1, '998000', '2.994'],
    ])
  })
})
