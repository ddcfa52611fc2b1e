/**
 * Widget liveness: from `recordUsage` returning to the new spend on screen in the embedded widget,
 * in real headless Chromium against the real start command (`npm start`'s API with the demo page).
 * Two modes in one run: live (the usageUpdates subscription; polling off) and the baseline the
 * widget had before it (no usage stream: the 10-second poll).
 *
 *   npx tsx bench/widget-live.ts [--events 40] [--baseline 10]
 *
 * Needs /usr/bin/chromium. Database: a fresh PostgreSQL database when DATABASE_URL is set, else
 * PGlite in a temporary data directory.
 */
import type { Page } from 'playwright-core'
import { formatMoney } from '../packages/widget/src/format.ts'
import { hasChromium, launchBrowser } from '../test/support/browser.ts'
import { startDemoApi } from '../test/support/demo-api.ts'
import { distribution, numericOptions } from './lib.ts'

const options = numericOptions('widget-live', {
  events: { env: 'BENCH_EVENTS', default: 40, help: 'recordUsage calls measured live' },
  baseline: { env: 'BENCH_BASELINE', default: 10, help: 'calls measured with the 10 s poll only' },
})
if (!hasChromium)
  throw new Error('widget-live needs /usr/bin/chromium (apt-get install -y --no-install-recommends chromium)')

const demo = await startDemoApi('bench-widget')
const { origin, gql } = demo
const browser = await launchBrowser()
let seq = 0

const spent = async () => (await gql('{ budgets(customerId: "demo-lumen") { spent } }')).budgets[0].spent as string

/** ms from each recordUsage answer to its spend on screen. */
async function measure(page: Page, events: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < events; i++) {
    await gql('mutation($e: UsageEventInput!) { recordUsage(event: $e) { status } }', {
      e: {
        id: `bench-live-${Date.now()}-${seq++}`,
        customerId: 'demo-lumen',
        model: 'gpt-4o',
        timestamp: new Date().toISOString(),
        inputTokens: 1_000,
        outputTokens: 10,
      },
    })
    const started = performance.now()
    // The figure to wait for (read after the answer, so the time includes this one query).
    const expected = formatMoney(await spent(), 'USD', 'en-US')
    await page.waitForFunction(
      (text) =>
        document.querySelector('burnrate-spend')?.shadowRoot?.querySelector('[data-testid=spent]')?.textContent ===
        text,
      expected,
      { polling: 'raf', timeout: 60_000 },
    )
    out.push(performance.now() - started)
    // Spread the calls over the poll's phase, as real usage arrives.
    await new Promise((r) => setTimeout(r, 137 * (i % 7)))
  }
  return out
}

async function open(query: string, blockUsageStream: boolean): Promise<Page> {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' })
  const page = await context.newPage()
  if (blockUsageStream) {
    await page.route(`${origin}/graphql`, (route) =>
      route.request().postData()?.includes('BurnrateWidgetUsage')
        ? route.fulfill({ status: 503, body: 'no usage stream' })
        : route.continue(),
    )
  }
  await page.goto(`${origin}/demo${query}`)
  await page.locator('burnrate-spend [data-testid=spent]').waitFor({ timeout: 90_000 })
  return page
}

try {
  const live = await open('?refresh-interval=600000', false)
  await live.waitForFunction(
    () => document.querySelector('burnrate-spend')?.shadowRoot?.querySelector('.live')?.textContent === 'Live',
    null,
    { timeout: 60_000 },
  )
  const liveMs = distribution(await measure(live, options.events))
  await live.context().close()
  const polled = await open('?refresh-interval=10000', true)
  const pollMs = distribution(await measure(polled, options.baseline))
  await polled.context().close()
  const line = (name: string, d: ReturnType<typeof distribution>) =>
    `${name.padEnd(34)} p50 ${d.p50.toFixed(0).padStart(5)} ms   p95 ${d.p95.toFixed(0).padStart(5)} ms   max ${d.max.toFixed(0).padStart(5)} ms`
  console.log(line(`live (usageUpdates), n=${options.events}`, liveMs))
  console.log(line(`baseline (10 s poll), n=${options.baseline}`, pollMs))
  console.log(
    `RESULT widget-live p95 ${liveMs.p95.toFixed(0)} ms (baseline poll p95 ${pollMs.p95.toFixed(0)} ms, ${(pollMs.p95 / liveMs.p95).toFixed(1)}x)`,
  )
} finally {
  await browser.close()
  await demo.stop()
}
