/**
 * Feeding the metrics from the app's paths without the domains knowing: the usage service's
 * `record` (every ingest: recordUsage, recordUsageBatch, the gateway, OTLP); the yoga side is
 * http/metrics-plugin.ts.
 */
import type { RecordResult, UsageService } from '../usage/service.ts'
import type { Metrics } from './metrics.ts'

const seconds = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9

type RecordOne = (...args: never[]) => Promise<RecordResult>

/**
 * The usage service with every ingest call counted and timed: batches (`record`) and single events
 * through group commit (`recordOne`, which calls the unwrapped `record` underneath, so nothing is
 * counted twice).
 */
export function instrumentUsage<U extends UsageService & { recordOne?: RecordOne }>(usage: U, metrics: Metrics): U {
  const timed = async <T>(run: () => Promise<T>, results: (value: T) => readonly RecordResult[]): Promise<T> => {
    const started = process.hrtime.bigint()
    try {
      const value = await run()
      metrics.ingested(results(value), seconds(started))
      return value
    } catch (error) {
      metrics.ingestFailed(seconds(started))
      throw error
    }
  }
  const wrapped: U = Object.create(usage) as U
  wrapped.record = (tenant, inputs) =>
    timed(
      () => usage.record(tenant, inputs),
      (r) => r,
    )
  if (usage.recordOne) {
    const recordOne = usage.recordOne.bind(usage)
    ;(wrapped as { recordOne?: RecordOne }).recordOne = ((...args: never[]) =>
      timed(
        () => recordOne(...args),
        (r) => [r],
      )) as RecordOne
  }
  return wrapped
}
