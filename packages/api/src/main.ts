import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DataDirLockedError } from '@burnrate/catalog-sync'
import { createApp } from './app.ts'
import { countTenants } from './auth/repository.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { createLogger } from './logger.ts'
import { startTracing, tracingWanted } from './observability/tracing.ts'
import { openDatabase, systemClock } from './runtime.ts'
import { startServer } from './server.ts'
import { createRedisPubSub } from './subscriptions/redis.ts'
import { setupDemo } from './demo/index.ts'
import { consoleRoutes, ensureConsoleBuild } from './http/console-assets.ts'

function readConfig(): Config {
  try {
    return loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
  }
}

async function main() {
  const config = readConfig()
  const logger = createLogger(config.LOG_LEVEL)
  // OTEL_TRACES_EXPORTER=otlp / OTEL_EXPORTER_OTLP_ENDPOINT: spans of this API to an OTLP collector.
  const tracing = tracingWanted(config) ? startTracing(config) : null
  const db = await openDatabase(config, logger)
  // With REDIS_URL, live events (alerts, price changes) reach subscribers on every API process.
  const redis = config.REDIS_URL
    ? await createRedisPubSub(config.REDIS_URL, config.REDIS_CHANNEL_PREFIX, logger)
    : undefined
  const app = createApp({ db, clock: systemClock, config, logger, ...(redis ? { pubsub: redis.pubsub } : {}) })

  if (config.CATALOG_SYNC_ON_START) {
    const summary = await app.services.catalog.syncBundled()
    logger.info('price catalog loaded', { ...summary })
  }
  // Every process polls; a lease per source lets exactly one of them sync it at a time.
  app.services.catalog.startPolling()

  let devKey: string | undefined
  const devKeyFile = join(config.DATA_DIR, 'dev-tenant.json')
  if (config.DEV_TENANT) {
    if ((await countTenants(db)) === 0) {
      const created = await app.services.tenants.create({ name: 'Dev tenant' })
      devKey = created.apiKey
      // Dev convenience only: the embedded database's first tenant key is kept beside it so every start can print it.
      if (!config.DATABASE_URL) {
        writeFileSync(
          devKeyFile,
          JSON.stringify(
            { tenantId: created.tenant.id, apiKey: created.apiKey, signingSecret: created.signingSecret },
            null,
            2,
          ),
          { mode: 0o600 },
        )
      }
    } else if (!config.DATABASE_URL && existsSync(devKeyFile)) {
      devKey = (JSON.parse(readFileSync(devKeyFile, 'utf8')) as { apiKey: string }).apiKey
    }
  }

  // Dev only: the spend widget demo (/demo) for a demo customer of the dev tenant.
  const demo = config.DEV_TENANT && config.DEMO ? await setupDemo({ services: app.services, db, devKey, logger }) : null
  if (demo) app.routes.push(...demo.routes)
  // The operator console (packages/console) under /console; built here when missing or stale.
  ensureConsoleBuild(logger)
  app.routes.push(...consoleRoutes())

  // usage_events partitions: last month to three ahead, and any month that met only the DEFAULT partition.
  const maintainPartitions = () =>
    app.services.partitions.maintain().catch((error: unknown) => {
      logger.error('partition maintenance failed', { error: error instanceof Error ? error.message : String(error) })
      return []
    })
  await maintainPartitions()
  const partitionTimer = setInterval(() => void maintainPartitions(), 60 * 60 * 1000)
  partitionTimer.unref()

  // Credit grants past their expiry get their EXPIRY entry (each grant once; SKIP LOCKED keeps processes apart).
  const sweepCredits = () =>
    app.services.credits.sweepExpired().catch((error: unknown) => {
      logger.error('credit expiry sweep failed', { error: error instanceof Error ? error.message : String(error) })
      return 0
    })
  const creditTimer = setInterval(() => void sweepCredits(), 60 * 1000)
  creditTimer.unref()

  // The per-day rollups' pending deltas move into them (reads are exact either way; this keeps them fast).
  let compacting = false
  const compactDays = async () => {
    if (compacting) return
    compacting = true
    await app.services.overview.compactDayRollups().catch((error: unknown) => {
      logger.error('day rollup compaction failed', { error: error instanceof Error ? error.message : String(error) })
    })
    compacting = false
  }
  void compactDays()
  const compactTimer = setInterval(() => void compactDays(), 5 * 1000)
  compactTimer.unref()

  const running = await startServer(app, config, logger)
  // Every process delivers webhooks: attempts are claimed with FOR UPDATE SKIP LOCKED and a lease.
  if (config.WEBHOOK_WORKER) app.services.webhookDispatcher.start()
  // Safe in every process: pushers claim (customer, meter) groups with leases and SKIP LOCKED.
  if (config.STRIPE_PUSH_ENABLED && config.STRIPE_ENCRYPTION_KEY) app.services.stripePusher.start()
  // Every RECONCILE_INTERVAL: import provider usage reports, reconcile, alert (a claim per key keeps processes apart).
  app.services.reconciliation.start()
  // Export jobs (startUsageExport): claimed with a lease; a job whose process died is run again here.
  app.services.exportJobs.startWorker()
  // RETENTION_RAW_EVENTS_MONTHS: archive, verify and drop old partitions every RETENTION_INTERVAL (one process at a time).
  app.services.retentionSchedule.start()
  const lines = [
    '',
    `  Burnrate API   ${running.url}/graphql   (GraphiQL in a browser${config.GRAPHIQL ? '' : ': disabled'})`,
    `  Database       ${config.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `PGlite in ${join(config.DATA_DIR, 'pglite')}`}`,
    devKey ? `  Dev tenant key ${devKey}` : '  Tenant keys    create one with: npx pnpm@10 tenant:create --name "Acme"',
    `  Console        ${running.url}/console   (sign in with a tenant secret key${devKey ? ': the dev tenant key above' : ''})`,
    ...(demo
      ? [`  Widget demo    ${running.url}${demo.path}   (dev tenant, demo customer; DEMO=false to turn off)`]
      : []),
    '',
  ]
  console.log(lines.join('\n'))

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info('shutting down', { signal })
    clearInterval(partitionTimer)
    clearInterval(creditTimer)
    clearInterval(compactTimer)
    await running.close()
    // Single events still waiting in a group commit are written before the pool closes.
    await app.services.usage.drain()
    // Every gateway call has finished and been recorded: this process's budget leases are released.
    await app.services.budgetLeases?.close()
    await app.services.webhookDispatcher.stop()
    await redis?.close()
    await app.services.stripePusher.stop()
    await app.services.reconciliation.stop()
    await app.services.exportJobs.stop()
    await app.services.retentionSchedule.stop()
    await app.services.catalog.stopPolling()
    await db.destroy()
    await tracing?.shutdown()
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

main().catch((error: unknown) => {
  if (error instanceof DataDirLockedError) {
    // Another process (a catalog-sync run, tenant:create) has the embedded database open; PGlite allows one at a time.
    console.error(
      `Cannot start: ${error.message}. Wait for it to finish (or stop it) and start again; to run several processes at once, use PostgreSQL (DATABASE_URL).`,
    )
  } else {
    console.error(error)
  }
  process.exit(1)
})
