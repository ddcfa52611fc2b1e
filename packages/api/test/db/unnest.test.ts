import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { columnList, unnestRows } from '../../src/db/unnest.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

// unnestRows sends each column as one JSON array taken apart in SQL (jsonb columns as their JSON
// texts spliced into one array): every awkward value must come back exactly as it went in, in row
// order, on PGlite and on PostgreSQL.

let t: TestDatabase
beforeAll(async () => {
  t = await createTestDatabase()
  await sql`create table unnest_probe (n int, s text, i int8, d numeric, at timestamptz, j jsonb, b bool)`.execute(t.db)
})
afterAll(() => t.destroy())

const AWKWARD = [
  '',
  ' ',
  'NULL',
  'null',
  'a,b',
  '{x}',
  '"quoted"',
  'back\\slash',
  'ends with \\ud800 as text',
  '\\u0041',
  '\\"',
  'tab\there',
  'new\nline',
  "it's",
  'ünï©ødé 💸',
  '  padded  ',
  ')(',
  '\\',
]

describe('unnestRows', () => {
  it('round-trips text, int8, numeric, timestamptz, jsonb and bool values, nulls included', async () => {
    const rows = AWKWARD.map((s, n) => ({
      n,
      s,
      i: n % 3 === 0 ? null : Number.MAX_SAFE_INTEGER - n,
      d: n % 4 === 0 ? null : `-${n}.000000000000000001`,
      at: n % 5 === 0 ? null : new Date(Date.UTC(2026, 10, 23, 12, 0, 0, n)),
      j: n % 2 ? JSON.stringify({ s, list: [s, null], n }) : null,
      b: n % 2 === 0,
    }))
    const types = { n: 'int8', s: 'text', i: 'int8', d: 'numeric', at: 'timestamptz', j: 'jsonb', b: 'bool' } as const
    await sql`insert into unnest_probe ${columnList(types)} ${unnestRows(rows, types)}`.execute(t.db)
    const back = await sql<{
      n: number
      s: string
      i: string | number | null
      d: string | null
      at: Date | null
      j: unknown
      b: boolean
    }>`select * from unnest_probe order by n`.execute(t.db)
    expect(
      back.rows.map((r) => ({
        ...r,
        i: r.i === null ? null : Number(r.i),
        at: r.at === null ? null : new Date(r.at).toISOString(),
      })),
    ).toEqual(rows.map((r) => ({ ...r, at: r.at?.toISOString() ?? null, j: r.j === null ? null : JSON.parse(r.j) })))
  })

  it('a null text is NULL, the string "NULL" is text', async () => {
    const types = { n: 'int8', s: 'text' } as const
    await sql`insert into unnest_probe ${columnList(types)} ${unnestRows(
      [
        { n: 100, s: null },
        { n: 101, s: 'NULL' },
      ],
      types,
    )}`.execute(t.db)
    const back = await sql<{
      n: number
      s: string | null
    }>`select n, s from unnest_probe where n >= 100 order by n`.execute(t.db)
    expect(back.rows.map((r) => [Number(r.n), r.s])).toEqual([
      [100, null],
      [101, 'NULL'],
    ])
  })

  it('keeps row order over a thousand rows, and JSON null, [] and strings in jsonb columns', async () => {
    const types = { n: 'int8', s: 'text', d: 'numeric', j: 'jsonb' } as const
    const rows = Array.from({ length: 1000 }, (_, k) => ({
      n: 1000 + k,
      s: `row ${k} "${'\\'.repeat(k % 3)}"`,
      d: `${k}.${String(k).padStart(20, '0')}`,
      j: [null, '[]', '"a string"', '{"k":[1,{"deep":null}]}', '0.10'][k % 5] ?? null,
    }))
    await sql`insert into unnest_probe ${columnList(types)} ${unnestRows(rows, types)}`.execute(t.db)
    const back = await sql<{ n: string | number; s: string; d: string; j: unknown }>`
      select n, s, d, j from unnest_probe where n >= 1000 order by n`.execute(t.db)
    expect(back.rows.map((r) => ({ ...r, n: Number(r.n) }))).toEqual(
      rows.map((r) => ({ ...r, j: r.j === null ? null : JSON.parse(r.j) })),
    )
  })

  it('a lone surrogate in text is stored as U+FFFD (as pg sends it), not refused', async () => {
    const types = { n: 'int8', s: 'text' } as const
    await sql`insert into unnest_probe ${columnList(types)} ${unnestRows(
      [
        { n: 200, s: 'a\ud800b' },
        { n: 201, s: 'pair 💸 \udc00' },
      ],
      types,
    )}`.execute(t.db)
    const back = await sql<{ s: string }>`select s from unnest_probe where n in (200, 201) order by n`.execute(t.db)
    expect(back.rows.map((r) => r.s)).toEqual(['a\ufffdb', 'pair 💸 \ufffd'])
  })
})
