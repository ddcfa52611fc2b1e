import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { createDatabase, migrateToLatest, type Db } from '../../src/db/database.ts'

export interface TestDatabase {
  db: Db
  /** The database's own URL when on PostgreSQL (for spawning API processes against it). */
  url: string | undefined
  destroy(): Promise<void>
}

/**
 * A fresh, migrated database for one test file: a new PostgreSQL database on the server of
 * DATABASE_URL when it is set (dropped afterwards), an in-memory PGlite otherwise.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    const db = createDatabase({})
    await migrateToLatest(db)
    return { db, url: undefined, destroy: () => db.destroy() }
  }
  const name = `burnrate_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = createDatabase({ databaseUrl: serverUrl, poolSize: 1 })
  await sql.raw(`create database ${name}`).execute(admin)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const db = createDatabase({ databaseUrl: url.toString(), poolSize: 10 })
  await migrateToLatest(db)
  return {
    db,
    url: url.toString(),
    destroy: async () => {
      await db.destroy()
      await sql.raw(`drop database if exists ${name} with (force)`).execute(admin)
      await admin.destroy()
    },
  }
}
