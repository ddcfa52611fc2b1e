import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { HttpRoute } from '../shared/http-route.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import { Decimal } from '../money/decimal.ts'
import * as tenantRepo from '../auth/repository.ts'
import * as pricingRepo from '../pricing/repository.ts'
import type { Services } from '../services.ts'
import { demoPage } from './page.ts'
import { backfillEvents, DEMO_CUSTOMER, syntheticEvent } from './seed.ts'

/**
 * The dev-only demo: a small SaaS page at /demo embedding <burnrate-spend> for a demo customer of
 * the dev tenant, with synthetic usage, a budget and a session endpoint that mints widget tokens
 * for that customer only. Mounted only when DEV_TENANT is on (main.ts); never in production.
 */

const WIDGET_ROOT = fileURLToPath(new URL('../../../widget/', import.meta.url))
const WIDGET_BUNDLE = `${WIDGET_ROOT}dist/burnrate-spend.js`

export interface Demo {
  routes: HttpRoute[]
  path: string
}

/** The dev tenant: from its key when main.ts knows it, else the oldest tenant named "Dev tenant". */
async function devTenantOf(services: Services, db: Db, devKey: string | undefined): Promise<Tenant | undefined> {
  if (devKey) return (await services.tenants.authenticate(devKey)) ?? undefined
  return tenantRepo.findOldestTenantNamed(db, 'Dev tenant')
}

/** Builds the widget bundle when it is missing or older than its sources (quick when it is fresh). */
function ensureWidgetBundle(logger: Logger): void {
  const script = `${WIDGET_ROOT}scripts/build-if-needed.mjs`
  if (!existsSync(script)) return
  const result = spawnSync(process.execPath, [script], { cwd: WIDGET_ROOT, encoding: 'utf8' })
  if (!existsSync(WIDGET_BUNDLE))
    logger.warn('widget bundle missing: the demo page will say so', {
      output: `${result.stdout}${result.stderr}`.slice(-2000),
    })
}

/** Seeds the demo customer (plan, credits, usage, budget); idempotent per month. Exported for its test. */
export async function seedDemo(services: Services, db: Db, tenant: Tenant): Promise<void> {
  const now = services.clock.now()
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
  // Backfilled events are billed with a 30 % markup, so "explain this charge" has one to show.
  const plans = await pricingRepo.plansFor(db, tenant.id, DEMO_CUSTOMER.id)
  if (!plans.some((p) => p.customer_id === DEMO_CUSTOMER.id)) {
    await pricingRepo.insertPlan(db, {
      tenantId: tenant.id,
      customerId: DEMO_CUSTOMER.id,
      kind: 'MARKUP',
      percent: '30',
      effectiveFrom: new Date(monthStart.getTime() - 86_400_000),
    })
  }
  // A rating plan over the markup, from the same start (set once): the first 1M input tokens of the
  // month free, output in graduated tiers ($12 per 1M up to 200,000, then $9), the rest at the 30 %
  // markup; the widget and the invoice preview show the allowance used and the current tier.
  if ((await services.rating.planHistory(tenant.id, DEMO_CUSTOMER.id)).every((p) => p.version === 0))
    await services.rating.setPlan(tenant, {
      customerId: DEMO_CUSTOMER.id,
      effectiveFrom: new Date(monthStart.getTime() - 86_400_000),
      retroactive: true,
      rules: [
        { id: 'free-input', type: 'TOKEN_ALLOWANCE', model: '*', usageType: 'input', quantity: '1000000' },
        {
          id: 'output-tiers',
          type: 'TOKEN_TIERS',
          model: '*',
          usageType: 'output',
          mode: 'GRADUATED',
          tiers: [
            { upTo: '200000', unitPrice: '12' },
            { upTo: null, unitPrice: '9' },
          ],
        },
        { id: 'markup', type: 'COST_BASED', kind: 'MARKUP', percent: '30' },
      ],
    })
  // A $25 prepaid credit grant for the month (once per month, by its key), drawn by the usage below,
  // with a low-balance alert at $5; the widget shows the balance and its top-up link.
  const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1))
  await services.credits.grantCredits(tenant, {
    customerId: DEMO_CUSTOMER.id,
    amount: '25',
    category: 'PROMOTIONAL',
    expiresAt: nextMonth,
    lowBalanceThreshold: '5',
    description: 'Demo: monthly starter credits',
    idempotencyKey: `demo-credits-${monthStart.toISOString().slice(0, 7)}`,
  })
  if ((await services.credits.balance(tenant, DEMO_CUSTOMER.id)).topUpUrl === null)
    await services.credits.setTopUpUrl(tenant, 'https://example.com/billing/credits')
  const events = backfillEvents(monthStart, now)
  const results = events.length ? await services.usage.record(tenant, events) : []
  const budgets = await services.budgets.budgets(tenant, DEMO_CUSTOMER.id)
  if (!budgets.some((b) => b.row.period === 'MONTH')) {
    // A limit the month's pace reaches about 70 % of by now (at least $5): the 50 % alert is due.
    const spent = results.reduce((sum, r) => sum.plus(r.event?.amount ?? 0), new Decimal(0))
    const elapsed = Math.max((now.getTime() - monthStart.getTime()) / (30 * 86_400_000), 0.05)
    const limit = Decimal.max(5, spent.div(Math.min(elapsed, 1)).mul(1.1).div(5).ceil().mul(5))
    await services.budgets.setBudget(tenant, {
      customerId: DEMO_CUSTOMER.id,
      period: 'MONTH',
      limit: limit.toFixed(),
      thresholds: [50, 80, 100],
    })
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra })
  res.end(body)
}

export async function setupDemo({
  services,
  db,
  devKey,
  logger,
}: {
  services: Services
  db: Db
  devKey: string | undefined
  logger: Logger
}): Promise<Demo | null> {
  const tenant = await devTenantOf(services, db, devKey)
  if (!tenant) return null
  ensureWidgetBundle(logger)
  await seedDemo(services, db, tenant).catch((error: unknown) =>
    logger.warn('demo data could not be seeded', { error: String(error) }),
  )

  let burst = 0
  const routes: HttpRoute[] = [
    {
      method: 'GET',
      path: '/demo',
      handle: (_req, res) =>
        send(res, 200, 'text/html; charset=utf-8', demoPage({ bundleReady: existsSync(WIDGET_BUNDLE) })),
    },
    {
      method: 'GET',
      path: '/demo/burnrate-spend.js',
      handle: (_req, res) => {
        if (!existsSync(WIDGET_BUNDLE))
          return send(
            res,
            404,
            'text/plain',
            'The widget bundle is not built: npx pnpm@10 --filter @burnrate/widget build',
          )
        send(res, 200, 'text/javascript; charset=utf-8', readFileSync(WIDGET_BUNDLE))
      },
    },
    {
      // What a tenant's backend does: check its own user's session, then createWidgetSession with
      // its secret key. Here: always the demo customer (dev only). ?ttl=60..86400 for tests.
      method: 'POST',
      path: '/demo/session',
      handle: async (req, res) => {
        const ttl = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ttl') ?? 900)
        try {
          const session = await services.widgetSessions.create(tenant, {
            customerId: DEMO_CUSTOMER.id,
            ttlSeconds: ttl,
          })
          send(
            res,
            200,
            'application/json',
            JSON.stringify({
              token: session.token,
              customerId: session.customerId,
              expiresAt: session.expiresAt.toISOString(),
            }),
          )
        } catch (error) {
          send(
            res,
            400,
            'application/json',
            JSON.stringify({ error: error instanceof Error ? error.message : String(error) }),
          )
        }
      },
    },
    {
      // "Simulate usage" on the demo page: a few calls now (?scale=20 for one large run).
      method: 'POST',
      path: '/demo/usage',
      handle: async (req, res) => {
        const scale = Math.min(
          Math.max(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('scale') ?? 1) || 1, 0.1),
          200,
        )
        const seed = randomBytes(4).readUInt32LE()
        let s = seed
        const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296
        const now = services.clock.now()
        const events = Array.from({ length: scale > 1 ? 1 : 3 }, (_, i) =>
          syntheticEvent(`live-${now.getTime()}-${seed}-${burst++}-${i}`, now, rand, scale),
        )
        const results = await services.usage.record(tenant, events)
        const amount = results.reduce((sum, r) => sum.plus(r.event?.amount ?? 0), new Decimal(0))
        send(
          res,
          200,
          'application/json',
          JSON.stringify({ recorded: results.filter((r) => r.status === 'RECORDED').length, amount: amount.toFixed() }),
        )
      },
    },
  ]
  return { routes, path: '/demo' }
}
