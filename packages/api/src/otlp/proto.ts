/**
 * OTLP/HTTP protobuf: decoding ExportTraceServiceRequest and encoding the responses, with
 * protobufjs (reflection, its generated decoders) over the message definitions of the
 * opentelemetry-proto specification (v1: collector/trace/v1/trace_service.proto,
 * trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto, and google.rpc.Status
 * for error bodies). Field names and numbers are the specification's; only the fields Burnrate
 * reads are declared: protobufjs skips the others on the wire (span events, links, status, …),
 * which also keeps decoding cheap. @opentelemetry/otlp-transformer no longer ships decoders (its
 * current releases only serialize requests and parse responses), so it cannot be used here.
 */
import protobuf from 'protobufjs'
import type { OtlpAttributes, OtlpAttributeValue, OtlpResourceSpans, OtlpSpan } from './types.ts'

const PROTO = `
syntax = "proto3";
package opentelemetry.proto;

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }

message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string name = 5;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
}

message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }

// google.rpc.Status, the body of an OTLP/HTTP error response (details are never sent).
message Status { int32 code = 1; string message = 2; }
`

const root = protobuf.parse(PROTO, { keepCase: false }).root
const RequestType = root.lookupType('opentelemetry.proto.ExportTraceServiceRequest')
const ResponseType = root.lookupType('opentelemetry.proto.ExportTraceServiceResponse')
const StatusType = root.lookupType('opentelemetry.proto.Status')

/** What protobufjs hands back for an int64/fixed64: a Long (with the `long` package) or a number. */
type Int64 = number | { toString(): string; toNumber(): number }

interface PbAnyValue {
  stringValue?: string
  boolValue?: boolean
  intValue?: Int64
  doubleValue?: number
  arrayValue?: { values?: PbAnyValue[] }
  kvlistValue?: { values?: PbKeyValue[] }
  bytesValue?: Uint8Array
  value?: string
}
interface PbKeyValue {
  key?: string
  value?: PbAnyValue
}
interface PbSpan {
  traceId?: Uint8Array
  spanId?: Uint8Array
  name?: string
  startTimeUnixNano?: Int64
  endTimeUnixNano?: Int64
  attributes?: PbKeyValue[]
}
interface PbRequest {
  resourceSpans?: {
    resource?: { attributes?: PbKeyValue[] }
    scopeSpans?: { scope?: { name?: string }; spans?: PbSpan[] }[]
  }[]
}

const int64Text = (value: Int64 | undefined): string =>
  value === undefined ? '0' : typeof value === 'number' ? String(value) : value.toString()

function valueOf(any: PbAnyValue | undefined): OtlpAttributeValue {
  if (!any) return null
  switch (any.value) {
    case 'stringValue':
      return any.stringValue ?? ''
    case 'boolValue':
      return any.boolValue ?? false
    case 'intValue': {
      const v = any.intValue
      if (v === undefined) return 0
      // Token counts fit easily; a value past 2^53 is kept exact as text (and refused as a count).
      const n = typeof v === 'number' ? v : v.toNumber()
      return Number.isSafeInteger(n) ? n : int64Text(v)
    }
    case 'doubleValue':
      return any.doubleValue ?? 0
    case 'arrayValue':
      return (any.arrayValue?.values ?? []).map(valueOf)
    case 'kvlistValue':
      return attributesOf(any.kvlistValue?.values)
    case 'bytesValue':
      return Buffer.from(any.bytesValue ?? []).toString('base64')
    default:
      return null
  }
}

function attributesOf(list: PbKeyValue[] | undefined): OtlpAttributes {
  const out: OtlpAttributes = new Map()
  for (const kv of list ?? []) if (kv.key) out.set(kv.key, valueOf(kv.value))
  return out
}

const hex = (bytes: Uint8Array | undefined): string => (bytes ? Buffer.from(bytes).toString('hex') : '')

export class OtlpDecodeError extends Error {
  override readonly name = 'OtlpDecodeError'
}

/** An ExportTraceServiceRequest from its protobuf bytes; throws OtlpDecodeError on malformed input. */
export function decodeProtobufRequest(body: Uint8Array): OtlpResourceSpans[] {
  let message: PbRequest
  try {
    message = RequestType.decode(body) as unknown as PbRequest
  } catch (error) {
    throw new OtlpDecodeError(`malformed protobuf: ${error instanceof Error ? error.message : String(error)}`)
  }
  return (message.resourceSpans ?? []).map((rs) => ({
    resource: attributesOf(rs.resource?.attributes),
    scopes: (rs.scopeSpans ?? []).map((ss) => ({
      name: ss.scope?.name ?? '',
      spans: (ss.spans ?? []).map((span): OtlpSpan => ({
        traceId: hex(span.traceId),
        spanId: hex(span.spanId),
        name: span.name ?? '',
        startTimeUnixNano: int64Text(span.startTimeUnixNano),
        endTimeUnixNano: int64Text(span.endTimeUnixNano),
        attributes: attributesOf(span.attributes),
      })),
    })),
  }))
}

/** ExportTraceServiceResponse; partial success only when something was rejected (or said). */
export function encodeProtobufResponse(partial: { rejectedSpans: number; errorMessage: string } | null): Uint8Array {
  const message = partial
    ? { partialSuccess: { rejectedSpans: partial.rejectedSpans, errorMessage: partial.errorMessage } }
    : {}
  return ResponseType.encode(ResponseType.fromObject(message)).finish()
}

/** google.rpc.Status for an error response. */
export function encodeProtobufStatus(code: number, message: string): Uint8Array {
  return StatusType.encode(StatusType.fromObject({ code, message })).finish()
}

/**
 * An ExportTraceServiceRequest as protobuf bytes, from spans in Burnrate's decoded shape (the
 * inverse of decodeProtobufRequest, for benchmarks and tests; exporters bring their own encoder).
 */
export function encodeProtobufRequest(request: readonly OtlpResourceSpans[]): Uint8Array {
  const anyValue = (value: OtlpAttributeValue): PbAnyValue =>
    typeof value === 'string'
      ? { stringValue: value }
      : typeof value === 'boolean'
        ? { boolValue: value }
        : typeof value === 'number'
          ? Number.isInteger(value)
            ? { intValue: value }
            : { doubleValue: value }
          : Array.isArray(value)
            ? { arrayValue: { values: value.map(anyValue) } }
            : value instanceof Map
              ? { kvlistValue: { values: keyValues(value) } }
              : {}
  const keyValues = (attributes: OtlpAttributes): PbKeyValue[] =>
    [...attributes].map(([key, value]) => ({ key, value: anyValue(value) }))
  const message = {
    resourceSpans: request.map((rs) => ({
      resource: { attributes: keyValues(rs.resource) },
      scopeSpans: rs.scopes.map((scope) => ({
        scope: { name: scope.name },
        spans: scope.spans.map((span) => ({
          traceId: Buffer.from(span.traceId, 'hex'),
          spanId: Buffer.from(span.spanId, 'hex'),
          name: span.name,
          startTimeUnixNano: span.startTimeUnixNano,
          endTimeUnixNano: span.endTimeUnixNano,
          attributes: keyValues(span.attributes),
        })),
      })),
    })),
  }
  return RequestType.encode(RequestType.fromObject(message)).finish()
}
