import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Browser, Locator, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatMoney } from '../packages/widget/src/format.ts'
import { ROOT } from './support/api-process.ts'
import { hasChromium, launchBrowser, keepScreenshot } from './support/browser.ts'
import { startDemoApi, type DemoApi } from './support/demo-api.ts'

/**
 * The spend widget as end customers meet it: axe-core (WCAG 2.2 AA) in every state and language,
 * the keyboard, a phone, over-budget wording, and no developer text. Screenshots of each state go
 * to test/.artifacts/.
 */
const AXE = readFileSync(createRequire(join(ROOT, 'package.json')).resolve('axe-core/axe.min.js'), 'utf8')

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: unknown; failureSummary?: string }[]
}

describe.skipIf(!hasChromium)('spend widget: accessibility, languages, phone, wording', () => {
  let demo: DemoApi
  let origin: string
  let browser: Browser
  let n = 0

  const gql = (query: string, variables?: Record<string, unknown>) => demo.gql(query, variables)

  async function openDemo(
    query: string,
    viewport = { width: 1280, height: 1100 },
    colorScheme: 'light' | 'dark' = 'light',
  ): Promise<Page> {
    const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', viewport, colorScheme })
    const page = await context.newPage()
    await page.goto(`${origin}/demo${query}`)
    await page.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 90_000 })
    return page
  }

  /** A host page of our own with a widget for `customerId` (a fresh session), or a failing token source. */
  async function openHost(
    name: string,
    customerId: string | null,
    attrs = '',
    viewport = { width: 900, height: 1000 },
  ): Promise<Page> {
    const session = customerId
      ? (
          await gql(
            'mutation($c: String!) { createWidgetSession(customerId: $c, ttlSeconds: 600) { token customerId expiresAt } }',
            { c: customerId },
          )
        ).createWidgetSession
      : null
    const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', viewport })
    const page = await context.newPage()
    const token = session ? `document.getElementById('w').fetchToken = async () => (${JSON.stringify(session)})` : ''
    await page.route(`${origin}/${name}.html`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html lang="en"><meta charset="utf-8"><title>host</title><link rel="icon" href="data:,"><body style="margin:24px">
          <burnrate-spend id="w" endpoint="${origin}/graphql" ${attrs}></burnrate-spend>
          <script type="module">${token}
            await import('/demo/burnrate-spend.js')
          </script>`,
      }),
    )
    await page.goto(`${origin}/${name}.html`)
    return page
  }

  /** Serious and critical WCAG 2.x A/AA violations inside the widget (its shadow tree included). */
  async function axe(page: Page): Promise<AxeViolation[]> {
    await page.addScriptTag({ content: AXE })
    const violations = await page.evaluate(async () => {
      const run = (
        window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: unknown[] }> } }
      ).axe.run
      const host = document.querySelector('burnrate-spend')
      const result = await run(host, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
        resultTypes: ['violations'],
      })
      return result.violations
    })
    return (violations as AxeViolation[]).filter((v) => v.impact === 'serious' || v.impact === 'critical')
  }

  const widgetOf = (page: Page): Locator => page.locator('burnrate-spend')

  beforeAll(async () => {
    demo = await startDemoApi('widget-a11y')
    origin = demo.origin
    browser = await launchBrowser()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
  })

  it(
    'has no serious or critical axe violation: light, dark (OS theme), phone, explain open (desktop and phone)',
    { timeout: 240_000 },
    async () => {
      const states: {
        name: string
        query: string
        viewport?: { width: number; height: number }
        scheme?: 'light' | 'dark'
        act?(page: Page): Promise<void>
      }[] = [
        { name: 'light', query: '?theme=light' },
        // The element follows the OS theme by default.
        { name: 'dark-auto', query: '', scheme: 'dark' },
        { name: 'phone', query: '', viewport: { width: 375, height: 812 } },
        {
          name: 'explain-open',
          query: '?theme=light',
          act: async (page) => {
            await widgetOf(page).locator('button.row').first().click()
            await widgetOf(page).locator('.explain table').first().waitFor({ timeout: 30_000 })
          },
        },
        {
          name: 'explain-open-phone-dark',
          query: '?theme=dark',
          viewport: { width: 375, height: 812 },
          act: async (page) => {
            await widgetOf(page).locator('.hits button').last().click()
            await widgetOf(page).locator('.explain table').first().waitFor({ timeout: 30_000 })
          },
        },
      ]
      const found: Record<string, AxeViolation[]> = {}
      for (const state of states) {
        const page = await openDemo(state.query, state.viewport, state.scheme)
        await state.act?.(page)
        if (state.name === 'dark-auto')
          expect(await widgetOf(page).locator('.br').getAttribute('data-theme')).toBe('dark')
        found[state.name] = await axe(page)
        await keepScreenshot(page, `widget-a11y-${state.name}.png`, { fullPage: true })
        await page.context().close()
      }
      expect(found).toEqual(Object.fromEntries(states.map((s) => [s.name, []])))
    },
  )

  it(
    'speaks each shipped language: words, lang attribute, percent signs — and stays accessible',
    { timeout: 240_000 },
    async () => {
      const expected: Record<string, { lang: string; used: string; perDay: string; percent: RegExp }> = {
        'en-US': { lang: 'en', used: 'Used', perDay: 'Spend per day', percent: /^\d+%$/ },
        'de-DE': { lang: 'de', used: 'Verbraucht', perDay: 'Kosten pro Tag', percent: /^\d+\u00a0%$/ },
        'fr-FR': { lang: 'fr', used: 'Utilisé', perDay: 'Dépenses par jour', percent: /^\d+[\u00a0\u202f]%$/ },
        'es-ES': { lang: 'es', used: 'Usado', perDay: 'Gasto por día', percent: /^\d+\u00a0%$/ },
        'ja-JP': { lang: 'ja', used: '使用率', perDay: '日別の費用', percent: /^\d+%$/ },
      }
      const found: Record<string, AxeViolation[]> = {}
      for (const [locale, words] of Object.entries(expected)) {
        const page = await openDemo(`?locale=${locale}&theme=light`)
        const widget = widgetOf(page)
        expect(await widget.locator('.br').getAttribute('lang')).toBe(words.lang)
        expect(await widget.locator('.stats dt').first().textContent()).toBe(words.used)
        expect(await widget.locator('#br-days').textContent()).toBe(words.perDay)
        expect(await widget.locator('.stats dd').first().textContent()).toMatch(words.percent)
        for (const tick of await widget.locator('.tick span').allTextContents()) expect(tick).toMatch(words.percent)
        found[locale] = await axe(page)
        await keepScreenshot(page, `widget-lang-${words.lang}.png`, { fullPage: true })
        await page.context().close()
      }
      expect(found).toEqual(Object.fromEntries(Object.keys(expected).map((l) => [l, []])))
    },
  )

  it(
    'keyboard: a visible hint, a focused day shows its amount, Escape closes the explanation and focus goes back',
    { timeout: 180_000 },
    async () => {
      const page = await openDemo('?theme=light')
      const widget = widgetOf(page)
      expect(await widget.locator('.hint').isVisible()).toBe(true)
      expect(await widget.locator('.hint').textContent()).toMatch(/day or a model/)
      const day = widget.locator('.hits button').last()
      await day.focus()
      const shown = widget.locator('[data-testid=bar-value]')
      expect(await shown.isVisible()).toBe(true)
      expect(await shown.textContent()).toMatch(/\$[\d.,]+/)
      expect(await shown.textContent()).toContain(
        (await day.getAttribute('aria-label'))!.split(':')[1]!.split(',')[0]!.trim(),
      )
      await page.keyboard.press('Enter')
      const explain = widget.getByRole('region', { name: /Charges on/ })
      await explain.waitFor({ timeout: 30_000 })
      await page.keyboard.press('Escape')
      await explain.waitFor({ state: 'detached', timeout: 10_000 })
      await expect.poll(() => day.evaluate((el) => (el.getRootNode() as ShadowRoot).activeElement === el)).toBe(true)
      // The same from a model row, closed with its button.
      const row = widget.locator('button.row').first()
      await row.focus()
      await page.keyboard.press('Enter')
      await widget.getByRole('region', { name: /Charges for/ }).waitFor({ timeout: 30_000 })
      await widget.getByRole('button', { name: 'Close the charge details' }).click()
      await expect.poll(() => row.evaluate((el) => (el.getRootNode() as ShadowRoot).activeElement === el)).toBe(true)
      await page.context().close()
    },
  )

  it(
    'on a phone: day bars are 24 px targets, amounts stay in their cells, ticks stay in the card',
    { timeout: 180_000 },
    async () => {
      const page = await openDemo('?theme=light', { width: 375, height: 812 })
      const widget = widgetOf(page)
      const widths = await widget
        .locator('.hits button')
        .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width))
      expect(widths.length).toBeGreaterThan(0)
      for (const w of widths) expect(w).toBeGreaterThanOrEqual(24)
      const inside = await widget.locator('.bar').evaluate((bar) => {
        const card = bar.closest('.card')!.getBoundingClientRect()
        return [...bar.querySelectorAll('.tick span')].map((s) => {
          const r = s.getBoundingClientRect()
          return r.left >= card.left && r.right <= card.right
        })
      })
      expect(inside.length).toBeGreaterThan(0)
      expect(inside.every(Boolean)).toBe(true)
      await widget.locator('.hits button').last().click()
      await widget.locator('.explain table').first().waitFor({ timeout: 30_000 })
      const spills = await widget
        .locator('.explain')
        .evaluate((el) =>
          [...el.querySelectorAll('td, th, .ev-h > *, table')]
            .filter(
              (c) =>
                c.scrollWidth > c.clientWidth + 1 || c.getBoundingClientRect().right > el.getBoundingClientRect().right,
            )
            .map((c) => c.textContent),
        )
      // Numbers are never broken across lines.
      const broken = await widget.locator('.explain td:not(.u)').evaluateAll((cells) =>
        cells
          .filter((c) => {
            const text = document.createRange()
            text.selectNodeContents(c)
            return new Set([...text.getClientRects()].map((r) => Math.round(r.top))).size > 1
          })
          .map((c) => c.textContent),
      )
      expect(broken).toEqual([])
      expect(spills).toEqual([])
      await keepScreenshot(page, 'widget-phone-explain.png', { fullPage: true })
      await page.context().close()
    },
  )

  it(
    'over budget (alerts shown): "Over by" the exact excess, in the danger colour, distinct from the warning colour, no axe violation',
    { timeout: 180_000 },
    async () => {
      const customer = `browser-over-${Date.now()}`
      await gql(
        'mutation($c: String!) { setBudget(input: { customerId: $c, period: MONTH, limit: "0.01", thresholds: [50, 80, 100] }) { id } }',
        { c: customer },
      )
      await gql('mutation($e: UsageEventInput!) { recordUsage(event: $e) { status } }', {
        e: {
          id: `over-${n++}`,
          customerId: customer,
          model: 'gpt-4o',
          timestamp: new Date().toISOString(),
          inputTokens: 10_000,
          outputTokens: 100,
        },
      })
      const b = (await gql('query($c: String!) { budgets(customerId: $c) { spent limit } }', { c: customer }))
        .budgets[0]
      const page = await openHost('host-over', customer, 'theme="light"')
      const widget = widgetOf(page)
      await widget.locator('[data-testid=spent]').waitFor({ timeout: 60_000 })
      const excess = (Number(b.spent) - Number(b.limit)).toFixed(18)
      expect(await widget.locator('[data-testid=over-by]').textContent()).toBe(formatMoney(excess, 'USD', 'en-US'))
      expect(await widget.locator('[data-testid=remaining]').count()).toBe(0)
      expect(await widget.locator('.stats dt').allTextContents()).toContain('Over by')
      // The thresholds it crossed are listed as alerts (the "alert shown" state axe checks below).
      await expect.poll(() => widget.locator('[data-testid=alert]').count(), { timeout: 30_000 }).toBeGreaterThan(0)
      const colours = await widget.locator('.br').evaluate((el) => {
        const s = getComputedStyle(el)
        return { warn: s.getPropertyValue('--_warn').trim(), over: s.getPropertyValue('--_over').trim() }
      })
      expect(colours.warn).not.toBe(colours.over)
      // Red for over, ochre for warning: far apart in hue, not two oranges.
      const hue = (hex: string) => {
        const [r, g, bl] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255) as [number, number, number]
        const max = Math.max(r, g, bl),
          min = Math.min(r, g, bl)
        const h =
          max === r ? ((g - bl) / (max - min)) % 6 : max === g ? (bl - r) / (max - min) + 2 : (r - g) / (max - min) + 4
        return (h * 60 + 360) % 360
      }
      expect(Math.abs(hue(colours.warn) - hue(colours.over))).toBeGreaterThan(25)
      expect(await axe(page)).toEqual([])
      await keepScreenshot(page, 'widget-over-budget.png', { fullPage: true })
      await page.context().close()
    },
  )

  it(
    'explains a model with all of its events, paged on the server, whatever newer events of other models exist',
    { timeout: 180_000 },
    async () => {
      const customer = `browser-models-${Date.now()}`
      const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString()
      const events = [
        ...Array.from({ length: 7 }, (_, i) => ({
          id: `m-mini-${n++}`,
          customerId: customer,
          model: 'gpt-4o-mini',
          timestamp: at(300 + i),
          inputTokens: 1000,
          outputTokens: 10,
        })),
        ...Array.from({ length: 210 }, (_, i) => ({
          id: `m-4o-${n++}`,
          customerId: customer,
          model: 'gpt-4o',
          timestamp: at(1 + i),
          inputTokens: 1000,
          outputTokens: 10,
        })),
      ]
      const stored = (
        await gql('mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }', { e: events })
      ).recordUsageBatch
      expect(stored.recorded).toBe(217)
      const page = await openHost('host-models', customer, 'theme="light"')
      const widget = widgetOf(page)
      await widget.locator('[data-testid=spent]').waitFor({ timeout: 60_000 })
      await widget.locator('button.row', { hasText: 'gpt-4o-mini' }).click()
      const explain = widget.getByRole('region', { name: /Charges for/ })
      await expect.poll(() => explain.locator('.ev').count(), { timeout: 30_000 }).toBe(7)
      expect(await explain.locator('.ev-h strong:first-child').allTextContents()).toEqual(Array(7).fill('gpt-4o-mini'))
      expect(await explain.locator('[data-testid=show-more]').count()).toBe(0)
      await page.keyboard.press('Escape')
      await widget
        .locator('button.row', { hasText: /^gpt-4o\$/ })
        .first()
        .click()
      const big = widget.getByRole('region', { name: /Charges for gpt-4o$/ })
      await expect.poll(() => big.locator('.ev').count(), { timeout: 30_000 }).toBe(25)
      for (let i = 0; i < 20 && (await big.locator('[data-testid=show-more]').count()); i++) {
        const before = await big.locator('.ev').count()
        await big.locator('[data-testid=show-more]').click()
        await expect.poll(() => big.locator('.ev').count(), { timeout: 30_000 }).toBeGreaterThan(before)
      }
      expect(await big.locator('.ev').count()).toBe(210)
      expect(new Set(await big.locator('.ev-h strong:first-child').allTextContents())).toEqual(new Set(['gpt-4o']))
      await page.context().close()
    },
  )

  it(
    'never shows developer text: a failing token-url and an invalid token read as plain words',
    { timeout: 180_000 },
    async () => {
      const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' })
      const page = await context.newPage()
      await page.route(`${origin}/broken-session`, (route) => route.fulfill({ status: 500, body: 'boom' }))
      await page.route(`${origin}/host-broken.html`, (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><body>
          <burnrate-spend endpoint="${origin}/graphql" token-url="/broken-session"></burnrate-spend>
          <script type="module">await import('/demo/burnrate-spend.js')</script>`,
        }),
      )
      await page.goto(`${origin}/host-broken.html`)
      const widget = widgetOf(page)
      await widget.getByRole('alert').waitFor({ timeout: 60_000 })
      const text = (await widget.locator('.br').textContent()) ?? ''
      expect(text).toContain('Usage could not be loaded')
      expect(text).not.toMatch(/HTTP|500|token-url/)

      const invalid = await openHost('host-invalid', null, '')
      await invalid.evaluate(() => {
        const el = document.getElementById('w') as HTMLElement & { fetchToken: unknown }
        el.fetchToken = async () => ({ token: 'br_ws_not-a-real-token', customerId: 'nobody' })
      })
      const w = widgetOf(invalid)
      await w.getByRole('alert').waitFor({ timeout: 60_000 })
      const words = (await w.locator('.br').textContent()) ?? ''
      expect(words).toContain('This usage view is not available')
      expect(words).not.toMatch(/expired/i)
      await keepScreenshot(w, 'widget-invalid-token.png')
      await context.close()
      await invalid.context().close()
    },
  )
})
