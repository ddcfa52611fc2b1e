import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Decimal } from '../packages/api/src/money/decimal.ts'
import { copyMigratedDataDir, createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'
import { startFakeStripe, type FakeStripe } from '../packages/api/test/support/fake-stripe.ts'
import { postGraphQL, ROOT, startApiProcess, type ApiProcess } from './support/api-process.ts'
import { CHROMIUM, hasChromium, launchBrowser, keepScreenshot } from './support/browser.ts'

/**
 * The operator console (packages/console) in real headless Chromium against the real API process
 * on a seeded database (the dev tenant's demo data, a price feed served here that moves a price
 * 20×, a webhook receiver that always answers 500): sign-in with a key exchanged for a cookie,
 * every page's figures equal to what GraphQL answers, the actions (confirm a held change, create
 * a budget whose alert arrives live, replay a dead delivery), a read-only key in view mode, and
 * axe-core on every page. Screenshots of every page go to test/.artifacts/console-*.png.
 */
if (!hasChromium && !process.env.CI)
  console.warn(`Skipping the console browser tests: ${CHROMIUM} is absent (apt-get install -y chromium).`)

const AXE = readFileSync(createRequire(join(ROOT, 'package.json')).resolve('axe-core/axe.min.js'), 'utf8')
const CUSTOMER = 'demo-lumen'
const usd = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
})
/** As the console shows an amount of at least a cent: exact decimal string → en-US currency. */
const money = (v: string) => usd.format(v as unknown as number)
const count = (v: number) => new Intl.NumberFormat('en-US').format(v)

/** The console's "Last 30 days" / "This month": [from, to) in whole UTC days up to the end of today. */
function range(kind: '30d' | 'month') {
  const now = new Date()
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + 86_400_000)
  const from =
    kind === 'month'
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
      : new Date(to.getTime() - 30 * 86_400_000)
  return { from: from.toISOString(), to: to.toISOString() }
}

function run(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'npx',
      ['tsx', ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 180_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
    ),
  )
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: unknown }[]
}

describe.skipIf(!hasChromium && !process.env.CI)('operator console in Chromium', () => {
  let api: ApiProcess
  let origin: string
  let adminKey: string
  let readOnlyKey: string
  let browser: Browser
  let database: TestDatabase | undefined
  let dataDir: string
  let feed: Server
  let sink: Server
  let stripe: FakeStripe
  let feedBody = ''
  const received: string[] = []

  const gqlAs = async (key: string, query: string, variables?: Record<string, unknown>) => {
    const result = await postGraphQL(`${origin}/graphql`, key, query, variables)
    if (result.errors) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`)
    return result.data
  }
  const gql = (query: string, variables?: Record<string, unknown>) => gqlAs(adminKey, query, variables)

  async function signedIn(
    key: string,
    colorScheme: 'light' | 'dark' = 'light',
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({
      locale: 'en-US',
      timezoneId: 'UTC',
      viewport: { width: 1280, height: 900 },
      colorScheme,
    })
    const page = await context.newPage()
    await page.goto(`${origin}/console`)
    await page.getByLabel('Tenant secret key').fill(key)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('navigation', { name: 'Console' }).waitFor({ timeout: 60_000 })
    return { context, page }
  }

  async function open(page: Page, path: string, heading: string) {
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: heading }).click()
    await page.waitForURL(`${origin}/console${path}`)
    await page.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: 60_000 })
    // Every section has left its loading state.
    await expect.poll(() => page.locator('.loading').count(), { timeout: 60_000 }).toBe(0)
  }

  async function axe(page: Page, name: string) {
    // Evaluated over the DevTools protocol: the console's CSP (script-src 'self') refuses inline scripts.
    await page.evaluate(AXE)
    const violations = (await page.evaluate(async () => {
      const r = await (
        window as unknown as { axe: { run: (c: unknown, o: unknown) => Promise<{ violations: unknown[] }> } }
      ).axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      })
      return r.violations
    })) as AxeViolation[]
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    expect(
      serious.map((v) => `${name}: ${v.id} (${v.impact}) ${v.help} — ${JSON.stringify(v.nodes.map((n) => n.target))}`),
    ).toEqual([])
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'burnrate-console-'))
    database = process.env.DATABASE_URL ? await createTestDatabase() : undefined
    if (!database) await copyMigratedDataDir(dataDir)
    // A public price feed (OpenRouter's format) this test controls.
    const models = JSON.parse(
      readFileSync(join(ROOT, 'packages/catalog-sync/test/fixtures/openrouter-models.json'), 'utf8'),
    ) as { data: { id: string; pricing: Record<string, string> }[] }
    feedBody = JSON.stringify(models)
    feed = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(feedBody))
    const feedUrl = `${await listen(feed)}/models`
    // A webhook receiver that is always down.
    sink = createServer((req, res) => {
      req.on('data', (d: Buffer) => received.push(d.toString()))
      req.on('end', () => res.writeHead(500).end('down'))
    })
    const sinkUrl = `${await listen(sink)}/hook`

    // Stripe's API, spoken by a local fake (the Billing page's credit pushes): nothing is sent until
    // the last test connects the tenant.
    stripe = await startFakeStripe()

    const env = { DATA_DIR: dataDir, DATABASE_URL: database?.url ?? '', LOG_LEVEL: 'warn' }
    // The dev tenant made first, so its id can be a catalog admin (it may confirm held public changes).
    const created = await run(['packages/api/src/cli/create-tenant.ts', '--name', 'Dev tenant'], env)
    const tenantId = /^tenant\s+(\S+)/m.exec(created)![1]!
    adminKey = /^api key\s+(\S+)/m.exec(created)![1]!
    api = await startApiProcess(
      {
        ...env,
        DEV_TENANT: 'true',
        DEMO: 'true',
        CATALOG_SYNC_INTERVAL: '0',
        CATALOG_SOURCES: 'genai-prices,openrouter',
        OPENROUTER_MODELS_URL: feedUrl,
        CATALOG_ADMIN_TENANTS: tenantId,
        STRIPE_API_URL: stripe.url,
        STRIPE_ENCRYPTION_KEY: 'c0ffee'.repeat(10) + 'c0ff',
        STRIPE_PUSH_INTERVAL_MS: '300',
        WEBHOOK_MAX_ATTEMPTS: '1',
        WEBHOOK_POLL_INTERVAL_MS: '100',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      },
      180_000,
    )
    origin = api.url.replace(/\/graphql$/, '')
    expect(api.output()).toContain(`Console        ${origin}/console`)

    // The feed once as it is, then with gpt-4o's input price 20× higher: held for a decision.
    await gql('mutation { syncCatalogSource(source: "openrouter") { held } }')
    models.data.find((m) => m.id === 'openai/gpt-4o')!.pricing.prompt = '0.00005'
    feedBody = JSON.stringify(models)
    const second = await gql('mutation { syncCatalogSource(source: "openrouter") { held } }')
    expect(second.syncCatalogSource.held).toBe(1)
    await gql(
      'mutation($u: String!) { createWebhookEndpoint(url: $u, eventTypes: ["budget.alert"], description: "Down on purpose") { endpoint { id } } }',
      { u: sinkUrl },
    )
    readOnlyKey = (
      await gql('mutation { createApiKey(input: { name: "auditor", role: READ_ONLY }) { secret apiKey { role } } }')
    ).createApiKey.secret
    // UNPRICED events for the Unpriced page's groups: a model no source knows.
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString()
    await gql('mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }', {
      e: [1, 2, 3].map((n) => ({
        id: `console-unpriced-${n}`,
        customerId: CUSTOMER,
        provider: 'acme-ai',
        model: 'mystery-large',
        timestamp: hourAgo,
        inputTokens: 1000 * n,
        outputTokens: 100,
      })),
    })
    browser = await launchBrowser()
  }, 420_000)

  afterAll(async () => {
    await browser?.close()
    await api?.stop()
    feed?.close()
    sink?.close()
    await stripe?.close()
    await database?.destroy()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it(
    'signs in with a key exchanged for an HttpOnly SameSite=Strict cookie; a wrong key is refused',
    { timeout: 180_000 },
    async () => {
      const context = await browser.newContext({
        locale: 'en-US',
        timezoneId: 'UTC',
        viewport: { width: 1280, height: 900 },
      })
      const page = await context.newPage()
      await page.goto(`${origin}/console/prices`)
      await page.getByLabel('Tenant secret key').fill('br_sk_not-a-real-key')
      await page.getByRole('button', { name: 'Sign in' }).click()
      await expect
        .poll(() => page.getByRole('alert').textContent(), { timeout: 30_000 })
        .toMatch(/not valid|not accepted/)
      await keepScreenshot(page, 'console-sign-in.png')
      await axe(page, 'sign-in')
      await page.getByLabel('Tenant secret key').fill(adminKey)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { level: 1, name: 'Prices' }).waitFor({ timeout: 60_000 })
      const cookie = (await context.cookies()).find((c) => c.name === 'br_console')!
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' })
      expect(cookie.value).not.toContain(adminKey)
      // Nothing of the key in the page's storage.
      const stored = await page.evaluate(
        () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
      )
      expect(stored).not.toContain('br_sk_')
      // Reload: still signed in (the cookie), then sign out.
      await page.reload()
      await page.getByRole('heading', { level: 1, name: 'Prices' }).waitFor({ timeout: 60_000 })
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByLabel('Tenant secret key').waitFor()
      const after = await page.evaluate(async () => (await fetch('/console/api/session')).status)
      expect(after).toBe(401)
      await context.close()
    },
  )

  it(
    'every page shows the figures the GraphQL API returns, passes axe, and is screenshotted',
    { timeout: 420_000 },
    async () => {
      const { context, page } = await signedIn(adminKey)
      // Overview: last 30 days, tenant-wide.
      const r30 = range('30d')
      const o = await gql(
        `query($from: DateTime!, $to: DateTime!) { usageSummary(from: $from, to: $to) { amount cost events unpricedEvents }
           byModel: usageSummary(from: $from, to: $to, groupBy: [PROVIDER, MODEL]) { groups { model amount } }
           overview(from: $from, to: $to) { amount cost margin events unpricedEvents alertsToday
             amountAtRisk { events amount unestimatedEvents } topCustomers(first: 10) { customerId amount }
             catalogFreshness { source } }
           unpricedGroups(from: $from, to: $to) { model events amountAtRisk }
           pendingPriceChanges { id } }`,
        r30,
      )
      // The overview query (rollups, whole hours) agrees with usageSummary over the same whole days.
      expect(o.overview.amount).toBe(o.usageSummary.amount)
      expect(o.overview.cost).toBe(o.usageSummary.cost)
      expect(o.overview.events).toBe(o.usageSummary.events)
      await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor()
      await expect
        .poll(() => page.getByTestId('billed').textContent(), { timeout: 60_000 })
        .toBe(money(o.overview.amount))
      expect(o.overview.events).toBeGreaterThan(0)
      expect(await page.getByTestId('cost').textContent()).toBe(money(o.overview.cost))
      expect(await page.getByTestId('margin').textContent()).toBe(money(o.overview.margin))
      expect(await page.getByTestId('events').textContent()).toBe(count(o.overview.events))
      expect(await page.getByTestId('unpriced').textContent()).toBe(count(o.overview.unpricedEvents))
      expect(await page.getByTestId('alerts-today').textContent()).toBe(count(o.overview.alertsToday))
      const risk = o.overview.amountAtRisk
      expect(await page.getByTestId('at-risk').textContent()).toBe(
        risk.events === 0
          ? money('0')
          : risk.amount === null
            ? 'unknown'
            : (risk.unestimatedEvents > 0 ? '≥ ' : '≈ ') + money(risk.amount),
      )
      expect(await page.getByTestId('held').textContent()).toBe(count(o.pendingPriceChanges.length))
      const rows = await page
        .getByTestId('by-model')
        .locator('tbody tr')
        .evaluateAll((trs) => trs.map((tr) => [tr.children[1]!.firstChild!.textContent, tr.children[4]!.textContent]))
      expect(rows.sort()).toEqual(
        o.byModel.groups.map((g: { model: string; amount: string }) => [g.model, money(g.amount)]).sort(),
      )
      const top = await page
        .getByTestId('top-customers')
        .locator('tbody tr')
        .evaluateAll((trs) => trs.map((tr) => [tr.children[0]!.textContent, tr.children[1]!.textContent]))
      expect(top).toEqual(
        o.overview.topCustomers.map((c: { customerId: string; amount: string }) => [c.customerId, money(c.amount)]),
      )
      await keepScreenshot(page, 'console-overview.png', { fullPage: true })
      await axe(page, 'overview')

      // Customer page: this month's totals, group by model, an event's charge lines.
      await page.goto(`${origin}/console/customers/${CUSTOMER}`)
      const month = range('month')
      const c = await gql(
        `query($c: String!, $from: DateTime!, $to: DateTime!) { usageSummary(customerId: $c, from: $from, to: $to) { amount cost }
           budgets(customerId: $c) { limit spent } pricingPlan(customerId: $c) { kind percent } }`,
        { c: CUSTOMER, ...month },
      )
      await expect
        .poll(() => page.getByTestId('customer-billed').textContent(), { timeout: 60_000 })
        .toBe(money(c.usageSummary.amount))
      expect(await page.getByTestId('customer-cost').textContent()).toBe(money(c.usageSummary.cost))
      expect(await page.getByTestId('budgets').locator('tbody tr').first().textContent()).toContain(
        money(c.budgets[0].limit),
      )
      expect(await page.getByTestId('plan').textContent()).toContain(c.pricingPlan.kind)
      await page
        .getByTestId('explorer')
        .getByRole('button', { name: /Show events/ })
        .first()
        .click()
      await page.getByTestId('events').getByRole('button', { name: 'Explain this charge' }).first().click()
      await expect
        .poll(() => page.getByTestId('explain').textContent(), { timeout: 30_000 })
        .toMatch(/input.*Plan: MARKUP 30/s)
      await page.getByRole('button', { name: 'Show the widget' }).click()
      await page.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 60_000 })
      expect(await page.locator('burnrate-spend [data-testid=spent]').textContent()).toBe(money(c.budgets[0].spent))
      await keepScreenshot(page, 'console-customer.png', { fullPage: true })
      await axe(page, 'customer')

      // Prices: the catalog's price in force for gpt-4o input, per 1M.
      await open(page, '/prices', 'Prices')
      const p = (
        await gql('{ providerPrices(provider: "openrouter", model: "openai/gpt-4o") { usageType unitPrice } }')
      ).providerPrices as { usageType: string; unitPrice: string }[]
      const input = p.find((x) => x.usageType === 'input')!
      await page.getByRole('searchbox').fill('openai/gpt-4o')
      await expect
        .poll(() => page.locator('[data-price="openrouter/openai/gpt-4o/input"]').textContent(), { timeout: 30_000 })
        .toBe(money(new Decimal(input.unitPrice).mul(1_000_000).toFixed()))
      await page.getByRole('button', { name: 'Price history of openrouter openai/gpt-4o', exact: true }).first().click()
      await page.locator('figure.chart svg').first().waitFor()
      await keepScreenshot(page, 'console-prices.png', { fullPage: true })
      await axe(page, 'prices')
      for (const tab of ['Held changes', 'Sources and feed', 'Overrides', 'Re-pricing']) {
        await page.getByRole('tab', { name: tab }).click()
        await expect.poll(() => page.locator('.loading').count(), { timeout: 60_000 }).toBe(0)
        await keepScreenshot(page, `console-prices-${tab.toLowerCase().replace(/\W+/g, '-')}.png`, { fullPage: true })
        await axe(page, `prices ${tab}`)
      }

      // Customers: open one by id, from the keyboard.
      await open(page, '/customers', 'Customers')
      await page.getByLabel('Customer id').fill(CUSTOMER)
      await page.keyboard.press('Enter')
      await page.waitForURL(`${origin}/console/customers/${CUSTOMER}`)
      await expect
        .poll(() => page.getByTestId('customer-billed').textContent(), { timeout: 60_000 })
        .toBe(money(c.usageSummary.amount))
      // Customers list: search by a part of the id; the row shows this month's billed amount.
      await open(page, '/customers', 'Customers')
      await page.getByLabel('Search by id or name').fill(CUSTOMER.slice(2, 8).toUpperCase())
      const row = page.locator(`[data-customer="${CUSTOMER}"]`)
      await expect
        .poll(() => row.getByTestId('customer-row-billed').textContent(), { timeout: 60_000 })
        .toBe(money(c.usageSummary.amount))
      const listed = await gql('query($s: String) { customers(search: $s) { edges { node { id } } } }', {
        s: CUSTOMER.slice(2, 8).toUpperCase(),
      })
      expect(await page.getByTestId('customers').locator('tbody tr').count()).toBe(listed.customers.edges.length)
      await keepScreenshot(page, 'console-customers.png', { fullPage: true })
      await axe(page, 'customers')

      // Unpriced: the count usageSummary answers for the range.
      await open(page, '/unpriced', 'Unpriced')
      await expect
        .poll(() => page.getByTestId('unpriced-events').textContent(), { timeout: 60_000 })
        .toBe(count(o.usageSummary.unpricedEvents))
      const groups = await page
        .getByTestId('unpriced-groups')
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => [tr.children[2]!.textContent, tr.children[3]!.textContent, tr.children[5]!.textContent]),
        )
      expect(groups).toEqual(
        o.unpricedGroups.map((g: { model: string; events: number; amountAtRisk: string | null }) => [
          g.model,
          count(g.events),
          g.amountAtRisk === null ? 'unknown' : '≈ ' + money(g.amountAtRisk),
        ]),
      )
      expect(o.unpricedGroups.length).toBeGreaterThan(0)
      await keepScreenshot(page, 'console-unpriced.png', { fullPage: true })
      await axe(page, 'unpriced')

      // Billing (no Stripe account on the demo tenant) and Webhooks (the endpoint made above).
      await open(page, '/billing', 'Billing')
      expect(await page.getByTestId('stripe-account').textContent()).toContain('not connected')
      await keepScreenshot(page, 'console-billing.png', { fullPage: true })
      await axe(page, 'billing')
      await open(page, '/webhooks', 'Webhooks')
      const endpoints = (await gql('{ webhookEndpoints { url } }')).webhookEndpoints as { url: string }[]
      expect(await page.getByTestId('endpoints').locator('tbody tr').count()).toBe(endpoints.length)
      expect(await page.getByTestId('endpoints').textContent()).toContain(endpoints[0]!.url)
      await keepScreenshot(page, 'console-webhooks.png', { fullPage: true })
      await axe(page, 'webhooks')

      // Audit log: the changes made above, newest first, as the auditLog query lists them.
      await open(page, '/audit', 'Audit log')
      const audit = (await gql('{ auditLog(first: 50) { edges { node { action } } } }')).auditLog.edges.map(
        (e: { node: { action: string } }) => e.node.action,
      ) as string[]
      expect(audit.length).toBeGreaterThan(0)
      expect(
        await page
          .getByTestId('audit')
          .locator('tbody tr[data-audit]')
          .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-audit'))),
      ).toEqual(audit)
      await keepScreenshot(page, 'console-audit.png', { fullPage: true })
      await axe(page, 'audit')
      await context.close()

      // The dark theme too.
      const dark = await signedIn(adminKey, 'dark')
      await expect
        .poll(() => dark.page.getByTestId('billed').textContent(), { timeout: 60_000 })
        .toBe(money(o.usageSummary.amount))
      await keepScreenshot(dark.page, 'console-overview-dark.png', { fullPage: true })
      await axe(dark.page, 'overview (dark)')
      await dark.context.close()
    },
  )

  it('confirms a held price change and shows the new price in force', { timeout: 240_000 }, async () => {
    const { context, page } = await signedIn(adminKey)
    await open(page, '/prices', 'Prices')
    await page.getByRole('tab', { name: 'Held changes' }).click()
    const row = page.getByTestId('held').locator('tbody tr', { hasText: 'openai/gpt-4o' })
    await row.waitFor({ timeout: 60_000 })
    await row.getByRole('button', { name: 'Confirm' }).click()
    await expect.poll(() => page.getByText('No held changes.').count(), { timeout: 60_000 }).toBe(1)
    const p = (await gql('{ providerPrices(provider: "openrouter", model: "openai/gpt-4o") { usageType unitPrice } }'))
      .providerPrices as { usageType: string; unitPrice: string }[]
    expect(p.find((x) => x.usageType === 'input')!.unitPrice).toBe('0.00005')
    await page.getByRole('tab', { name: 'Catalog' }).click()
    await page.getByRole('searchbox').fill('openai/gpt-4o')
    await expect
      .poll(() => page.locator('[data-price="openrouter/openai/gpt-4o/input"]').textContent(), { timeout: 60_000 })
      .toBe('$50.00')
    // The decision is in the audit log, by the key that signed in, with the held change before.
    const audit = (
      await gql(
        '{ auditLog(filter: { action: "priceChange.confirm" }) { edges { node { actorKeyName actorAuthMethod before } } } }',
      )
    ).auditLog.edges
    expect(audit[0].node).toMatchObject({ actorKeyName: 'default', actorAuthMethod: 'SESSION' })
    expect(audit[0].node.before).not.toBeNull()
    await context.close()
  })

  it(
    'creates a budget whose alert arrives live, then replays the dead webhook delivery it caused',
    { timeout: 300_000 },
    async () => {
      const customer = 'console-live'
      await gql('mutation { upsertCustomer(input: { id: "console-live", name: "Live Co" }) { id } }')
      const { context, page } = await signedIn(adminKey)
      await page.goto(`${origin}/console/customers/${customer}`)
      await page.getByRole('button', { name: 'New budget' }).click()
      await page.getByLabel('Limit', { exact: true }).fill('0.01')
      await page.getByLabel('Alert at (% of limit)').fill('50')
      await page.getByRole('button', { name: 'Save budget' }).click()
      await page.getByTestId('budgets').waitFor({ timeout: 60_000 })
      expect((await gql(`{ budgets(customerId: "${customer}") { limit thresholds } }`)).budgets).toEqual([
        { limit: '0.01', thresholds: [50] },
      ])
      // Usage arrives from elsewhere (the API); the alert shows up without a reload.
      await gql('mutation($e: UsageEventInput!) { recordUsage(event: $e) { status } }', {
        e: {
          id: `console-live-${Date.now()}`,
          customerId: customer,
          model: 'gpt-4o',
          timestamp: new Date().toISOString(),
          inputTokens: 100_000,
          outputTokens: 10_000,
        },
      })
      await expect.poll(() => page.getByTestId('alerts').textContent(), { timeout: 60_000 }).toMatch(/new.*50% reached/)
      await keepScreenshot(page, 'console-budget-alert.png', { fullPage: true })
      // A refused change shows the API's message and code beside the form, announced; the next success clears it.
      const planSection = page.getByRole('region', { name: 'Pricing plan' })
      await page.getByLabel('Percent').fill('-5')
      await page.getByRole('button', { name: 'Set from now on' }).click()
      await expect
        .poll(() => planSection.getByRole('alert').textContent(), { timeout: 60_000 })
        .toBe('percent must not be negative BAD_USER_INPUT')
      // A plan change from the same page is in the audit log: by the signed-in key, through the console session.
      await page.getByLabel('Percent').fill('12.5')
      await page.getByRole('button', { name: 'Set from now on' }).click()
      await expect.poll(() => page.getByTestId('plan').textContent(), { timeout: 60_000 }).toContain('MARKUP 12.5%')
      expect(await planSection.getByRole('alert').count()).toBe(0)
      await open(page, '/audit', 'Audit log')
      await page.getByLabel('What').selectOption('PricingPlan')
      const entry = page.getByTestId('audit').locator('tr[data-audit="pricingPlan.set"]').first()
      await entry.waitFor({ timeout: 60_000 })
      expect(await entry.textContent()).toContain('console')
      await entry.getByRole('button', { name: 'Before / after' }).click()
      expect(await page.locator('tr.sub').textContent()).toContain('12.5')

      // The alert's webhook went to a receiver that answers 500: DEAD after its one attempt.
      await expect
        .poll(async () => (await gql('{ webhookDeliveries(status: DEAD) { id } }')).webhookDeliveries.length, {
          timeout: 90_000,
        })
        .toBeGreaterThan(0)
      const dead = (await gql('{ webhookDeliveries(status: DEAD) { id } }')).webhookDeliveries[0].id as string
      await open(page, '/webhooks', 'Webhooks')
      await page.getByLabel('Status').selectOption('DEAD')
      const row = page.locator(`[data-delivery="${dead}"]`)
      await row.getByRole('button', { name: 'Replay' }).click()
      await expect
        .poll(
          async () => {
            const d = (await gql('{ webhookDeliveries { id status attempts } }')).webhookDeliveries.find(
              (x: { id: string }) => x.id === dead,
            )
            return d.status !== 'DEAD' || d.attempts > 1
          },
          { timeout: 60_000 },
        )
        .toBe(true)
      // Rotating an endpoint's secret shows the new one once and refreshes the endpoint's row.
      await page.getByRole('button', { name: 'Rotate secret' }).click()
      await page.getByTestId('new-secret').waitFor({ timeout: 60_000 })
      expect(await page.getByTestId('new-secret').textContent()).not.toBe('')
      await expect
        .poll(() => page.getByTestId('endpoints').locator('tbody tr').first().textContent(), { timeout: 60_000 })
        .toContain('previous valid until')
      // Delete the budget from its customer's page: asked first (Cancel keeps it), then gone from the API,
      // recorded in the audit log.
      await page.goto(`${origin}/console/customers/${customer}`)
      page.once('dialog', (d) => void d.dismiss())
      await page.getByRole('button', { name: 'Delete the MONTH budget' }).click()
      expect((await gql(`{ budgets(customerId: "${customer}") { id } }`)).budgets.length).toBe(1)
      page.once('dialog', (d) => void d.accept())
      await page.getByRole('button', { name: 'Delete the MONTH budget' }).click()
      await expect
        .poll(async () => (await gql(`{ budgets(customerId: "${customer}") { id } }`)).budgets.length, {
          timeout: 60_000,
        })
        .toBe(0)
      await page.getByText('No budgets for this customer.').waitFor({ timeout: 60_000 })
      const deleted = (
        await gql('{ auditLog(filter: { action: "budget.delete" }) { edges { node { entityType before after } } } }')
      ).auditLog.edges
      expect(deleted[0].node).toMatchObject({ entityType: 'Budget', before: { customerId: customer }, after: null })
      await context.close()
    },
  )

  it('a read-only key sees every page in view mode and cannot change anything', { timeout: 300_000 }, async () => {
    const { context, page } = await signedIn(readOnlyKey)
    expect(await page.getByTestId('role').textContent()).toBe('View only')
    await page.goto(`${origin}/console/customers/${CUSTOMER}`)
    await page.getByTestId('customer-billed').waitFor({ timeout: 60_000 })
    for (const name of ['New budget', 'Edit', 'Set from now on', 'Show the widget']) {
      expect(await page.getByRole('button', { name }).count(), name).toBe(0)
    }
    await open(page, '/prices', 'Prices')
    await page.getByRole('tab', { name: 'Sources and feed' }).click()
    await expect.poll(() => page.locator('.loading').count(), { timeout: 60_000 }).toBe(0)
    expect(await page.getByRole('button', { name: 'Sync now' }).count()).toBe(0)
    await open(page, '/webhooks', 'Webhooks')
    expect(await page.getByRole('button', { name: /Replay|Rotate secret/ }).count()).toBe(0)
    await keepScreenshot(page, 'console-read-only.png', { fullPage: true })
    // Even past the hidden controls, a mutation from this session is refused and changes nothing.
    const before = (await gql(`{ pricingPlan(customerId: "${CUSTOMER}") { kind percent } }`)).pricingPlan
    const answer = await page.evaluate(async () => {
      const session = (await (await fetch('/console/api/session')).json()) as { csrfToken: string }
      const response = await fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({
          query:
            'mutation { setPricingPlan(input: { customerId: "demo-lumen", kind: MARKUP, percent: "99" }) { kind } }',
        }),
      })
      return (await response.json()) as { errors?: { extensions?: { code?: string } }[] }
    })
    expect(answer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect((await gql(`{ pricingPlan(customerId: "${CUSTOMER}") { kind percent } }`)).pricingPlan).toEqual(before)
    await context.close()
  })

  it(
    'Billing lists the credit grant Stripe refused, with its error; Retry sends it again',
    { timeout: 240_000 },
    async () => {
      // Stripe refuses every credit grant until told otherwise; everything else goes through.
      let refuseGrants = true
      stripe.fault = (r) =>
        refuseGrants && r.path === '/v1/billing/credit_grants' && r.method === 'POST' ? 'invalid' : null
      await gql('mutation { setStripeCredentials(input: { secretKey: "sk_test_consoleBilling0001" }) { mode } }')
      await gql('mutation { setupStripeBilling(input: { createCustomers: true }) { createdCustomers } }')
      // Credits pay for new usage: the API process's pusher mirrors what they paid as a Stripe
      // billing credit grant, which Stripe refuses (400).
      await gql(
        `mutation { grantCredits(input: { customerId: "${CUSTOMER}", idempotencyKey: "console-stripe", amount: "50" }) { created } }`,
      )
      await gql('mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }', {
        e: [1, 2].map((n) => ({
          id: `console-stripe-${n}`,
          customerId: CUSTOMER,
          model: 'gpt-4o',
          timestamp: new Date(Date.now() - 60_000 * n).toISOString(),
          inputTokens: 120_000,
          outputTokens: 3_000,
        })),
      })
      const failed = async () =>
        (
          await gql(
            '{ stripeCreditPushesPage(status: FAILED) { edges { node { identifier customerId kind amountMinor lastError } } } }',
          )
        ).stripeCreditPushesPage.edges.map((e: { node: Record<string, string> }) => e.node) as Record<string, string>[]
      await expect.poll(async () => (await failed()).length, { timeout: 120_000, interval: 500 }).toBeGreaterThan(0)
      const [push] = await failed()
      expect(push).toMatchObject({ customerId: CUSTOMER, kind: 'GRANT' })

      const { context, page } = await signedIn(adminKey)
      await open(page, '/billing', 'Billing')
      expect(await page.getByTestId('stripe-account').textContent()).toContain('sk_test')
      const table = page.getByTestId('credit-pushes')
      await table.waitFor({ timeout: 60_000 })
      const row = table.locator('tbody tr').first()
      const cells = await row.locator('td').allTextContents()
      expect(cells[1]).toBe(CUSTOMER)
      expect(cells[2]).toContain('Credit grant')
      expect(cells[4]).toBe(money(new Decimal(push!.amountMinor!).div(100).toFixed()))
      expect(cells[5]).toContain('FAILED')
      expect(cells[7]).toBe(push!.lastError)
      expect(push!.lastError).toBeTruthy()
      await keepScreenshot(page, 'console-billing-stripe.png', { fullPage: true })
      await axe(page, 'billing with Stripe')

      // Stripe accepts grants again; Retry plans the grant anew and the pusher sends it.
      refuseGrants = false
      await row.getByRole('button', { name: 'Retry' }).click()
      await expect.poll(() => table.count(), { timeout: 60_000 }).toBe(0)
      expect(await page.getByText('No failed credit pushes.').count()).toBe(1)
      await expect
        .poll(
          async () =>
            (
              await gql(
                `{ stripeCreditPushesPage(status: SENT, customerId: "${CUSTOMER}") { edges { node { kind amountMinor } } } }`,
              )
            ).stripeCreditPushesPage.edges.map((e: { node: { kind: string; amountMinor: string } }) => e.node),
          { timeout: 120_000, interval: 500 },
        )
        .toContainEqual({ kind: 'GRANT', amountMinor: push!.amountMinor })
      const grants = stripe.account('sk_test_consoleBilling0001').creditGrants
      expect(grants.length).toBeGreaterThan(0)
      await page.locator('#credit-push-status').selectOption('SENT')
      await expect.poll(() => table.locator('tbody tr').count(), { timeout: 60_000 }).toBeGreaterThan(0)
      expect(await table.textContent()).toContain('SENT')
      await context.close()
    },
  )
})
