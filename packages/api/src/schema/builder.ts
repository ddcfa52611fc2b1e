import SchemaBuilder from '@pothos/core'
import type { GraphQLContext } from '../context.ts'
import { DateTimeScalar, DecimalScalar, JSONScalar } from './scalars.ts'

export interface SchemaTypes {
  Context: GraphQLContext
  // Fields are non-null unless they say otherwise, as in the contract.
  DefaultFieldNullability: false
  Scalars: {
    Decimal: { Input: string; Output: string }
    DateTime: { Input: Date; Output: Date | string }
    JSON: { Input: unknown; Output: unknown }
  }
}

/** The one Pothos builder. Domain folders add their types to it from their schema.ts. */
export const builder = new SchemaBuilder<SchemaTypes>({ defaultFieldNullability: false })

builder.addScalarType('Decimal', DecimalScalar)
builder.addScalarType('DateTime', DateTimeScalar)
builder.addScalarType('JSON', JSONScalar)

builder.queryType({})
builder.mutationType({})
