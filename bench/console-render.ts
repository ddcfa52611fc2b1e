/**
 * Console overview render: from navigation to the overview's first numbers on screen, in real
 * headless Chromium against the real API (the start command, packages/api/src/main.ts, in its own
 * process, serving the built console at /console) on a PostgreSQL database seeded with 1,000 customers and 1 M events over the last 30
 * days — the range the overview opens on.
 *
 * Seeding goes through bench/fill.ts, not ingest (1 M events through recordUsageBatch take far
 * too long on a 2-core box): 96 template events are recorded through the real ingest service,
 * generate_series copies them with new ids, customers and timestamps, and usage_rollups /
 * usage_line_rollups are built from the events with INSERT … SELECT … GROUP BY keyed as ingest keys
 * them; a few generated rows are re-recorded through ingest under a second tenant and compared
 * column by column. The overview reads only the rollups, so they are what the seeding must get
 * right; the bench checks the overview's event count and billed amount against SQL over usage_events.
 *
 * Measured per load (a new tab in the signed-in browser context, so the console's assets come from
 * the browser cache after the first): ms from navigation start (performance.timeOrigin) to the first
 * animation frame in which the Billed figure shows a number, read in the page; plus, from the
 * page's resource timing, how long the overview GraphQL request took. The first, cold load (empty
 * cache) is printed apart.
 *
 *   npx tsx bench/console-render.ts [--events 1000000] [--customers 1000] [--loads 20]
 *   npx tsx bench/console-render.ts --events 100000          (a quick run)
 *
 * Needs /usr/bin/chromium and a local PostgreSQL (BENCH_ADMIN_URL, default postgres@127.0.0.1:5432).
 */
import { execFileSync } from 'node:child_process'
import { chromium, type BrowserContext } from 'playwright-core'
import { Decimal } from '../packages/api/src/money/decimal.ts'
import { startApiProcess } from '../test/support/api-process.ts'
import { CHROMIUM, hasChromium } from '../test/support/browser.ts'
import { checkAgainstIngest, fillDatabase, PLAN } from './fill.ts'
import { distribution, fmt, main, numericOptions, printHeader, psqlRows, setUpApp, timed } from './lib.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

const OVERVIEW = `query($from: DateTime!, $to: DateTime!) { overview(from: $from, to: $to) { events amount cost currency topCustomers(first: 10) { customerId } } }`

main(async () => {
  const options = numericOptions('console-render', {
    events: { env: 'BENCH_EVENTS', default: 1_000_000, help: 'events in the database' },
    customers: { env: 'BENCH_CUSTOMERS', default: 1_000, help: 'customers with usage (2..1000)' },
    loads: { env: 'BENCH_LOADS', default: 20, help: 'timed loads of the overview (after the cold one)' },
    templates: { env: 'BENCH_TEMPLATES', default: 96, help: 'distinct priced template events' },
  })
  if (!hasChromium) throw new Error(`console-render needs ${CHROMIUM} (apt-get install -y chromium)`)
  if (options.customers < 2 || options.customers > 1000) throw new Error('--customers must be 2..1000')
  let commit = 'unknown'
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {
    // not a git checkout
  }
  printHeader(`console-render: overview first render in Chromium (commit ${commit})`, options)

  const bench = await setUpApp('console_render')
  let stopApi = async (): Promise<unknown> => undefined
  try {
    // The console's "Last 30 days": whole UTC days, from 29 days before today to the end of today.
    const startOfToday = Math.floor(Date.now() / DAY_MS) * DAY_MS
    const monthStart = startOfToday - 29 * DAY_MS
    const monthEnd = Math.floor(Date.now() / HOUR_MS) * HOUR_MS // no event in the future
    await bench.db
      .insertInto('pricing_plans')
      .values({
        tenant_id: bench.tenant.id,
        customer_id: null,
        kind: PLAN.kind,
        percent: PLAN.percent,
        effective_from: new Date('2000-01-01T00:00:00Z'),
      })
      .execute()
    console.log(
      `\nfill: ${fmt.int(options.events)} events, ${fmt.int(options.customers)} customers, ${new Date(monthStart).toISOString()} .. ${new Date(monthEnd).toISOString()}`,
    )
    const fill = await timed(() =>
      fillDatabase(bench, {
        events: options.events,
        customers: options.customers - 1,
        templates: options.templates,
        monthStart,
        monthEnd,
      }),
    )
    console.log(`fill total: ${fmt.s(fill.ms)}`)
    await checkAgainstIngest(bench, options.events)

    // The real start command (packages/api/src/main.ts, which serves the built console) on this database.
    const apiProcess = await startApiProcess(
      {
        DATABASE_URL: bench.database.url,
        DEV_TENANT: 'false',
        CATALOG_SYNC_ON_START: 'false',
        CATALOG_SYNC_INTERVAL: '0',
        STRIPE_PUSH_ENABLED: 'false',
      },
      180_000,
    )
    stopApi = () => apiProcess.stop()
    const origin = apiProcess.url.replace(/\/graphql$/, '')
    const range = {
      from: new Date(monthStart).toISOString(),
      to: new Date(startOfToday + DAY_MS).toISOString(),
    }

    // The figures the page must show, and the overview query's own time over HTTP.
    const post = async () => {
      const response = await fetch(`${origin}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bench.apiKey}` },
        body: JSON.stringify({ query: OVERVIEW, variables: range }),
      })
      const json = (await response.json()) as {
        data?: { overview: { events: number; amount: string; cost: string; currency: string } }
        errors?: unknown
      }
      if (!json.data) throw new Error(`overview failed: ${JSON.stringify(json.errors)}`)
      return json.data.overview
    }
    const overview = await post()
    const [[events, amount, customers]] = (await psqlRows(
      bench.database.url,
      `select count(*), coalesce(sum(amount), 0), count(distinct customer_id) from usage_events
       where tenant_id = '${bench.tenant.id}' and ts >= '${range.from}' and ts < '${range.to}'`,
    )) as [[string, string, string]]
    if (overview.events !== Number(events) || !new Decimal(overview.amount).equals(new Decimal(amount)))
      throw new Error(`overview ${overview.events} events / ${overview.amount} != SQL ${events} / ${amount}`)
    console.log(
      `overview over ${range.from} .. ${range.to}: ${fmt.int(overview.events)} events of ${customers} customers, billed ${overview.amount} ${overview.currency} (equal to SQL over usage_events)`,
    )
    const apiTimes: number[] = []
    for (let i = 0; i < 12; i++) apiTimes.push((await timed(post)).ms)
    const api = distribution(apiTimes.slice(2))
    console.log(`overview query over HTTP (no browser): p50 ${fmt.ms(api.p50)} ms, p95 ${fmt.ms(api.p95)} ms`)

    const billed = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: overview.currency,
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(overview.amount as unknown as number)

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 120_000,
    })
    try {
      const context = await browser.newContext({
        locale: 'en-US',
        timezoneId: 'UTC',
        viewport: { width: 1280, height: 900 },
      })
      // Sign in once (the key is exchanged for the session cookie), as an operator does.
      const signIn = await context.newPage()
      await signIn.goto(`${origin}/console`)
      await signIn.getByLabel('Tenant secret key').fill(bench.apiKey)
      await signIn.getByRole('button', { name: 'Sign in' }).click()
      await signIn.getByRole('navigation', { name: 'Console' }).waitFor({ timeout: 60_000 })
      await signIn.close()

      const cold = await load(context, origin, billed)
      console.log(
        `\ncold load (empty browser cache): first numbers at ${fmt.ms(cold.firstNumbers)} ms (overview request ${fmt.ms(cold.overviewRequest)} ms)`,
      )
      const runs: { firstNumbers: number; overviewRequest: number }[] = []
      for (let i = 0; i < options.loads; i++) runs.push(await load(context, origin, billed))
      const first = distribution(runs.map((r) => r.firstNumbers))
      const request = distribution(runs.map((r) => r.overviewRequest))
      console.log(
        `${options.loads} warm loads: navigation -> first overview numbers p50 ${fmt.ms(first.p50)} ms, p95 ${fmt.ms(first.p95)} ms, max ${fmt.ms(first.max)} ms`,
      )
      console.log(
        `  of which the overview GraphQL request (resource timing): p50 ${fmt.ms(request.p50)} ms, p95 ${fmt.ms(request.p95)} ms`,
      )
      console.log(
        `RESULT console-render events=${options.events} customers=${options.customers} fill_s=${(fill.ms / 1000).toFixed(1)} cold_ms=${fmt.ms(cold.firstNumbers)} p50_ms=${fmt.ms(first.p50)} p95_ms=${fmt.ms(first.p95)} overview_request_p50_ms=${fmt.ms(request.p50)} api_p50_ms=${fmt.ms(api.p50)}`,
      )
    } finally {
      await browser.close()
    }
  } finally {
    await stopApi()
    await bench.close()
  }
})

/** One load of the overview in a new tab: ms from navigation start to the Billed figure on screen. */
async function load(
  context: BrowserContext,
  origin: string,
  billed: string,
): Promise<{ firstNumbers: number; overviewRequest: number }> {
  const page = await context.newPage()
  try {
    await page.goto(`${origin}/console`, { waitUntil: 'commit' })
    // Checked on every animation frame, so the time is the frame that first showed the figure.
    const handle = await page.waitForFunction(
      () => {
        const text = document.querySelector('[data-testid=billed]')?.textContent ?? ''
        return /\d/.test(text) ? { at: performance.now(), text } : null
      },
      undefined,
      { polling: 'raf', timeout: 120_000 },
    )
    const { at, text } = (await handle.jsonValue()) as { at: number; text: string }
    if (text !== billed) throw new Error(`the overview shows billed ${text}, the API says ${billed}`)
    const overviewRequest = await page.evaluate(() => {
      const entries = performance
        .getEntriesByType('resource')
        .filter((e) => e.name.endsWith('/graphql') && e.startTime < performance.now())
      return Math.max(0, ...entries.map((e) => e.duration))
    })
    return { firstNumbers: at, overviewRequest }
  } finally {
    await page.close()
  }
}
