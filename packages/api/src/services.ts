import { createTenantService, type TenantService } from './auth/service.ts'
import { createCatalogService } from './catalog/service.ts'
import type { CatalogService } from './catalog/types.ts'
import type { Clock } from './clock.ts'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'
import type { Logger } from './logger.ts'
import { createBurnratePubSub, type BurnratePubSub } from './pubsub.ts'
import { createUsageService, type UsageService } from './usage/service.ts'
import { createWidgetSessionService, type WidgetSessionService } from './widget-sessions/service.ts'

/** Everything a request may use, built once per app from injected dependencies. */
export interface Services {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  pubsub: BurnratePubSub
  tenants: TenantService
  catalog: CatalogService
  usage: UsageService
  widgetSessions: WidgetSessionService
}

export interface Dependencies {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
  /** Defaults to an in-process pubsub. */
  pubsub?: BurnratePubSub
}

export function createServices(deps: Dependencies): Services {
  const catalog = createCatalogService(deps)
  return {
    ...deps,
    pubsub: deps.pubsub ?? createBurnratePubSub(),
    tenants: createTenantService(deps),
    catalog,
    usage: createUsageService({ ...deps, catalog }),
    widgetSessions: createWidgetSessionService(deps),
  }
}
