/**
 * OTLP/JSON (the protobuf JSON mapping with OTLP's exceptions): lowerCamelCase field names (the
 * proto names are accepted too), trace and span ids as hex strings, 64-bit integers as decimal
 * strings or numbers. Unknown fields are ignored, as the specification requires.
 */
import { OtlpDecodeError } from './proto.ts'
import type { OtlpAttributes, OtlpAttributeValue, OtlpResourceSpans, OtlpSpan } from './types.ts'

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A field under its JSON name or its proto name. */
function field(object: Json, camel: string, snake: string): unknown {
  return object[camel] ?? object[snake]
}

function list(object: Json, camel: string, snake: string, where: string): unknown[] {
  const value = field(object, camel, snake)
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new OtlpDecodeError(`${where}.${camel} must be an array`)
  return value
}

function object(value: unknown, where: string): Json {
  if (value === undefined || value === null) return {}
  if (!isObject(value)) throw new OtlpDecodeError(`${where} must be an object`)
  return value
}

const HEX = /^[0-9a-fA-F]*$/

function id(value: unknown, where: string): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string' || !HEX.test(value)) throw new OtlpDecodeError(`${where} must be a hex string`)
  return value.toLowerCase()
}

const UINT64 = /^\d{1,20}$/

function nanos(value: unknown, where: string): string {
  if (value === undefined || value === null) return '0'
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return BigInt(value).toString()
  if (typeof value === 'string' && UINT64.test(value)) return BigInt(value).toString()
  throw new OtlpDecodeError(`${where} must be an unsigned integer (a decimal string or a number)`)
}

function anyValue(value: unknown, depth: number): OtlpAttributeValue {
  if (depth > 32) throw new OtlpDecodeError('attribute values nest too deeply')
  if (!isObject(value)) return null
  if ('stringValue' in value || 'string_value' in value) {
    const s = field(value, 'stringValue', 'string_value')
    return typeof s === 'string' ? s : null
  }
  if ('boolValue' in value || 'bool_value' in value) return field(value, 'boolValue', 'bool_value') === true
  if ('intValue' in value || 'int_value' in value) {
    const raw = field(value, 'intValue', 'int_value')
    if (typeof raw === 'number') return raw
    if (typeof raw === 'string' && /^-?\d+$/.test(raw)) {
      const n = Number(raw)
      return Number.isSafeInteger(n) ? n : raw
    }
    return null
  }
  if ('doubleValue' in value || 'double_value' in value) {
    const raw = field(value, 'doubleValue', 'double_value')
    return typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : null
  }
  if ('arrayValue' in value || 'array_value' in value) {
    const array = object(field(value, 'arrayValue', 'array_value'), 'arrayValue')
    return list(array, 'values', 'values', 'arrayValue').map((v) => anyValue(v, depth + 1))
  }
  if ('kvlistValue' in value || 'kvlist_value' in value) {
    const kv = object(field(value, 'kvlistValue', 'kvlist_value'), 'kvlistValue')
    return attributes(list(kv, 'values', 'values', 'kvlistValue'), depth + 1)
  }
  if ('bytesValue' in value || 'bytes_value' in value) {
    const raw = field(value, 'bytesValue', 'bytes_value')
    return typeof raw === 'string' ? raw : null
  }
  return null
}

function attributes(items: unknown[], depth = 0): OtlpAttributes {
  const out: OtlpAttributes = new Map()
  for (const item of items) {
    if (!isObject(item) || typeof item.key !== 'string' || !item.key) continue
    out.set(item.key, anyValue(item.value, depth))
  }
  return out
}

/** An ExportTraceServiceRequest from its JSON text; throws OtlpDecodeError on malformed input. */
export function decodeJsonRequest(text: string): OtlpResourceSpans[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new OtlpDecodeError(`malformed JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (!isObject(parsed)) throw new OtlpDecodeError('the body must be a JSON object (ExportTraceServiceRequest)')
  return list(parsed, 'resourceSpans', 'resource_spans', 'request').map((rsValue, r) => {
    const where = `resourceSpans[${r}]`
    const rs = object(rsValue, where)
    const resource = object(rs.resource, `${where}.resource`)
    return {
      resource: attributes(list(resource, 'attributes', 'attributes', `${where}.resource`)),
      scopes: list(rs, 'scopeSpans', 'scope_spans', where).map((ssValue, s) => {
        const scopeWhere = `${where}.scopeSpans[${s}]`
        const ss = object(ssValue, scopeWhere)
        const scope = object(ss.scope, `${scopeWhere}.scope`)
        return {
          name: typeof scope.name === 'string' ? scope.name : '',
          spans: list(ss, 'spans', 'spans', scopeWhere).map((spanValue, i): OtlpSpan => {
            const spanWhere = `${scopeWhere}.spans[${i}]`
            const span = object(spanValue, spanWhere)
            return {
              traceId: id(field(span, 'traceId', 'trace_id'), `${spanWhere}.traceId`),
              spanId: id(field(span, 'spanId', 'span_id'), `${spanWhere}.spanId`),
              name: typeof span.name === 'string' ? span.name : '',
              startTimeUnixNano: nanos(
                field(span, 'startTimeUnixNano', 'start_time_unix_nano'),
                `${spanWhere}.startTimeUnixNano`,
              ),
              endTimeUnixNano: nanos(
                field(span, 'endTimeUnixNano', 'end_time_unix_nano'),
                `${spanWhere}.endTimeUnixNano`,
              ),
              attributes: attributes(list(span, 'attributes', 'attributes', spanWhere)),
            }
          }),
        }
      }),
    }
  })
}
