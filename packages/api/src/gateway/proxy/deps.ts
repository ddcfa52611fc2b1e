/** What the metering gateway's routes are built from (app.ts passes it). */
import type { TenantService } from '../../auth/service.ts'
import type { CatalogService } from '../../catalog/types.ts'
import type { Clock } from '../../clock.ts'
import type { Config } from '../../config.ts'
import type { Db } from '../../db/database.ts'
import type { Logger } from '../../logger.ts'
import type { RatingService } from '../../rating/service.ts'
import type { SingleIngest } from '../../usage/group-commit.ts'
import type { BudgetGate } from '../budget-hold.ts'
import type { BudgetLeases } from '../budget-leases.ts'
import type { GatewayService } from '../service.ts'

export interface GatewayDeps {
  db: Db
  config: Config
  clock: Clock
  /** Prices a call's worst case under a hard budget (the catalog ingest prices with). */
  catalog: CatalogService
  logger: Logger
  tenants: TenantService
  /** Each call's usage goes through the same group commit as single recordUsage calls. */
  usage: Pick<SingleIngest, 'recordOne'>
  gateway: GatewayService
  /** The customer's rating plan and its period meters: a call's worst case is rated as ingest will rate it. */
  rating: Pick<RatingService, 'book' | 'meters'>
  /**
   * Hard budgets: a call's worst-case cost is reserved before it goes out and settled by its
   * recorded usage. Structural, so the gateway works with or without the budgets service wired in.
   */
  budgets?: BudgetGate
  /** This process's hard-budget leases (services.budgetLeases); null: each call reserved alone. */
  budgetLeases?: BudgetLeases | null
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch
}
