/**
 * Connections, declared once: the forward-paging arguments (`first`, `after`) and a Relay connection
 * type for a node type, named as the contract names them (`UsageEventConnection`, `UsageEventEdge`,
 * `PageInfo`). The limit, cursor codec and page cutting are shared/pagination.ts.
 */
import type { ObjectRef } from '@pothos/core'
import { PAGE } from '../shared/pagination.ts'
import { builder } from './builder.ts'

type ArgBuilder = Parameters<Parameters<typeof builder.queryFields>[0]>[0]['arg']

/** `first` and `after` for a connection field; pages go forward only (newest or oldest first, per list). */
export function pageArgs(arg: ArgBuilder, limits: { defaultFirst?: number; maxFirst?: number } = {}) {
  const max = limits.maxFirst ?? PAGE.maxFirst
  const def = limits.defaultFirst ?? PAGE.defaultFirst
  return {
    first: arg.int({ description: `At most ${max}; default ${def}.` }),
    after: arg.string({ description: 'The endCursor of the previous page.' }),
  }
}

/** `<Name>Connection { edges: [<Name>Edge!]!, pageInfo: PageInfo! }` over a node type. */
export function connection<T>(name: string, node: ObjectRef<SchemaTypesOf, T>) {
  return builder.connectionObject({ type: node, name: `${name}Connection` }, { name: `${name}Edge` })
}

type SchemaTypesOf = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never
