import { join } from 'node:path'
import { systemClock } from './clock.ts'
import type { Config } from './config.ts'
import { createDatabase, migrateToLatest, type Db } from './db/database.ts'
import type { Logger } from './logger.ts'

/** The database the config names, migrated: PostgreSQL with DATABASE_URL, else PGlite under DATA_DIR. */
export async function openDatabase(config: Config, logger?: Logger): Promise<Db> {
  const db = createDatabase({
    onIdleClientError: (error) => logger?.warn('database connection lost; the pool will reconnect', { error: error.message }),
    databaseUrl: config.DATABASE_URL,
    pgliteDataDir: config.DATABASE_URL ? undefined : join(config.DATA_DIR, 'pglite'),
    poolSize: config.DB_POOL_SIZE,
  })
  await migrateToLatest(db)
  return db
}

export { systemClock }
