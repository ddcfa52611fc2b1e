import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatMoney } from '../packages/widget/src/format.ts'
import { ROOT } from './support/api-process.ts'
import { hasChromium, launchBrowser, keepScreenshot } from './support/browser.ts'
import { startDemoApi, type DemoApi } from './support/demo-api.ts'

/**
 * The spend widget's invoice card in Chromium: the customer's allowance left, current tier and the
 * invoice so far (usage and fees, credits applied, total due) — equal to invoicePreview, updated
 * live as usage arrives, without serious axe violations, reachable by keyboard, and without the
 * plan's sizes for a session that hides price details.
 */
const AXE = readFileSync(createRequire(join(ROOT, 'package.json')).resolve('axe-core/axe.min.js'), 'utf8')
const CUSTOMER = 'invoice-acme'
const money = (v: string) => formatMoney(v, 'USD', 'en-US')

describe.skipIf(!hasChromium)('spend widget: allowance, tier and invoice preview', () => {
  let demo: DemoApi
  let origin: string
  let browser: Browser
  let n = 0

  const gql = (query: string, variables?: Record<string, unknown>) => demo.gql(query, variables)
  const record = (inputTokens: number) =>
    gql('mutation($e: UsageEventInput!) { recordUsage(event: $e) { status } }', {
      e: {
        id: `invoice-${Date.now()}-${n++}`,
        customerId: CUSTOMER,
        model: 'gpt-4o',
        timestamp: new Date().toISOString(),
        inputTokens,
        outputTokens: 1_000,
      },
    })
  const preview = async () =>
    (await gql(`{ invoicePreview(customerId: "${CUSTOMER}") { subtotal creditsApplied total } }`)).invoicePreview

  async function openHost(priceDetails = true): Promise<Page> {
    const session = (
      await gql(
        'mutation($c: String!, $d: Boolean) { createWidgetSession(customerId: $c, ttlSeconds: 600, priceDetails: $d) { token customerId expiresAt } }',
        { c: CUSTOMER, d: priceDetails },
      )
    ).createWidgetSession
    const context = await browser.newContext({
      locale: 'en-US',
      timezoneId: 'UTC',
      viewport: { width: 900, height: 1400 },
    })
    const page = await context.newPage()
    await page.route(`${origin}/invoice-host.html`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html lang="en"><meta charset="utf-8"><title>host</title><link rel="icon" href="data:,"><body style="margin:24px">
          <burnrate-spend id="w" endpoint="${origin}/graphql" refresh-interval="2000"></burnrate-spend>
          <script type="module">document.getElementById('w').fetchToken = async () => (${JSON.stringify(session)})
            await import('/demo/burnrate-spend.js')
          </script>`,
      }),
    )
    await page.goto(`${origin}/invoice-host.html`)
    await page.locator('burnrate-spend [data-testid=invoice]').waitFor({ timeout: 90_000 })
    return page
  }

  beforeAll(async () => {
    demo = await startDemoApi('widget-invoice')
    origin = demo.origin
    browser = await launchBrowser()
    await gql(`mutation { upsertCustomer(input: { id: "${CUSTOMER}", name: "Acme" }) { id } }`)
    await gql(`mutation($i: RatingPlanInput!) { setRatingPlan(input: $i) { version } }`, {
      i: {
        customerId: CUSTOMER,
        rules: [
          { id: 'free', type: 'TOKEN_ALLOWANCE', model: 'gpt-4o*', usageType: 'input', quantity: '100000' },
          {
            id: 'tiers',
            type: 'TOKEN_TIERS',
            model: 'gpt-4o*',
            usageType: 'input',
            mode: 'GRADUATED',
            tiers: [
              { upTo: '200000', unitPrice: '3' },
              { upTo: '1000000', unitPrice: '2' },
              { upTo: null, unitPrice: '1' },
            ],
          },
          { id: 'out', type: 'FIXED_PRICE', model: '*', usageType: 'output', price: '12' },
        ],
      },
    })
    await gql(
      `mutation { grantCredits(input: { customerId: "${CUSTOMER}", amount: "0.25", idempotencyKey: "invoice-acme-1" }) { created } }`,
    )
    await record(60_000)
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
  })

  it(
    'shows allowance left, the current tier and the invoice so far, live, accessibly',
    { timeout: 240_000 },
    async () => {
      const page = await openHost()
      const card = page.locator('burnrate-spend [data-testid=invoice]')
      expect(await card.locator('h3').textContent()).toBe('Invoice so far')
      expect(await card.locator('[data-testid=allowance-left]').textContent()).toBe(
        'Input: 40,000 of 100,000 tokens left',
      )
      const bar = card.getByRole('progressbar', { name: 'Allowance used' })
      expect(await bar.getAttribute('aria-valuenow')).toBe('60')
      let p = await preview()
      expect(await card.locator('[data-testid=invoice-subtotal]').textContent()).toBe(money(p.subtotal))
      expect(await card.locator('[data-testid=invoice-total]').textContent()).toBe(money(p.total))
      // No tier reached yet: all input so far is inside the allowance.
      expect(await card.locator('[data-testid=tier]').count()).toBe(0)

      // 300,000 more input tokens: the allowance runs out, tier 1 fills and tier 2 begins.
      await record(300_000)
      await expect
        .poll(() => card.locator('[data-testid=tier] dd').textContent(), { timeout: 90_000, interval: 500 })
        .toBe('Tier 2 of 3')
      p = await preview()
      await expect.poll(() => card.locator('[data-testid=invoice-total]').textContent()).toBe(money(p.total))
      expect(await card.locator('[data-testid=allowance-left]').textContent()).toBe('Input: 0 of 100,000 tokens left')
      expect(await card.locator('[data-testid=invoice-credits]').textContent()).toBe(`−${money(p.creditsApplied)}`)
      expect(await card.locator('[data-testid=invoice-subtotal]').textContent()).toBe(money(p.subtotal))
      expect(p.creditsApplied).toBe('0.25')

      // Labelled: the card is a region named by its heading; each figure is a term and its value.
      expect(await page.locator('burnrate-spend').getByRole('region', { name: 'Invoice so far' }).count()).toBe(1)
      const terms = await card.locator('dt').allTextContents()
      expect(terms).toEqual(['Current tier', 'Usage and fees', 'Credits applied', 'Total due'])

      // axe-core, WCAG 2.x A/AA, inside the widget's shadow tree: no serious or critical violation.
      await page.addScriptTag({ content: AXE })
      const violations = (await page.evaluate(async () => {
        const axe = (
          window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: unknown[] }> } }
        ).axe
        const result = await axe.run(document.querySelector('burnrate-spend'), {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
          resultTypes: ['violations'],
        })
        return result.violations
      })) as { id: string; impact: string | null; nodes: unknown[] }[]
      expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([])

      // Keyboard: Tab from the page start reaches the widget's controls and leaves it again (no trap);
      // the invoice card adds no stop of its own (it has nothing to operate).
      const stops: string[] = []
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab')
        const label = await page.evaluate(() => {
          const host = document.querySelector('burnrate-spend')
          const el = host?.shadowRoot?.activeElement ?? document.activeElement
          if (!el || el === document.body) return 'body'
          return `${el.tagName.toLowerCase()}:${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 30)}`
        })
        stops.push(label)
        if (label === 'body') break
      }
      expect(stops.length).toBeGreaterThan(1)
      expect(stops.at(-1)).toBe('body')
      expect(stops.some((s) => s.includes('invoice'))).toBe(false)

      await keepScreenshot(card, 'widget-invoice-card.png')
      await keepScreenshot(page, 'widget-invoice.png', { fullPage: true })
      await page.context().close()
    },
  )

  it(
    'without price details: tokens used instead of the allowance size, the tier without a count',
    { timeout: 180_000 },
    async () => {
      const page = await openHost(false)
      const card = page.locator('burnrate-spend [data-testid=invoice]')
      expect(await card.locator('[data-testid=allowance-left]').textContent()).toBe('Input: 100,000 tokens used')
      expect(await card.getByRole('progressbar').count()).toBe(0)
      expect(await card.locator('[data-testid=tier] dd').textContent()).toBe('Tier 2')
      await page.context().close()
    },
  )
})
