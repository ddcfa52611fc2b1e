import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CITUS_TABLES, KNOWN_CITUS_VIOLATIONS } from '../../src/ledger/citus.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

/**
 * The schema is ready to be distributed by tenant with Citus (docs/scaling.md): read from the
 * PostgreSQL catalog of a migrated database, every table is declared in src/ledger/citus.ts as
 * distributed by tenant, a reference table or local; every primary key and unique constraint of a
 * distributed table includes its tenant column; no foreign key crosses tenants (a foreign key of
 * a distributed table either points at a reference table or carries the tenant column to the
 * other table's tenant column); a reference table never points at a distributed one.
 */
describe('Citus readiness of the schema', () => {
  let database: TestDatabase
  const found: string[] = []
  /** Fails on a violation not in KNOWN_CITUS_VIOLATIONS (the list of today's debt only shrinks). */
  const expectOnlyKnown = (problems: string[]) => {
    found.push(...problems)
    expect(problems.filter((p) => !KNOWN_CITUS_VIOLATIONS.includes(p))).toEqual([])
  }
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  async function tables(): Promise<string[]> {
    const rows = await sql<{ name: string }>`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition
      order by 1`.execute(database.db)
    return rows.rows.map((r) => r.name)
  }

  it('declares every table: distributed by tenant, reference or local', async () => {
    const undeclared = (await tables()).filter((t) => !(t in CITUS_TABLES))
    expect(undeclared, 'tables missing from src/ledger/citus.ts').toEqual([])
  })

  it('every distributed table has its tenant column, and it is in every primary key and unique constraint', async () => {
    const problems: string[] = []
    const constraints = await sql<{ table: string; name: string; columns: string[] }>`
      select c.conrelid::regclass::text as table, c.conname as name,
        array(select a.attname::text from unnest(c.conkey) k join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k) as columns
      from pg_constraint c join pg_class t on t.oid = c.conrelid
      where c.contype in ('p', 'u') and not t.relispartition and t.relnamespace = current_schema()::regnamespace`.execute(
      database.db,
    )
    const uniqueIndexes = await sql<{ table: string; name: string; columns: string[] }>`
      select x.indrelid::regclass::text as table, i.relname as name,
        array(select a.attname::text from unnest(x.indkey) k join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k) as columns
      from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
      where x.indisunique and not t.relispartition and t.relnamespace = current_schema()::regnamespace
        and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)`.execute(database.db)
    const columns = await sql<{ table: string; column: string }>`
      select table_name as table, column_name as column from information_schema.columns where table_schema = current_schema()`.execute(
      database.db,
    )
    for (const [table, kind] of Object.entries(CITUS_TABLES)) {
      if (kind.type !== 'distributed') continue
      if (!columns.rows.some((c) => c.table === table && c.column === kind.column))
        problems.push(`${table}: no column ${kind.column}`)
    }
    for (const c of [...constraints.rows, ...uniqueIndexes.rows]) {
      const kind = CITUS_TABLES[c.table]
      if (kind?.type !== 'distributed') continue
      if (!c.columns.includes(kind.column))
        problems.push(`${c.table}.${c.name} (${c.columns.join(', ')}) lacks ${kind.column}`)
    }
    expectOnlyKnown(problems)
  })

  it('no foreign key crosses tenants, and reference tables never point at tenant data', async () => {
    const foreignKeys = await sql<{
      name: string
      from: string
      to: string
      fromColumns: string[]
      toColumns: string[]
    }>`
      select c.conname as name, c.conrelid::regclass::text as from, c.confrelid::regclass::text as to,
        array(select a.attname::text from unnest(c.conkey) with ordinality k(n, o) join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.o) as "fromColumns",
        array(select a.attname::text from unnest(c.confkey) with ordinality k(n, o) join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.o) as "toColumns"
      from pg_constraint c join pg_class t on t.oid = c.conrelid
      where c.contype = 'f' and not t.relispartition and c.conparentid = 0
        and t.relnamespace = current_schema()::regnamespace`.execute(database.db)
    const problems: string[] = []
    for (const fk of foreignKeys.rows) {
      const from = CITUS_TABLES[fk.from]
      const to = CITUS_TABLES[fk.to]
      if (!from || !to) continue // the first test names them
      if (to.type === 'reference') continue
      if (from.type !== 'distributed') {
        problems.push(`${fk.from}.${fk.name}: a ${from.type} table points at distributed ${fk.to}`)
        continue
      }
      if (to.type !== 'distributed') {
        problems.push(`${fk.from}.${fk.name}: points at local table ${fk.to}`)
        continue
      }
      const at = fk.fromColumns.indexOf(from.column)
      if (at < 0 || fk.toColumns[at] !== to.column)
        problems.push(
          `${fk.from}.${fk.name} (${fk.fromColumns.join(', ')}) -> ${fk.to} (${fk.toColumns.join(', ')}) does not carry the tenant`,
        )
    }
    expectOnlyKnown(problems)
  })

  it('every known violation still occurs (fixed ones leave the list)', () => {
    expect(KNOWN_CITUS_VIOLATIONS.filter((p) => !found.includes(p))).toEqual([])
  })

  it('the check itself fails on a table that breaks the rules', async () => {
    await sql`create table citus_probe (tenant_id text not null, id text primary key)`.execute(database.db)
    try {
      const undeclared = (await tables()).filter((t) => !(t in CITUS_TABLES))
      expect(undeclared).toEqual(['citus_probe'])
    } finally {
      await sql`drop table citus_probe`.execute(database.db)
    }
  })
})
