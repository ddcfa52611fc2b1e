import { GraphQLError, GraphQLScalarType, Kind } from 'graphql'
import { DateTimeResolver, JSONResolver } from 'graphql-scalars'
import { isExactDecimalString } from '../money/decimal.ts'

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
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT) return decimalFromInput(ast.kind === Kind.INT ? ast.value : ast.value)
    throw new GraphQLError('Decimal must be a decimal string such as "12.50"', { extensions: { code: 'BAD_USER_INPUT' } })
  },
})

export const DateTimeScalar = new GraphQLScalarType({
  ...DateTimeResolver.toConfig(),
  description: 'RFC 3339 timestamp with offset, e.g. "2026-11-23T10:00:00Z".',
})

export const JSONScalar = JSONResolver
