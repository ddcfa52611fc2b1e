import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../packages/api/src/logger.ts'
import { startServer, type RunningServer } from '../packages/api/src/server.ts'
import { createTestApp, type TestApp } from '../packages/api/test/support/app.ts'
import { CHROMIUM, hasChromium, launchBrowser, keepScreenshot } from './support/browser.ts'

/**
 * GraphiQL in real headless Chromium with every request to another host refused: its scripts and
 * styles must come from the API itself (it showed "Loading…" forever without a CDN).
 */
if (!hasChromium)
  console.warn(
    `Skipping the GraphiQL browser test: ${CHROMIUM} is absent (apt-get install -y --no-install-recommends chromium).`,
  )

describe.skipIf(!hasChromium)('GraphiQL offline', () => {
  let t: TestApp
  let server: RunningServer
  let browser: Browser

  beforeAll(async () => {
    t = await createTestApp({ loadCatalog: false, config: { PORT: 0, GRAPHIQL: true } })
    server = await startServer(t.app, t.app.services.config, createLogger('silent'))
    browser = await launchBrowser()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
    await t?.close()
  })

  it('shows the editor and runs a query with no network beyond the API', { timeout: 180_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    const api = new URL(server.url)
    const refused: string[] = []
    await context.route('**/*', async (route) => {
      const url = new URL(route.request().url())
      if (url.protocol === 'blob:' || url.protocol === 'data:') return route.continue()
      if (url.host !== api.host) {
        refused.push(url.href)
        return route.abort('internetdisconnected')
      }
      // The key a user types into GraphiQL's header editor, added here so the test does not depend on editor keystrokes.
      if (url.pathname === '/graphql' && route.request().method() === 'POST') {
        return route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${t.tenant.apiKey}` } })
      }
      return route.continue()
    })

    const response = await page.goto(`${server.url}/graphql`)
    expect(response?.status()).toBe(200)
    await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: 90_000 })
    expect(await page.getByText('Loading…').count()).toBe(0)

    // The default query ({ tenant { id name } }) runs and its answer shows in the response pane.
    await page.locator('.graphiql-execute-button').click()
    await page.locator('.graphiql-response').getByText(t.tenant.id).waitFor({ timeout: 60_000 })
    // Monaco renders spaces as no-break spaces.
    expect((await page.locator('.graphiql-response').textContent())?.replace(/\u00a0/g, ' ')).toContain(
      '"name": "Test tenant"',
    )
    await keepScreenshot(page, 'graphiql-offline.png')

    expect(refused).toEqual([])
    await context.close()
  })
})
