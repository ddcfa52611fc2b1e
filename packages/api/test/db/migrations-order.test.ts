import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createDatabase, migrateToLatest } from '../../src/db/database.ts'
import { migrations } from '../../src/db/migrations/index.ts'

describe('migrations', () => {
  it('a database that ran a later migration still takes an earlier one that arrived after it', async () => {
    const db = createDatabase({})
    try {
      await migrateToLatest(db)
      const names = Object.keys(migrations).sort()
      expect(names.length).toBeGreaterThan(2)
      // As if the second-to-last migration landed after the last had run here.
      const late = names.at(-2)!
      await migrations[late]!.down?.(db)
      await sql`delete from kysely_migration where name = ${late}`.execute(db)
      await migrateToLatest(db)
      const ran = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db)
      expect(ran.rows.map((r) => r.name)).toEqual(names)
    } finally {
      await db.destroy()
    }
  })
})
