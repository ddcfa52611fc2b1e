import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatMoney } from '../packages/widget/src/format.ts'
import { ROOT } from './support/api-process.ts'
import { CHROMIUM, hasChromium, launchBrowser, keepScreenshot } from './support/browser.ts'
import { startDemoApi, type DemoApi } from './support/demo-api.ts'

/**
 * The spend widget in real headless Chromium, on the demo page that `npm start` serves: its
 * figures, live updates, alerts, isolation from hostile host CSS and token renewal.
 */
if (!hasChromium)
  console.warn(
    `Skipping the widget browser tests: ${CHROMIUM} is absent (apt-get install -y --no-install-recommends chromium).`,
  )

const CUSTOMER = 'demo-lumen'
const money = (v: string) => formatMoney(v, 'USD', 'en-US')

describe.skipIf(!hasChromium)('spend widget in Chromium (demo page)', () => {
  let demo: DemoApi
  let origin: string
  let browser: Browser
  let recorded = 0

  const gql = (query: string, variables?: Record<string, unknown>) => demo.gql(query, variables)
  const budget = async () =>
    (await gql(`{ budgets(customerId: "${CUSTOMER}") { limit spent remaining forecast periodStart periodEnd } }`))
      .budgets[0]
  const record = async (inputTokens: number, feature = 'browser-test') =>
    gql('mutation($e: UsageEventInput!) { recordUsage(event: $e) { status event { amount } } }', {
      e: {
        id: `browser-${Date.now()}-${recorded++}`,
        customerId: CUSTOMER,
        model: 'gpt-4o',
        timestamp: new Date().toISOString(),
        inputTokens,
        outputTokens: 100,
        feature,
      },
    })

  async function openDemo(query = '', viewport = { width: 1280, height: 1100 }): Promise<Page> {
    const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', viewport })
    const page = await context.newPage()
    await page.goto(`${origin}/demo${query}`)
    await page.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 90_000 })
    return page
  }

  beforeAll(async () => {
    demo = await startDemoApi('widget')
    origin = demo.origin
    expect(demo.api.output()).toContain(`Widget demo    ${origin}/demo`)
    browser = await launchBrowser()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await demo?.stop()
  })

  it(
    'renders the demo customer and its figures equal the API (budget and usageSummary)',
    { timeout: 180_000 },
    async () => {
      const page = await openDemo()
      const b = await budget()
      const summary = (
        await gql(
          `query($from: DateTime!, $to: DateTime!) { usageSummary(customerId: "${CUSTOMER}", from: $from, to: $to, groupBy: [MODEL]) { amount events groups { model amount } } }`,
          {
            from: b.periodStart,
            to: b.periodEnd,
          },
        )
      ).usageSummary
      expect(summary.events).toBeGreaterThan(0)
      // The budget's spend and the ledger's summary agree, and the widget shows exactly them.
      expect(Number(summary.amount)).toBeCloseTo(Number(b.spent), 12)
      const widget = page.locator('burnrate-spend')
      await expect.poll(() => widget.locator('[data-testid=spent]').textContent()).toBe(money(b.spent))
      expect(await widget.locator('[data-testid=remaining]').textContent()).toBe(money(b.remaining))
      expect(await widget.locator('[data-testid=forecast]').textContent()).toBe(money(b.forecast))
      const rows = await widget
        .locator('button.row')
        .evaluateAll((els) => els.map((e) => [e.querySelector('.n')!.textContent, e.querySelector('.a')!.textContent]))
      expect(rows.sort()).toEqual(
        summary.groups.map((g: { model: string; amount: string }) => [g.model, money(g.amount)]).sort(),
      )
      const bar = widget.getByRole('progressbar', { name: 'Budget used' })
      expect(Number(await bar.getAttribute('aria-valuenow'))).toBe(
        Math.round((Number(b.spent) / Number(b.limit)) * 100),
      )
      expect(await widget.locator('.tick').count()).toBe(3)
      // The chart has a text alternative.
      expect(await widget.locator('#br-days-desc').textContent()).toMatch(/Highest day .+ at \$/)
      await keepScreenshot(page, 'widget-demo.png', { fullPage: true })

      // "Explain this charge", from the keyboard: a day of the chart, then Enter.
      const day = widget.locator('.hits button').last()
      await day.focus()
      await page.keyboard.press('Enter')
      const explain = widget.getByRole('region', { name: /Charges on/ })
      await explain.locator('table').first().waitFor({ timeout: 30_000 })
      expect(await explain.locator('tbody tr').first().textContent()).toMatch(/(Input|Output|Cache read).*\/ 1M/)
      expect(await explain.textContent()).toContain('30% markup')
      await keepScreenshot(widget.locator('.explain'), 'widget-explain.png')
      await page.context().close()
    },
  )

  it(
    'with priceDetails: false, explains a charge by quantities and amounts only (no unit prices, no plan)',
    { timeout: 180_000 },
    async () => {
      const session = (
        await gql(
          `mutation { createWidgetSession(customerId: "${CUSTOMER}", ttlSeconds: 600, priceDetails: false) { token customerId expiresAt priceDetails } }`,
        )
      ).createWidgetSession
      expect(session.priceDetails).toBe(false)
      const context = await browser.newContext({
        locale: 'en-US',
        timezoneId: 'UTC',
        viewport: { width: 1280, height: 1100 },
      })
      const page = await context.newPage()
      // Every GraphQL answer the widget gets: none may carry an error (a FORBIDDEN field included).
      const answers: { query: string; body: string }[] = []
      page.on('response', async (response) => {
        if (response.url().endsWith('/graphql') && response.request().method() === 'POST') {
          answers.push({ query: response.request().postData() ?? '', body: await response.text().catch(() => '') })
        }
      })
      await page.route(`${origin}/host-no-prices.html`, (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><body style="margin:24px">
          <burnrate-spend id="w" endpoint="${origin}/graphql" refresh-interval="0"></burnrate-spend>
          <script type="module">
            document.getElementById('w').fetchToken = async () => (${JSON.stringify({ token: session.token, customerId: session.customerId, expiresAt: session.expiresAt })})
            await import('/demo/burnrate-spend.js')
          </script>`,
        }),
      )
      await page.goto(`${origin}/host-no-prices.html`)
      const widget = page.locator('burnrate-spend')
      await widget.locator('[data-testid=spent]').waitFor({ timeout: 90_000 })
      await widget.locator('.hits button').last().click()
      const explain = widget.getByRole('region', { name: /Charges on/ })
      await explain.locator('table').first().waitFor({ timeout: 30_000 })
      expect(await explain.locator('thead').first().textContent()).toBe('UsageQuantityBilled')
      expect(await explain.locator('tbody tr').first().locator('td').count()).toBe(3)
      const text = (await explain.textContent()) ?? ''
      expect(text).not.toMatch(/\/ 1M|\/ unit|Unit price|Provider rates|markup|margin|at cost/i)
      expect(text).toMatch(/Input/)
      // The billed amounts are there: each event's and each line's.
      expect(await explain.locator('.ev-h > strong').first().textContent()).toMatch(/^\$/)
      expect(await explain.locator('tbody tr').first().locator('td').last().textContent()).toMatch(/^\$/)

      const events = answers.filter((a) => a.query.includes('BurnrateWidgetEvents'))
      expect(events.length).toBeGreaterThan(0)
      expect(answers.filter((a) => a.query.includes('BurnrateWidgetSession')).map((a) => JSON.parse(a.body))).toEqual([
        { data: { widgetSession: { priceDetails: false } } },
      ])
      for (const { body } of answers) expect(JSON.parse(body).errors, body).toBeUndefined()
      for (const { body } of events) expect(body).not.toMatch(/unitPrice|pricingPlan/)
      await keepScreenshot(widget.locator('.explain'), 'widget-explain-no-prices.png')
      await context.close()
    },
  )

  it('shows usage recorded through the API without a reload', { timeout: 180_000 }, async () => {
    const page = await openDemo('?refresh-interval=3000')
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true))
    const before = await page.locator('burnrate-spend [data-testid=spent]').textContent()
    await record(20_000)
    const after = await budget()
    expect(money(after.spent)).not.toBe(before)
    await expect
      .poll(() => page.locator('burnrate-spend [data-testid=spent]').textContent(), { timeout: 90_000, interval: 500 })
      .toBe(money(after.spent))
    await expect
      .poll(() => page.locator('burnrate-spend button.row, burnrate-spend .row').allTextContents())
      .toContainEqual(expect.stringContaining('browser-test'))
    // The demo customer's prepaid credits follow the same live update, with the tenant's top-up link.
    const credits = (await gql(`{ creditBalance(customerId: "${CUSTOMER}") { available topUpUrl } }`)).creditBalance
    await expect
      .poll(() => page.locator('burnrate-spend [data-testid=credits-left]').textContent(), { timeout: 90_000 })
      .toBe(`${money(credits.available)} left`)
    expect(await page.locator('burnrate-spend [data-testid=top-up]').getAttribute('href')).toBe(credits.topUpUrl)
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true)
    await page.context().close()
  })

  it(
    'shows spend live: each recordUsage appears without polling, and polling takes over when the stream is down',
    { timeout: 240_000 },
    async () => {
      const spentIs = (page: Page, text: string) =>
        page.waitForFunction(
          (expected) =>
            document.querySelector('burnrate-spend')?.shadowRoot?.querySelector('[data-testid=spent]')?.textContent ===
            expected,
          text,
          { polling: 'raf', timeout: 30_000 },
        )
      // Polling off (10 minutes): only the usageUpdates subscription can bring the new figures.
      const page = await openDemo('?refresh-interval=600000')
      const widget = page.locator('burnrate-spend')
      await expect.poll(() => widget.locator('.live').textContent(), { timeout: 60_000 }).toBe('Live')
      const latencies: number[] = []
      for (let i = 0; i < 8; i++) {
        await record(2_000)
        const started = Date.now()
        await spentIs(page, money((await budget()).spent))
        latencies.push(Date.now() - started)
      }
      latencies.sort((a, b) => a - b)
      console.log(
        `widget live spend: recordUsage → on screen, ms: p50 ${latencies[4]} max ${latencies.at(-1)} (n=8, USAGE_UPDATE_WINDOW_MS 200)`,
      )
      await page.context().close()

      // The stream refused (as by a proxy that drops it): the widget says so and polls instead.
      const context = await browser.newContext({
        locale: 'en-US',
        timezoneId: 'UTC',
        viewport: { width: 1280, height: 1100 },
      })
      const fallback = await context.newPage()
      await fallback.route(`${origin}/graphql`, (route) =>
        route.request().postData()?.includes('BurnrateWidgetUsage')
          ? route.fulfill({ status: 503, body: 'stream down' })
          : route.continue(),
      )
      await fallback.goto(`${origin}/demo?refresh-interval=1500`)
      await fallback.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 90_000 })
      await expect
        .poll(() => fallback.locator('burnrate-spend .live').textContent(), { timeout: 30_000 })
        .toBe('Reconnecting…')
      await record(2_000)
      await spentIs(fallback, money((await budget()).spent))
      await context.close()
    },
  )

  it('shows a crossed threshold as an alert at once, over the live subscription', { timeout: 180_000 }, async () => {
    // Polling is off (10 minutes): only the budgetAlerts subscription can bring the alert in.
    const page = await openDemo('?refresh-interval=600000')
    const widget = page.locator('burnrate-spend')
    await expect.poll(() => widget.locator('.live').textContent(), { timeout: 60_000 }).toBe('Live')
    expect(await widget.locator('[data-testid=alert]').allTextContents()).not.toContainEqual(
      expect.stringContaining('100%'),
    )
    const b = await budget()
    // gpt-4o input is $2.50 per million tokens, billed with a 30 % markup: pass the limit with room.
    const tokens = Math.ceil(((Number(b.limit) - Number(b.spent)) / (2.5e-6 * 1.3)) * 1.2) + 1000
    await record(tokens, 'agent-run')
    await expect
      .poll(() => widget.locator('[data-testid=alert]').allTextContents(), { timeout: 60_000, interval: 250 })
      .toContainEqual(expect.stringContaining('100% of the budget reached'))
    expect(await widget.locator('.toast').textContent()).toMatch(/% of the budget reached/)
    // The alert also refreshed the figures: the bar is full and marked over.
    await expect.poll(() => widget.locator('.bar').getAttribute('data-level'), { timeout: 60_000 }).toBe('over')
    await keepScreenshot(page, 'widget-alert.png', { fullPage: true })
    await page.context().close()
  })

  it('looks the same under a host page with aggressive global CSS', { timeout: 180_000 }, async () => {
    const styles = async (page: Page) =>
      page.locator('burnrate-spend').evaluate((el) => {
        const root = el.shadowRoot!
        const pick = (selector: string) => {
          const node = root.querySelector(selector)
          if (!node) return null
          const s = getComputedStyle(node)
          return [
            s.fontSize,
            s.color,
            s.lineHeight,
            s.letterSpacing,
            s.backgroundColor,
            s.borderTopWidth,
            s.paddingTop,
            s.marginTop,
            s.listStyleType,
            s.fontFamily,
          ].join('|')
        }
        return Object.fromEntries(
          [
            '.br',
            'h2',
            '.big',
            '.of',
            '.bar',
            '.fill',
            '.stats dd',
            '.chart rect.b',
            'button.row',
            '.row .a',
            '.alerts li',
            '.ft span',
          ].map((s) => [s, pick(s)]),
        )
      })
    const plain = await openDemo()
    const hostile = await openDemo('?hostile')
    // The hostile sheet really applies to the host page…
    expect(await hostile.locator('main h1').evaluate((h) => getComputedStyle(h).fontSize)).toBe('40px')
    // …and nothing of it reaches inside the widget.
    const expected = await styles(plain)
    expect(Object.values(expected).every(Boolean)).toBe(true)
    expect(await styles(hostile)).toEqual(expected)
    const box = async (page: Page) =>
      page
        .locator('burnrate-spend')
        .evaluate((el) => el.shadowRoot!.querySelector('.big')!.getBoundingClientRect().height)
    expect(await box(hostile)).toBe(await box(plain))
    await keepScreenshot(hostile, 'widget-hostile-css.png', { fullPage: true })
    await plain.context().close()
    await hostile.context().close()
  })

  it(
    'calls fetchToken again when the session expires, and shows an expired state when no new token comes',
    { timeout: 240_000 },
    async () => {
      // A host page of our own at the API's origin: its fetchToken counts calls and hides expiresAt,
      // so only the API's UNAUTHENTICATED (WIDGET_SESSION_EXPIRED) answer can tell the widget.
      const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' })
      const page = await context.newPage()
      // Minted now, used dead in the second half (so both 60 s waits overlap).
      const staleToken = (await (await fetch(`${origin}/demo/session?ttl=60`, { method: 'POST' })).json()) as {
        token: string
        customerId: string
        expiresAt: string
      }
      const html = (mode: 'renew' | 'stale') => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
      <body style="font-family: serif"><burnrate-spend id="w" endpoint="${origin}/graphql" refresh-interval="2000"></burnrate-spend>
      <script type="module">
        window.calls = 0
        let first
        document.getElementById('w').fetchToken = async () => {
          window.calls++
          if ('${mode}' === 'stale' && window.staleToken) return window.staleToken
          const session = await (await fetch('/demo/session?ttl=60', { method: 'POST' })).json()
          const { expiresAt, ...withoutExpiry } = session
          window.firstExpiry ??= expiresAt
          return withoutExpiry
        }
        await import('/demo/burnrate-spend.js')
      </script>`
      await page.route(`${origin}/host-renew.html`, (route) =>
        route.fulfill({ contentType: 'text/html', body: html('renew') }),
      )
      const expiredAnswers: string[] = []
      page.on('response', async (response) => {
        if (response.url().endsWith('/graphql') && response.request().method() === 'POST') {
          const text = await response.text().catch(() => '')
          if (text.includes('WIDGET_SESSION_EXPIRED')) expiredAnswers.push(text)
        }
      })
      await page.goto(`${origin}/host-renew.html`)
      await page.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 90_000 })
      expect(await page.evaluate(() => (window as unknown as { calls: number }).calls)).toBe(1)
      const firstExpiry = await page.evaluate(() => (window as unknown as { firstExpiry: string }).firstExpiry)
      // The first token lives 60 s; the widget polls every 2 s.
      await expect
        .poll(() => page.evaluate(() => (window as unknown as { calls: number }).calls), {
          timeout: 150_000,
          interval: 1000,
        })
        .toBeGreaterThanOrEqual(2)
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(firstExpiry))
      expect(expiredAnswers.length).toBeGreaterThan(0)
      // Renewed quietly: still the figures, never the expired state.
      await page.waitForTimeout(3000)
      expect(await page.locator('burnrate-spend [data-testid=spent]').count()).toBe(1)
      expect(await page.locator('burnrate-spend').getByText('Your session has expired').count()).toBe(0)

      // A backend that keeps handing out the dead token: the widget says so and offers to reconnect.
      const stale = await context.newPage()
      await stale.route(`${origin}/host-stale.html`, (route) =>
        route.fulfill({ contentType: 'text/html', body: html('stale') }),
      )
      await stale.addInitScript((token) => ((window as unknown as { staleToken: unknown }).staleToken = token), {
        ...staleToken,
        expiresAt: undefined,
      })
      await page.waitForTimeout(Math.max(0, Date.parse(staleToken.expiresAt) - Date.now() + 1000))
      await stale.goto(`${origin}/host-stale.html`)
      const expired = stale.locator('burnrate-spend').getByText('Your session has expired')
      await expired.waitFor({ timeout: 60_000 })
      expect(await stale.locator('burnrate-spend').getByRole('button', { name: 'Reconnect' }).count()).toBe(1)
      await keepScreenshot(stale.locator('burnrate-spend'), 'widget-expired.png')
      await context.close()
    },
  )

  it(
    'renders the React component (React 18, its own shadow root) with a locale and a theme object',
    { timeout: 180_000 },
    async () => {
      // The widget package's Vite bundles a tiny React app around <SpendWidget> from the sources.
      const vite = (await import(createRequire(join(ROOT, 'packages/widget/package.json')).resolve('vite'))) as {
        build(config: Record<string, unknown>): Promise<unknown>
      }
      const outDir = join(ROOT, 'test/.artifacts/react-harness')
      await vite.build({
        root: join(ROOT, 'packages/widget'),
        configFile: false,
        mode: 'production',
        logLevel: 'warn',
        esbuild: { jsx: 'automatic', jsxDev: false },
        define: { 'process.env.NODE_ENV': JSON.stringify('production') },
        build: {
          outDir,
          emptyOutDir: true,
          lib: { entry: 'test/react-harness.tsx', formats: ['es'], fileName: () => 'harness.js' },
        },
      })
      const script = await readFile(join(outDir, 'harness.js'), 'utf8')
      const context = await browser.newContext({
        locale: 'en-US',
        timezoneId: 'UTC',
        viewport: { width: 900, height: 1000 },
      })
      const page = await context.newPage()
      await page.route(`${origin}/react-host.html`, (route) =>
        route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><body style="margin:24px;background:#0b0c0f"><div id="root"></div>
          <script>window.ENDPOINT = ${JSON.stringify(`${origin}/graphql`)}</script><script type="module" src="/react-harness.js"></script>`,
        }),
      )
      await page.route(`${origin}/react-harness.js`, (route) =>
        route.fulfill({ contentType: 'text/javascript', body: script }),
      )
      await page.goto(`${origin}/react-host.html`)
      const widget = page.locator('[data-burnrate-widget]')
      await widget.locator('[data-testid=spent]').waitFor({ timeout: 90_000 })
      expect(await widget.evaluate((el) => el.shadowRoot !== null)).toBe(true)
      const b = await budget()
      await expect
        .poll(() => widget.locator('[data-testid=spent]').textContent())
        .toBe(formatMoney(b.spent, 'USD', 'de-DE'))
      expect(await widget.locator('h2').textContent()).toBe('KI-Nutzung')
      expect(await widget.locator('.br').getAttribute('data-theme')).toBe('dark')
      expect(await widget.locator('.fill').evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe('')
      expect(await page.evaluate(() => (window as unknown as { calls: number }).calls)).toBe(1)
      await keepScreenshot(widget, 'widget-react-dark-de.png')
      await context.close()
    },
  )

  it('has intentional empty and error states', { timeout: 180_000 }, async () => {
    const session = (
      await gql(
        'mutation { createWidgetSession(customerId: "browser-empty", ttlSeconds: 600) { token customerId expiresAt } }',
      )
    ).createWidgetSession
    const context = await browser.newContext({
      locale: 'en-US',
      timezoneId: 'UTC',
      viewport: { width: 700, height: 900 },
    })
    const page = await context.newPage()
    const host = (
      endpoint: string,
    ) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><body style="margin:24px">
      <burnrate-spend id="w" endpoint="${endpoint}"></burnrate-spend>
      <script type="module">
        document.getElementById('w').fetchToken = async () => (${JSON.stringify(session)})
        await import('/demo/burnrate-spend.js')
      </script>`
    await page.route(`${origin}/host-empty.html`, (route) =>
      route.fulfill({ contentType: 'text/html', body: host(`${origin}/graphql`) }),
    )
    await page.route(`${origin}/host-error.html`, (route) =>
      route.fulfill({ contentType: 'text/html', body: host(`${origin}/no-such-endpoint`) }),
    )
    await page.goto(`${origin}/host-empty.html`)
    const widget = page.locator('burnrate-spend')
    await widget.getByText('No usage yet this period').waitFor({ timeout: 60_000 })
    expect(await widget.locator('[data-testid=spent]').textContent()).toBe('$0.00')
    await keepScreenshot(widget, 'widget-empty.png')
    await page.goto(`${origin}/host-error.html`)
    await widget.getByRole('alert').waitFor({ timeout: 60_000 })
    expect(await widget.getByRole('alert').textContent()).toContain('Usage could not be loaded')
    expect(await widget.getByRole('button', { name: 'Try again' }).count()).toBe(1)
    await keepScreenshot(widget, 'widget-error.png')
    await context.close()
  })
})
