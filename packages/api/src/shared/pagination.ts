/**
 * Paging, written once: the one `first` limit, the one cursor codec and the one way a keyset page
 * is cut. Services and repositories use it without knowing GraphQL; schema/pagination.ts declares
 * the matching Relay arguments and connection types.
 */
import { badInput } from './errors.ts'

/** Every list: `first` from 1 to 500, 50 unless the list says otherwise. */
export const PAGE = { defaultFirst: 50, maxFirst: 500 } as const

/** How many rows a caller asked for: `first` (default `defaultFirst`), BAD_USER_INPUT (field "first") outside 1..maxFirst. */
export function pageSize(
  first: number | null | undefined,
  limits: { defaultFirst?: number; maxFirst?: number } = {},
): number {
  const max = limits.maxFirst ?? PAGE.maxFirst
  const size = first ?? limits.defaultFirst ?? PAGE.defaultFirst
  if (!Number.isInteger(size) || size < 1 || size > max) throw badInput(`first must be between 1 and ${max}`, 'first')
  return size
}

/** A position in a list ordered by (timestamp, id): what keyset pages continue after. */
interface KeysetPosition {
  at: Date
  id: string
}

export interface CursorCodec {
  encode(position: KeysetPosition): string
  /** The position a cursor stands for; BAD_USER_INPUT (field "after") when it is not one of this list's. */
  decode(cursor: string): KeysetPosition
}

/**
 * The one cursor format: base64url of JSON `[tag, timestamp ISO, id]`, opaque to clients. The tag
 * names the list, so a cursor of one list is refused by another.
 */
export function keysetCursor(list: string): CursorCodec {
  const invalid = () => badInput(`after is not a cursor returned by ${list}`, 'after')
  return {
    encode: (p) => Buffer.from(JSON.stringify([list, p.at.toISOString(), p.id])).toString('base64url'),
    decode(cursor) {
      if (cursor.length > 2000 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid()
      let parsed: unknown
      try {
        parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
      } catch {
        throw invalid()
      }
      if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== list) throw invalid()
      const [, ts, id] = parsed as unknown[]
      if (typeof ts !== 'string' || typeof id !== 'string' || id.length === 0) throw invalid()
      const at = new Date(ts)
      if (Number.isNaN(at.getTime()) || at.toISOString() !== ts) throw invalid()
      return { at, id }
    },
  }
}

/** A Relay page: what schema/pagination.ts's connection types expose. */
export interface Page<T> {
  edges: { cursor: string; node: T }[]
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }
}

/**
 * Cuts a page from rows fetched with `limit: first + 1` (the extra row says whether another page
 * exists) and gives every row its cursor.
 */
export function pageOf<T>(
  rows: readonly T[],
  request: { first: number; after: unknown },
  cursorOf: (row: T) => string,
): Page<T> {
  const edges = rows.slice(0, request.first).map((node) => ({ cursor: cursorOf(node), node }))
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > request.first,
      hasPreviousPage: request.after != null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  }
}
