/**
 * Hostile GraphQL requests generated from the schema itself, so an operation added tomorrow is
 * fuzzed without anyone remembering to list it. Every argument of every Query, Mutation and
 * Subscription field gets values built from its declared type: mostly plausible ones (so the
 * request reaches the service and the database), mixed with the values that break servers —
 * NUL, lone surrogates, huge strings, deep JSON, year 0, 1e308, 2^63, wrong types, missing
 * required fields, empty inputs.
 */
import fc from 'fast-check'
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isRequiredArgument,
  isScalarType,
  isUnionType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql'

type OperationKind = 'query' | 'mutation' | 'subscription'

export interface SchemaOperation {
  kind: OperationKind
  field: GraphQLField<unknown, unknown>
}

/** Every root field of the schema, in a stable order. */
export function operationsOf(schema: GraphQLSchema): SchemaOperation[] {
  const roots: [OperationKind, GraphQLObjectType | null | undefined][] = [
    ['query', schema.getQueryType()],
    ['mutation', schema.getMutationType()],
    ['subscription', schema.getSubscriptionType()],
  ]
  return roots.flatMap(([kind, type]) =>
    type
      ? Object.values(type.getFields())
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((field) => ({ kind, field }))
      : [],
  )
}

/** Values a test seeded, so plausible arguments point at rows that exist. */
export interface Plausible {
  /** By argument or input field name (customerId, model, url…). */
  byName: Record<string, string[]>
  /** Ids of existing rows, used for any ID argument. */
  ids: string[]
}

const deep = (depth: number, leaf: unknown, wrap: (inner: unknown) => unknown) => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = wrap(value)
  return value
}

/**
 * Thousands of levels overflow JSON.stringify's stack in the test itself, so such values travel as
 * markers that `expandMarkers` replaces by their text in the request body.
 */
const DEEP_TEXT: Record<string, string> = {
  '"__FUZZ_DEEP_OBJECT__"': '{"a":'.repeat(5000) + '1' + '}'.repeat(5000),
  '"__FUZZ_DEEP_ARRAY__"': '['.repeat(20_000) + ']'.repeat(20_000),
}

export function expandMarkers(body: string): string {
  return body.replace(/"__FUZZ_DEEP_(OBJECT|ARRAY)__"/g, (marker) => DEEP_TEXT[marker]!)
}

const hasMarker = (value: unknown) => (JSON.stringify(value) ?? '').includes('__FUZZ_DEEP_')

const HUGE = 'x'.repeat(300_000)

const HOSTILE_STRINGS = [
  '',
  ' ',
  'a\u0000b',
  '\u0000',
  '\ud800',
  'x\udfffy',
  '\udc00\ud800',
  'x'.repeat(10_000),
  HUGE,
  '💸🔥',
  "'; drop table customers; --",
  '%s%n%x',
  '../../etc/passwd',
  '\\',
  'null',
  '\u202etxet',
  '\r\n\t',
  '<script>alert(1)</script>',
  'ä'.repeat(2000),
]

const HOSTILE_INTS: unknown[] = [
  0,
  -1,
  -2147483648,
  2147483647,
  2147483648,
  1.5,
  Number.MAX_SAFE_INTEGER + 2,
  1e308,
  -0,
  '5',
  true,
  2 ** 63,
]

const HOSTILE_DECIMALS: unknown[] = [
  '0',
  '-0',
  '-1',
  '0.000000000001',
  '1e308',
  '1E-400',
  'NaN',
  'Infinity',
  '-Infinity',
  '9'.repeat(200),
  '9223372036854775808',
  '-9223372036854775809',
  '1'.padEnd(60, '0') + '.5',
  '0.' + '1'.repeat(60),
  ' 1 ',
  '1,5',
  '0x10',
  '',
  1e308,
  1.5,
  -0,
  2 ** 63,
  true,
]

const now = Date.now()
const HOSTILE_DATES: unknown[] = [
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '1000-01-01T00:00:00Z',
  '1969-12-31T23:59:59Z',
  '1970-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '+275760-09-13T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-01-01T24:00:00Z',
  '2026-01-01T00:00:00+14:00',
  '2026-01-01T00:00:00.123456789Z',
  '2100-01-01T00:00:00Z',
  'yesterday',
  '',
  0,
  1e15,
  new Date(now + 3600_000).toISOString(),
]

const HOSTILE_JSON: unknown[] = [
  {},
  [],
  'text',
  1e308,
  -0,
  null,
  '__FUZZ_DEEP_OBJECT__',
  '__FUZZ_DEEP_ARRAY__',
  deep(60, 'x', (inner) => ({ k: inner })),
  Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])),
  { '\u0000': 1 },
  { note: 'a\u0000b' },
  { note: '\ud800' },
  { '\udfff': 'x' },
  { big: HUGE },
  { nested: { list: [1, 'two', { three: 3 }], flag: true } },
]

const WRONG_TYPES: unknown[] = [42, 'str', true, {}, [], null, 1.5, { a: 'b' }, [[1]]]

const dateArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .integer({ min: -40 * 24 * 60, max: 0 })
      .map((minutes) => new Date(now + minutes * 60_000).toISOString()),
  },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_DATES) },
)

function stringArb(name: string, plausible: Plausible, isId: boolean): fc.Arbitrary<unknown> {
  const pool = plausible.byName[name] ?? (isId ? plausible.ids : undefined) ?? plausible.byName.default ?? ['a']
  return fc.oneof(
    { weight: 7, arbitrary: fc.constantFrom(...pool) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  )
}

function scalarArb(typeName: string, name: string, plausible: Plausible): fc.Arbitrary<unknown> {
  switch (typeName) {
    case 'String':
      return stringArb(name, plausible, false)
    case 'ID':
      return stringArb(name, plausible, true)
    case 'Int':
      return fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 2000 }) },
        { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_INTS) },
      )
    case 'Float':
      return fc.oneof(fc.double(), fc.constantFrom(...HOSTILE_INTS))
    case 'Boolean':
      return fc.oneof({ weight: 6, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom('true', 1, 0) })
    case 'Decimal':
      return fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 100_000 }).map((cents) => (cents / 100).toFixed(2)) },
        { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_DECIMALS) },
      )
    case 'DateTime':
      return dateArb
    case 'JSON':
      return fc.oneof(
        { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
        { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_JSON) },
      )
    default:
      return fc.oneof(stringArb(name, plausible, false), fc.constantFrom(...WRONG_TYPES))
  }
}

/** A value for `type`, named `name` (an argument or input field), hostile now and then. */
function valueArb(type: GraphQLInputType, name: string, plausible: Plausible, depth = 0): fc.Arbitrary<unknown> {
  const wrong = fc.constantFrom(...WRONG_TYPES)
  if (isNonNullType(type)) {
    return fc.oneof(
      { weight: 30, arbitrary: valueArb(type.ofType, name, plausible, depth) },
      { weight: 1, arbitrary: fc.constant(null) },
    )
  }
  if (isListType(type)) {
    const item = valueArb(type.ofType, name, plausible, depth + 1)
    return fc.oneof(
      { weight: 2, arbitrary: fc.constant([]) },
      { weight: 12, arbitrary: fc.array(item, { minLength: 1, maxLength: 3 }) },
      // The same item many times (batch limits, unnest of big arrays), when that stays a sane body.
      {
        weight: 1,
        arbitrary: item.map((one) =>
          (JSON.stringify(one) ?? '').length < 2000 && !hasMarker(one)
            ? Array.from({ length: 1500 }, () => one)
            : [one],
        ),
      },
      { weight: 1, arbitrary: item },
      { weight: 1, arbitrary: wrong },
    )
  }
  let plain: fc.Arbitrary<unknown>
  if (isEnumType(type)) {
    const values = type.getValues().map((v) => v.name)
    plain = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...values) },
      { weight: 1, arbitrary: fc.constantFrom('NOPE', values[0]!.toLowerCase(), '') },
    )
  } else if (isScalarType(type)) {
    plain = scalarArb(type.name, name, plausible)
  } else if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields())
    if (depth > 4) return fc.constant({})
    const model = Object.fromEntries(fields.map((f) => [f.name, valueArb(f.type, f.name, plausible, depth + 1)]))
    const requiredKeys = fields.filter((f) => isNonNullType(f.type) && f.defaultValue === undefined).map((f) => f.name)
    const complete = fc.record(model, { requiredKeys })
    plain = fc.oneof(
      { weight: 14, arbitrary: complete },
      { weight: 1, arbitrary: fc.constant({}) },
      // A required field missing, or a field the type does not have.
      {
        weight: 1,
        arbitrary: complete.chain((v) =>
          requiredKeys.length ? fc.constantFrom(...requiredKeys).map((k) => omit(v, k)) : fc.constant(v),
        ),
      },
      { weight: 1, arbitrary: complete.map((v) => ({ ...v, notAField: 1 })) },
    )
  } else {
    plain = wrong
  }
  return fc.oneof({ weight: 25, arbitrary: plain }, { weight: 1, arbitrary: wrong })
}

const omit = (value: Record<string, unknown>, key: string) => {
  const copy = { ...value }
  delete copy[key]
  return copy
}

/** Leaf fields (and nested objects, to a small depth) of a result type: what serialization will touch. */
function selectionOf(type: GraphQLOutputType, depth = 0): string {
  const named: GraphQLNamedType = getNamedType(type)
  if (isLeafType(named)) return ''
  if (isUnionType(named) || isInterfaceType(named)) {
    const members = isUnionType(named) ? named.getTypes() : []
    const spreads = members.map((m) => `... on ${m.name} ${selectionOf(m, depth)}`).join(' ')
    return `{ __typename ${spreads} }`
  }
  if (!isObjectType(named)) return ''
  const parts: string[] = []
  for (const field of Object.values(named.getFields())) {
    if (field.args.some(isRequiredArgument)) continue
    if (isLeafType(getNamedType(field.type))) parts.push(field.name)
    else if (depth < 3) {
      const sub = selectionOf(field.type, depth + 1)
      if (sub) parts.push(`${field.name} ${sub}`)
    }
  }
  return parts.length ? `{ ${parts.join(' ')} }` : '{ __typename }'
}

/** A GraphQL literal for an argument, when one can be written (enums bare, strings escaped). */
function literalOf(value: unknown, type: GraphQLInputType): string | null {
  const named = getNamedType(type)
  if (value === null) return 'null'
  if (isEnumType(named) && typeof value === 'string' && /^[_A-Za-z][_0-9A-Za-z]*$/.test(value)) return value
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'boolean') return String(value)
  if (Array.isArray(value) && value.length <= 5) {
    const items = value.map((v) => literalOf(v, getInnerList(type) ?? type))
    return items.every((i) => i !== null) ? `[${items.join(', ')}]` : null
  }
  return null
}

function getInnerList(type: GraphQLInputType): GraphQLInputType | null {
  const list = isNonNullType(type) ? type.ofType : type
  return isListType(list) ? (list.ofType as GraphQLInputType) : null
}

export interface GeneratedOperation {
  operation: string
  query: string
  variables: Record<string, unknown>
}

/** One request for a root field: every argument as a variable, some written inline, sometimes an undeclared one. */
export function operationArb(op: SchemaOperation, plausible: Plausible): fc.Arbitrary<GeneratedOperation> {
  const args: readonly GraphQLArgument[] = op.field.args
  const values = fc.record(Object.fromEntries(args.map((a) => [a.name, valueArb(a.type, a.name, plausible)])), {
    requiredKeys: args.filter((a) => isNonNullType(a.type) && a.defaultValue === undefined).map((a) => a.name),
  })
  const style = fc.constantFrom('variables', 'variables', 'variables', 'inline', 'extra-variable', 'undeclared-arg')
  return fc.tuple(values, style).map(([given, how]) => {
    const declarations: string[] = []
    const passed: string[] = []
    const variables: Record<string, unknown> = {}
    for (const arg of args) {
      if (!(arg.name in given)) continue
      const value = (given as Record<string, unknown>)[arg.name]
      const literal = how === 'inline' ? literalOf(value, arg.type) : null
      if (literal !== null) {
        passed.push(`${arg.name}: ${literal}`)
      } else {
        declarations.push(`$${arg.name}: ${String(arg.type)}`)
        passed.push(`${arg.name}: $${arg.name}`)
        variables[arg.name] = value
      }
    }
    if (how === 'extra-variable') variables.unexpected = 'x'
    if (how === 'undeclared-arg') passed.push('notAnArgument: 1')
    const header = declarations.length ? `(${declarations.join(', ')})` : ''
    const call = passed.length ? `(${passed.join(', ')})` : ''
    const query = `${op.kind} Fuzz${header} { ${op.field.name}${call} ${selectionOf(op.field.type)} }`
    return { operation: `${op.kind}.${op.field.name}`, query, variables }
  })
}
