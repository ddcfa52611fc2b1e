/** An attribute value as OTLP carries it (AnyValue), decoded: arrays and key-value lists nest. */
export type OtlpAttributeValue = string | number | boolean | null | OtlpAttributeValue[] | OtlpAttributes

export type OtlpAttributes = Map<string, OtlpAttributeValue>

/** One span, with what Burnrate reads of it; ids as lowercase hex, times as decimal nanoseconds. */
export interface OtlpSpan {
  traceId: string
  spanId: string
  name: string
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: OtlpAttributes
}

/** The spans of one resource (a process, a service), by instrumentation scope. */
export interface OtlpResourceSpans {
  resource: OtlpAttributes
  scopes: { name: string; spans: OtlpSpan[] }[]
}
