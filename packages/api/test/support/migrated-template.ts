/**
 * Vitest global setup: migrate one database for the whole run and let every test file start from a
 * copy of it, instead of running every migration again per file (on a loaded 2-core machine that was
 * tens of seconds per file on PGlite, a few on PostgreSQL).
 *
 * - PGlite: a migrated data dir, and its dump in a file; createTestDatabase starts an in-memory PGlite
 *   from the dump (which also skips PGlite's initdb), copyMigratedDataDir copies the directory for
 *   an API process the test starts on PGlite.
 * - PostgreSQL: a migrated template database; createTestDatabase runs `create database … template`.
 *
 * createTestDatabase still runs migrateToLatest on the copy: nothing to do, unless a test file runs
 * on a copy older than its own migrations.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { sql } from 'kysely'
import type { TestProject } from 'vitest/node'
import { createDatabase, migrateToLatest } from '../../src/db/database.ts'

/** Migrates PGlite in `dataDir` (closed afterwards, so it can be copied) and writes its dump to `dumpPath`. */
async function migratePglite(dataDir: string, dumpPath: string): Promise<void> {
  const pglite = new PGlite(dataDir)
  const db = createDatabase({ pglite })
  try {
    await migrateToLatest(db)
    const dump = await pglite.dumpDataDir('none')
    await writeFile(dumpPath, Buffer.from(await dump.arrayBuffer()))
  } finally {
    await db.destroy()
  }
}

async function createMigratedTemplate(serverUrl: string): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = `burnrate_template_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = createDatabase({ databaseUrl: serverUrl, poolSize: 1 })
  await sql.raw(`create database ${name}`).execute(admin)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  const db = createDatabase({ databaseUrl: url.toString(), poolSize: 1 })
  try {
    await migrateToLatest(db)
  } finally {
    // A template must have no connection open while it is copied.
    await db.destroy()
  }
  return {
    name,
    drop: async () => {
      await sql.raw(`drop database if exists ${name} with (force)`).execute(admin)
      await admin.destroy()
    },
  }
}

export default async function setup(project: TestProject) {
  const serverUrl = process.env.DATABASE_URL
  if (serverUrl) {
    const template = await createMigratedTemplate(serverUrl)
    project.provide('migratedTemplate', { postgresTemplate: template.name })
    return template.drop
  }
  const root = await mkdtemp(join(tmpdir(), 'burnrate-test-template-'))
  const pgliteDataDir = join(root, 'pglite')
  const pgliteDump = join(root, 'pglite.tar')
  await migratePglite(pgliteDataDir, pgliteDump)
  project.provide('migratedTemplate', { pgliteDump, pgliteDataDir })
  return () => rm(root, { recursive: true, force: true })
}
