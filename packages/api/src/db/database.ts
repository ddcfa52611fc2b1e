import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { acquireDataDirLock } from '@burnrate/catalog-sync'
import { Kysely, PGliteDialect, PostgresDialect, type Driver, type KyselyPlugin, type Transaction } from 'kysely'
import { Migrator } from 'kysely/migration'
import pg from 'pg'
import { migrations } from './migrations/index.ts'
import type { DB } from './types.ts'

export type Db = Kysely<DB>
/** What repository functions take first: the database or a transaction on it. */
export type Executor = Kysely<DB> | Transaction<DB>
/** A transaction a service opened for its use case and passes down to repositories. */
export type Tx = Transaction<DB>

export interface DatabaseOptions {
  /** postgres://… for PostgreSQL; absent for embedded PGlite. */
  databaseUrl?: string | undefined
  /** PGlite data directory; absent means in memory. */
  pgliteDataDir?: string | undefined
  /** An open PGlite to use instead (tests start each database from a migrated data-dir dump). */
  pglite?: PGlite
  /** Who holds the data dir's lock while it is open, named to whoever else tries: "the Burnrate API". */
  lockHolder?: string
  poolSize?: number
  onIdleClientError?: (error: Error) => void
}

const INT8_OID = 20

/**
 * Opens Kysely on PostgreSQL (pg) or on embedded PGlite. Both parse NUMERIC as exact strings and
 * int8 as numbers, so the rest of the code never sees which one it runs on.
 */
export function createDatabase(options: DatabaseOptions): Db {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID
            ? (value: string) => Number(value)
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    })
    // An idle client that loses its connection (a server restart, a terminated backend) emits
    // 'error' on the pool; unheard, it would crash the process. The pool replaces the client.
    pool.on('error', (error) => options.onIdleClientError?.(error))
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
    poolStats.set(db, () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolSize ?? 10,
    }))
    return db
  }
  if (options.pglite) return new Kysely<DB>({ dialect: new PGliteDialect({ pglite: options.pglite }) })
  if (!options.pgliteDataDir) return new Kysely<DB>({ dialect: new PGliteDialect({ pglite: new PGlite() }) })
  // PGlite is single-writer: the data dir is locked for as long as it is open (throws DataDirLockedError when held).
  const lock = acquireDataDirLock(options.pgliteDataDir, options.lockHolder ?? `process ${process.pid}`)
  try {
    mkdirSync(options.pgliteDataDir, { recursive: true })
    return new Kysely<DB>({
      dialect: new LockedPGliteDialect({ pglite: new PGlite(options.pgliteDataDir) }, lock.release),
    })
  } catch (error) {
    lock.release()
    throw error
  }
}

/** PGlite on a data dir whose lock is released once the database is closed (db.destroy()). */
class LockedPGliteDialect extends PGliteDialect {
  constructor(
    config: ConstructorParameters<typeof PGliteDialect>[0],
    private readonly release: () => void,
  ) {
    super(config)
  }

  override createDriver(): Driver {
    const driver = super.createDriver()
    const destroy = driver.destroy.bind(driver)
    driver.destroy = async () => {
      try {
        await destroy()
      } finally {
        this.release()
      }
    }
    return driver
  }
}

/** Migrations this build has that the database has not run (empty: current). Throws when the database is unreachable. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name)
}

/** Connections of a PostgreSQL pool (absent for PGlite, which has one connection). */
export interface PoolStats {
  total: number
  idle: number
  waiting: number
  max: number
}
const poolStats = new WeakMap<Db, () => PoolStats>()
export const poolStatsOf = (db: Db): PoolStats | null => poolStats.get(db)?.() ?? null

/** `db.withPlugin(…)` is a new Kysely over the same pool: its pool stats are `db`'s. */
export function withPlugin(db: Db, plugin: KyselyPlugin): Db {
  const plugged = db.withPlugin(plugin)
  const stats = poolStats.get(db)
  if (stats) poolStats.set(plugged, stats)
  return plugged
}

export async function migrateToLatest(db: Db): Promise<void> {
  // Migrations written on parallel branches land in any order; a database that already ran a later
  // one must still take an earlier one that arrived after it (each migration is independent).
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    allowUnorderedMigrations: true,
  })
  const { error, results } = await migrator.migrateToLatest()
  const failed = results?.find((r) => r.status === 'Error')
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error })
  }
}
