import { join } from 'node:path'
import { API_LOCK_HOLDER } from '@burnrate/catalog-sync'
import { systemClock } from './clock.ts'
import type { Config } from './config.ts'
import { createDatabase, migrateToLatest, type Db } from './db/database.ts'
import type { Logger } from './logger.ts'

/**
 * The database the config names, migrated: PostgreSQL with DATABASE_URL, else PGlite under DATA_DIR,
 * locked for this process until db.destroy() (DataDirLockedError while another process has it open).
 */
export async function openDatabase(config: Config, logger?: Logger, lockHolder = API_LOCK_HOLDER): Promise<Db> {
  const db = createDatabase({
    lockHolder,
    onIdleClientError: (error) =>
      logger?.warn('database connection lost; the pool will reconnect', { error: error.message }),
    databaseUrl: config.DATABASE_URL,
    pgliteDataDir: config.DATABASE_URL ? undefined : join(config.DATA_DIR, 'pglite'),
    poolSize: config.DB_POOL_SIZE,
  })
  try {
    await migrateToLatest(db)
  } catch (error) {
    await db.destroy()
    throw error
  }
  return db
}

export { systemClock }
