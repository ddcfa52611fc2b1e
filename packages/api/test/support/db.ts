import { randomBytes } from 'node:crypto'
import { cp, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { sql } from 'kysely'
import { inject } from 'vitest'
import { createDatabase, migrateToLatest, type Db } from '../../src/db/database.ts'

export interface TestDatabase {
  db: Db
  /** The database's own URL when on PostgreSQL (for spawning API processes against it). */
  url: string | undefined
  destroy(): Promise<void>
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** What the global setup in migrated-template.ts migrated once for the run. */
    migratedTemplate: MigratedTemplate
  }
}

interface MigratedTemplate {
  /** A migrated PGlite's dumpDataDir() output. */
  pgliteDump?: string
  /** The same migrated PGlite as a closed data directory. */
  pgliteDataDir?: string
  /** A migrated PostgreSQL database to copy with `create database … template`. */
  postgresTemplate?: string
}

/** The run's migrated copy source; none when a file runs outside the configured global setup. */
function migratedTemplate(): MigratedTemplate {
  try {
    return inject('migratedTemplate') ?? {}
  } catch {
    return {}
  }
}

async function freshPglite(): Promise<Db> {
  const { pgliteDump } = migratedTemplate()
  if (!pgliteDump) return createDatabase({})
  const pglite = new PGlite({ loadDataDir: new Blob([await readFile(pgliteDump)]) })
  return createDatabase({ pglite })
}

/**
 * For an API process a test starts on PGlite with DATA_DIR=`dataDir`: puts a copy of the run's
 * migrated data dir where it will look (`<dataDir>/pglite`), so it starts without migrating. Without
 * a template (a file run outside the global setup) it does nothing and the process migrates itself.
 */
export async function copyMigratedDataDir(dataDir: string): Promise<void> {
  const { pgliteDataDir } = migratedTemplate()
  if (pgliteDataDir) await cp(pgliteDataDir, join(dataDir, 'pglite'), { recursive: true })
}

/**
 * A fresh, migrated database for one test file: a new PostgreSQL database on the server of
 * DATABASE_URL when it is set (dropped afterwards), an in-memory PGlite otherwise — each a copy of
 * the run's migrated template when there is one (see migrated-template.ts).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL
  if (!serverUrl) {
    const db = await freshPglite()
    await migrateToLatest(db)
    return { db, url: undefined, destroy: () => db.destroy() }
  }
  const name = `burnrate_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = createDatabase({ databaseUrl: serverUrl, poolSize: 1 })
  const { postgresTemplate } = migratedTemplate()
  await sql.raw(`create database ${name}${postgresTemplate ? ` template ${postgresTemplate}` : ''}`).execute(admin)
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
