/**
 * OTLP trace export → usage events, through the one ingest path (`usage.record`, as
 * `recordUsageBatch`): priced, budgeted, alerted and queued for Stripe like any event.
 */
import type { Tenant } from '../db/types.ts'
import type { RecordResult } from '../usage/service.ts'
import { LIMITS, type UsageEventInput } from '../usage/validation.ts'
import { mapSpan, type RejectReason, type SpanMappingOptions } from './mapping.ts'
import type { OtlpResourceSpans } from './types.ts'

export interface OtlpExportResult {
  /** Spans that became events (recorded now, or already recorded: an exporter's retry). */
  accepted: number
  /** Spans that carried no GenAI usage. */
  ignored: number
  rejected: number
  /** What was wrong with the rejected spans, summarized for ExportTracePartialSuccess.error_message. */
  errorMessage: string
  /** Results of the events, in span order (for metrics). */
  results: RecordResult[]
}

export interface OtlpService {
  export(tenant: Tenant, request: OtlpResourceSpans[]): Promise<OtlpExportResult>
}

/** Rejections named in error_message (the count covers them all). */
const MAX_EXAMPLES = 5

export function createOtlpService(deps: {
  /** The ingest path of recordUsage / recordUsageBatch. */
  record(tenant: Tenant, inputs: readonly UsageEventInput[]): Promise<RecordResult[]>
  mapping: SpanMappingOptions
}): OtlpService {
  return {
    async export(tenant, request) {
      const events: UsageEventInput[] = []
      const rejections: { reason: RejectReason | string; message: string }[] = []
      let ignored = 0
      for (const rs of request) {
        for (const scope of rs.scopes) {
          for (const span of scope.spans) {
            const outcome = mapSpan(span, rs.resource, deps.mapping)
            if (outcome.kind === 'ignored') ignored += 1
            else if (outcome.kind === 'rejected') rejections.push(outcome)
            else events.push(outcome.event)
          }
        }
      }
      const results: RecordResult[] = []
      // Batches of recordUsageBatch's size, each its own transaction: a retry after a failure
      // finds the committed ones DUPLICATE.
      for (let i = 0; i < events.length; i += LIMITS.batchSize) {
        results.push(...(await deps.record(tenant, events.slice(i, i + LIMITS.batchSize))))
      }
      let accepted = 0
      for (const [i, result] of results.entries()) {
        if (result.status === 'REJECTED') {
          const id = events[i]!.id
          rejections.push({ reason: result.error.code, message: `event ${id}: ${result.error.message}` })
        } else accepted += 1
      }
      return { accepted, ignored, rejected: rejections.length, errorMessage: summarize(rejections), results }
    },
  }
}

function summarize(rejections: readonly { reason: string; message: string }[]): string {
  if (rejections.length === 0) return ''
  const byReason = new Map<string, number>()
  for (const r of rejections) byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1)
  const counts = [...byReason].map(([reason, n]) => `${n} ${reason}`).join(', ')
  const examples = rejections.slice(0, MAX_EXAMPLES).map((r) => r.message)
  const more = rejections.length > MAX_EXAMPLES ? `; and ${rejections.length - MAX_EXAMPLES} more` : ''
  return `${rejections.length} span(s) rejected (${counts}): ${examples.join('; ')}${more}`
}
