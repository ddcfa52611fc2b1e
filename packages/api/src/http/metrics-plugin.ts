/** GraphQL operation latency and open subscriptions, for /metrics (observability/metrics.ts). */
import type { Plugin } from 'graphql-yoga'
import type { Metrics } from '../observability/metrics.ts'

const seconds = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9

export function metricsPlugin(metrics: Metrics): Plugin {
  return {
    onExecute: ({ args }) => {
      const started = process.hrtime.bigint()
      const operation = operationType(args.document, args.operationName)
      return {
        onExecuteDone: ({ result }) => {
          const ok = !('errors' in result && result.errors && result.errors.length > 0)
          metrics.graphqlOperation(operation, seconds(started), ok)
        },
      }
    },
    onSubscribe: () => {
      metrics.subscriptionOpened()
      let closed = false
      const close = () => {
        if (!closed) metrics.subscriptionClosed()
        closed = true
      }
      return {
        onSubscribeError: close,
        onSubscribeResult: ({ result }) => {
          if (!(Symbol.asyncIterator in result)) return close()
          return { onEnd: close }
        },
      }
    },
  }
}

function operationType(
  document: { definitions: readonly { kind: string; operation?: string; name?: { value: string } }[] },
  name: string | null | undefined,
): string {
  const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition')
  const chosen = name ? operations.find((d) => d.name?.value === name) : operations[0]
  return chosen?.operation ?? 'unknown'
}
