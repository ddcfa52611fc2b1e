import { GraphQLError, GraphQLScalarType, Kind } from 'graphql'
import { DateTimeResolver, JSONResolver } from 'graphql-scalars'
import { isExactDecimalString } from '../money/decimal.ts'
import { DATE_TIME_RANGE } from '../shared/date-range.ts'

function decimalFromInput(value: unknown): string {
  // Strings carry exact decimals; integers are safe too. Non-integer JS numbers are refused: a
  // float may already have lost the value the client meant.
  if (typeof value === 'string' && isExactDecimalString(value.trim())) return value.trim()
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  throw new GraphQLError(`Decimal must be a decimal string such as "12.50", got ${JSON.stringify(value)}`, {
    extensions: { code: 'BAD_USER_INPUT' },
  })
}

export const DecimalScalar = new GraphQLScalarType<string, string>({
  name: 'Decimal',
  description: 'Exact decimal number serialized as a string, e.g. "0.0000025". Never a float.',
  serialize: (value) => {
    if (typeof value === 'string') return value
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
    if (value && typeof value === 'object' && 'toFixed' in value) return (value as { toFixed(): string }).toFixed()
    throw new GraphQLError(`Decimal cannot serialize ${typeof value}`)
  },
  parseValue: decimalFromInput,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT)
      return decimalFromInput(ast.kind === Kind.INT ? ast.value : ast.value)
    throw new GraphQLError('Decimal must be a decimal string such as "12.50"', {
      extensions: { code: 'BAD_USER_INPUT' },
    })
  },
})

function dateInRange(date: Date): Date {
  const ms = date.getTime()
  if (!(ms >= DATE_TIME_RANGE.earliest.getTime() && ms <= DATE_TIME_RANGE.latest.getTime())) {
    throw new GraphQLError(`DateTime must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z`, {
      extensions: { code: 'BAD_USER_INPUT' },
    })
  }
  return date
}

const dateTimeConfig = DateTimeResolver.toConfig()

export const DateTimeScalar = new GraphQLScalarType({
  ...dateTimeConfig,
  description: 'RFC 3339 timestamp with offset, e.g. "2026-11-23T10:00:00Z", between 1970-01-01 and 9999-12-31.',
  parseValue: (value) => dateInRange(dateTimeConfig.parseValue!(value) as Date),
  parseLiteral: (ast, variables) => dateInRange(dateTimeConfig.parseLiteral!(ast, variables) as Date),
})

/** JSON inputs (event metadata) are labels, not documents: bounded so no parser, canonical form or jsonb chokes. */
const JSON_LIMITS = { maxDepth: 20, maxBytes: 65_536 }

function boundedJson<T>(value: T): T {
  // Iterative: the depth is the client's choice, so no recursion (and no JSON.stringify) before it is known.
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (node === null || typeof node !== 'object') continue
    if (depth > JSON_LIMITS.maxDepth) {
      throw new GraphQLError(`JSON nests deeper than ${JSON_LIMITS.maxDepth} levels`, {
        extensions: { code: 'BAD_USER_INPUT' },
      })
    }
    for (const inner of Object.values(node)) stack.push([inner, depth + 1])
  }
  if (Buffer.byteLength(JSON.stringify(value) ?? '') > JSON_LIMITS.maxBytes) {
    throw new GraphQLError(`JSON is larger than ${JSON_LIMITS.maxBytes} bytes`, {
      extensions: { code: 'BAD_USER_INPUT' },
    })
  }
  return value
}

const jsonConfig = JSONResolver.toConfig()

export const JSONScalar = new GraphQLScalarType({
  ...jsonConfig,
  description: `${jsonConfig.description ?? 'A JSON value.'} At most ${JSON_LIMITS.maxDepth} levels deep and ${JSON_LIMITS.maxBytes} bytes.`,
  parseValue: (value) => boundedJson(jsonConfig.parseValue!(value)),
  parseLiteral: (ast, variables) => boundedJson(jsonConfig.parseLiteral!(ast, variables)),
})
