import { sql, type RawBuilder } from 'kysely'

export type PgType = 'text' | 'int8' | 'numeric' | 'timestamptz' | 'jsonb' | 'bool'

/**
 * `select * from unnest($1::text[], $2::int8[], …) as v(col, …)` for a batch of rows: one bind
 * parameter per column instead of one per value. A 500-row insert then costs a 26-parameter
 * statement to build and plan, not a 13,000-parameter one — the difference is most of the
 * ingest path's SQL cost. Columns are taken from `types`; rows must have values (or null) for each.
 * `valueOf` reads a column's value from a row (default: the row's property of that name).
 */
export function unnestRows<Row extends object>(
  rows: readonly Row[],
  types: Readonly<Partial<Record<string, PgType>>>,
  valueOf: (row: Row, column: string) => unknown = (row, column) => (row as Record<string, unknown>)[column],
): RawBuilder<unknown> {
  const columns = Object.keys(types)
  const arrays = columns.map((column) => {
    const type = types[column]!
    const values = rows.map((row) => {
      const value = valueOf(row, column)
      if (value === undefined || value === null) return null
      if (value instanceof Date) return value.toISOString()
      return value
    })
    return sql`${values}::${sql.raw(type)}[]`
  })
  return sql`select * from unnest(${sql.join(arrays)}) as v(${sql.join(columns.map((c) => sql.ref(c)))})`
}

export function columnList(types: Readonly<Record<string, PgType>>): RawBuilder<unknown> {
  return sql`(${sql.join(Object.keys(types).map((c) => sql.ref(c)))})`
}
