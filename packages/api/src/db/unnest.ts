import { sql, type RawBuilder } from 'kysely'

export type PgType = 'text' | 'int8' | 'numeric' | 'timestamptz' | 'jsonb' | 'bool'

/**
 * `select * from unnest(<text[]>, <int8[]>, …) as v(col, …)` for a batch of rows: one bind
 * parameter per column instead of one per value. A 500-row insert then costs a 26-parameter
 * statement to build and plan, not a 13,000-parameter one — the difference is most of the
 * ingest path's SQL cost. Columns are taken from `types`; rows must have values (or null) for each.
 * Each column travels as one JSON array (typedArray, jsonbArray), which node serializes natively:
 * pg's own array serialization escapes element by element in JavaScript, and was ≈ 20 µs of the
 * API's CPU per ingested event (measured: 43 → 23 µs/event for the events statement's node side,
 * PostgreSQL's side within +5 %).
 * `valueOf` reads a column's value from a row (default: the row's property of that name); a
 * `jsonb` column's value is its JSON text (or null), see jsonbArray.
 */
export function unnestRows<Row extends object>(
  rows: readonly Row[],
  types: Readonly<Partial<Record<string, PgType>>>,
  valueOf: (row: Row, column: string) => unknown = (row, column) => (row as Record<string, unknown>)[column],
): RawBuilder<unknown> {
  const columns = Object.keys(types)
  const arrays = columns.map((column) => {
    const type = types[column]!
    if (type === 'jsonb') return jsonbArray(rows.map((row) => valueOf(row, column) as string | null | undefined))
    const values = rows.map((row) => {
      const value = valueOf(row, column)
      return value === undefined ? null : value
    })
    return typedArray(values, type)
  })
  return sql`select * from unnest(${sql.join(arrays)}) as v(${sql.join(columns.map((c) => sql.ref(c)))})`
}

export function columnList(types: Readonly<Record<string, PgType>>): RawBuilder<unknown> {
  return sql`(${sql.join(Object.keys(types).map((c) => sql.ref(c)))})`
}
/**
 * A `jsonb[]` of JSON texts, sent as ONE JSON array spliced together from them (`[t1,t2,…]`) and
 * taken apart in SQL in order, a JSON `null` element standing for SQL NULL. The texts are already
 * JSON, so nothing is escaped: as a `jsonb[]` parameter pg would escape every quote of every text in
 * JavaScript (≈ 6 µs per event for an event's four JSON columns, against < 1 µs for the splice).
 * Each text must be exactly one JSON value (JSON.stringify output); `null` and `undefined` are NULL.
 */
function jsonbArray(texts: readonly (string | null | undefined)[]): RawBuilder<unknown> {
  let doc = '['
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) doc += ','
    doc += texts[i] ?? 'null'
  }
  doc += ']'
  return sql`array(select nullif(e.value::text, 'null')::jsonb from json_array_elements(${doc}::json) with ordinality as e(value, n) order by e.n)`
}

/**
 * A `type[]` of values, sent as ONE JSON array (V8's native JSON.stringify; a Date becomes its ISO
 * text) and taken apart in SQL in order: pg's own array serialization escapes each element in
 * JavaScript, ≈ 4× the CPU here.
 */
function typedArray(values: readonly unknown[], type: Exclude<PgType, 'jsonb'>): RawBuilder<unknown> {
  let json = JSON.stringify(values)
  // JSON.stringify escapes a lone surrogate (\udXXX), which PostgreSQL refuses; sent as UTF-8 text it
  // became U+FFFD, as it always did. Only such a string (or a literal "\\udXXX") takes this path.
  if (LONE_SURROGATE_ESCAPE.test(json)) {
    json = JSON.stringify(values.map((v) => (typeof v === 'string' ? v.replace(LONE_SURROGATE, '\ufffd') : v)))
  }
  return sql`array(select e.value::${sql.raw(type)} from json_array_elements_text(${json}::json) with ordinality as e(value, n) order by e.n)`
}

const LONE_SURROGATE_ESCAPE = /\\ud[89a-f]/i
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
