/**
 * The body of POST /v1/usage/batch turned into the inputs recordUsageBatch's resolver receives,
 * without graphql-js's generic variable coercion (≈ 40 % of the API's CPU on a 500-event batch).
 *
 * Each field is coerced by the very scalar the GraphQL schema uses for it (GraphQLString,
 * GraphQLInt, DateTime, Decimal, JSON: their `parseValue`), so a value is accepted or refused
 * exactly as `recordUsageBatch(events: $events)` accepts or refuses it, and the error names the
 * same field (`events[3].inputTokens`; the object for a missing or unknown field, as graphql-js
 * does). Then every string is checked as the GraphQL path checks them (schema/input-text.ts).
 * Any refusal refuses the whole request (400 BAD_USER_INPUT), as a coercion error refuses the
 * whole GraphQL operation: nothing is stored. What passes goes to the same UsageService.record.
 */
import { GraphQLError, GraphQLInt, GraphQLString, type GraphQLScalarType } from 'graphql'
import { findUnsafeValue } from '../schema/input-text.ts'
import { DateTimeScalar, DecimalScalar, JSONScalar } from '../schema/scalars.ts'
import type { UsageEventInput } from '../usage/validation.ts'
import { LIMITS } from '../usage/validation.ts'

interface BatchInputError {
  code: 'BAD_USER_INPUT'
  message: string
  field: string
}

export type BatchInput = { ok: true; events: UsageEventInput[] } | { ok: false; error: BatchInputError }

type FieldKind = 'String' | 'Int' | 'DateTime' | 'JSON' | 'Units'

/** UsageEventInput's fields in the schema's order (graphql-js reports the first failing one in that order). */
const EVENT_FIELDS: readonly (readonly [name: string, kind: FieldKind, required: boolean])[] = [
  ['id', 'String', true],
  ['customerId', 'String', true],
  ['model', 'String', true],
  ['provider', 'String', false],
  ['timestamp', 'DateTime', true],
  ['inputTokens', 'Int', false],
  ['outputTokens', 'Int', false],
  ['cacheReadTokens', 'Int', false],
  ['cacheWriteTokens', 'Int', false],
  ['reasoningTokens', 'Int', false],
  ['units', 'Units', false],
  ['feature', 'String', false],
  ['metadata', 'JSON', false],
  ['signature', 'String', false],
  ['reservationId', 'String', false],
]
const KNOWN = new Set(EVENT_FIELDS.map(([name]) => name))

const SCALARS: Record<Exclude<FieldKind, 'Units'>, GraphQLScalarType> = {
  String: GraphQLString,
  Int: GraphQLInt,
  DateTime: DateTimeScalar,
  JSON: JSONScalar,
}

const TYPE_NAMES: Record<FieldKind, string> = {
  String: 'String',
  Int: 'Int',
  DateTime: 'DateTime',
  JSON: 'JSON',
  Units: '[UnitQuantityInput!]',
}

class Refusal extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message)
  }
}

const shown = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

function scalar(type: GraphQLScalarType, value: unknown, path: string): unknown {
  try {
    return type.parseValue(value)
  } catch (error) {
    const reason = error instanceof GraphQLError || error instanceof Error ? error.message : String(error)
    throw new Refusal(path, `invalid value ${shown(value)} at "${path}"; ${reason}`)
  }
}

function object(value: unknown, typeName: string, path: string): Record<string, unknown> {
  if (value === null || value === undefined)
    throw new Refusal(
      path,
      `invalid value null at "${path}"; Expected non-nullable type "${typeName}!" not to be null.`,
    )
  if (!isObject(value))
    throw new Refusal(path, `invalid value ${shown(value)} at "${path}"; Expected type "${typeName}" to be an object.`)
  return value
}

function units(value: unknown, path: string): { unit: string; quantity: string }[] {
  // graphql-js coerces a single value given for a list into a list of that one value.
  const list = Array.isArray(value) ? value : [value]
  return list.map((item, i) => {
    const at = Array.isArray(value) ? `${path}[${i}]` : path
    const unit = object(item, 'UnitQuantityInput', at)
    for (const key of Object.keys(unit))
      if (key !== 'unit' && key !== 'quantity')
        throw new Refusal(at, `invalid value at "${at}"; Field "${key}" is not defined by type "UnitQuantityInput".`)
    const fields: Record<string, unknown> = {}
    for (const [name, type, typeName] of [
      ['unit', GraphQLString, 'String'],
      ['quantity', DecimalScalar, 'Decimal'],
    ] as const) {
      const given = unit[name]
      if (given === undefined)
        throw new Refusal(
          at,
          `invalid value at "${at}"; Field "${name}" of required type "${typeName}!" was not provided.`,
        )
      if (given === null)
        throw new Refusal(
          `${at}.${name}`,
          `invalid value null at "${at}.${name}"; Expected non-nullable type "${typeName}!" not to be null.`,
        )
      fields[name] = scalar(type, given, `${at}.${name}`)
    }
    return fields as { unit: string; quantity: string }
  })
}

/** One event as graphql-js would hand it to the resolver, or a Refusal thrown. */
function coerceEvent(value: unknown, path: string): UsageEventInput {
  const given = object(value, 'UsageEventInput', path)
  const event: Record<string, unknown> = {}
  for (const [name, kind, required] of EVENT_FIELDS) {
    const field = given[name]
    if (field === undefined) {
      if (required)
        throw new Refusal(
          path,
          `invalid value at "${path}"; Field "${name}" of required type "${TYPE_NAMES[kind]}!" was not provided.`,
        )
      continue
    }
    if (field === null) {
      if (required)
        throw new Refusal(
          `${path}.${name}`,
          `invalid value null at "${path}.${name}"; Expected non-nullable type "${TYPE_NAMES[kind]}!" not to be null.`,
        )
      event[name] = null
      continue
    }
    event[name] = kind === 'Units' ? units(field, `${path}.${name}`) : scalar(SCALARS[kind], field, `${path}.${name}`)
  }
  for (const key of Object.keys(given))
    if (!KNOWN.has(key))
      throw new Refusal(path, `invalid value at "${path}"; Field "${key}" is not defined by type "UsageEventInput".`)
  return event as unknown as UsageEventInput
}

/** The events of a parsed JSON body: `{"events": [...]}` or a bare array. */
function eventsOf(body: unknown): unknown[] | BatchInputError {
  if (Array.isArray(body)) return body
  if (isObject(body)) {
    for (const key of Object.keys(body))
      if (key !== 'events')
        return {
          code: 'BAD_USER_INPUT',
          message: `unknown top-level field "${key}": send {"events": [...]}`,
          field: key,
        }
    if (Array.isArray(body.events)) return body.events
    if (body.events === undefined || body.events === null)
      return { code: 'BAD_USER_INPUT', message: 'events is required: send {"events": [...]}', field: 'events' }
  }
  return {
    code: 'BAD_USER_INPUT',
    message: 'the body must be {"events": [...]} or a JSON array of events',
    field: 'events',
  }
}

/** NDJSON: one event object per line; blank lines are skipped. */
function ndjsonEvents(text: string): unknown[] | BatchInputError {
  const events: unknown[] = []
  let line = 0
  for (const raw of text.split('\n')) {
    line += 1
    const trimmed = raw.trim()
    if (trimmed === '') continue
    try {
      events.push(JSON.parse(trimmed))
    } catch (error) {
      return {
        code: 'BAD_USER_INPUT',
        message: `line ${line} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
        field: `events[${events.length}]`,
      }
    }
  }
  return events
}

/**
 * The events of a body (`json`: one JSON document; `ndjson`: one event per line), coerced as
 * recordUsageBatch coerces its `events` variable, or the first refusal.
 */
export function parseBatchBody(text: string, format: 'json' | 'ndjson'): BatchInput {
  let list: unknown[] | BatchInputError
  if (format === 'ndjson') list = ndjsonEvents(text)
  else {
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (error) {
      return {
        ok: false,
        error: {
          code: 'BAD_USER_INPUT',
          message: `the body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
          field: 'events',
        },
      }
    }
    list = eventsOf(body)
  }
  if (!Array.isArray(list)) return { ok: false, error: list }
  // The resolver's own limit, checked before coercing anything (recordUsageBatch coerces first).
  if (list.length > LIMITS.batchSize)
    return {
      ok: false,
      error: {
        code: 'BAD_USER_INPUT',
        message: `a batch holds at most ${LIMITS.batchSize} events, got ${list.length}`,
        field: 'events',
      },
    }
  const events: UsageEventInput[] = new Array(list.length)
  try {
    for (let i = 0; i < list.length; i++) events[i] = coerceEvent(list[i], `events[${i}]`)
  } catch (error) {
    if (error instanceof Refusal)
      return { ok: false, error: { code: 'BAD_USER_INPUT', message: error.message, field: error.field } }
    throw error
  }
  // Text PostgreSQL cannot store (NUL, lone surrogates), anywhere, keys of metadata included.
  const unsafe = findUnsafeValue(events, 'events')
  if (unsafe) return { ok: false, error: { code: 'BAD_USER_INPUT', message: unsafe.message, field: unsafe.field } }
  return { ok: true, events }
}
