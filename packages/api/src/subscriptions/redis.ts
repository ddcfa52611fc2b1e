import { createRedisEventTarget } from '@graphql-yoga/redis-event-target'
import type { PubSubEventTarget } from 'graphql-yoga'
import { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { createBurnratePubSub, type BurnratePubSub, type Topics } from '../pubsub.ts'

/**
 * Namespaces every event type (a Redis channel) with `prefix`, so several deployments, or parallel
 * test runs, can share one Redis without hearing each other.
 */
function prefixedEventTarget(inner: PubSubEventTarget<Topics>, prefix: string): PubSubEventTarget<Topics> {
  if (!prefix) return inner
  return {
    addEventListener: (type: string, listener: never, options?: never) =>
      inner.addEventListener(prefix + type, listener, options),
    removeEventListener: (type: string, listener: never, options?: never) =>
      inner.removeEventListener(prefix + type, listener, options),
    dispatchEvent: (event: CustomEvent) =>
      inner.dispatchEvent(new CustomEvent(prefix + event.type, { detail: event.detail }) as never),
  } as unknown as PubSubEventTarget<Topics>
}

export interface RedisPubSub {
  pubsub: BurnratePubSub
  close(): Promise<void>
}

/**
 * The pubsub across API processes: every publish goes through Redis and reaches the subscribers
 * of every process (yoga's Redis event target; one connection publishes, one subscribes).
 */
export async function createRedisPubSub(url: string, prefix: string, logger: Logger): Promise<RedisPubSub> {
  const options = { lazyConnect: true, maxRetriesPerRequest: null } as const
  const publishClient = new Redis(url, options)
  const subscribeClient = new Redis(url, options)
  for (const [role, client] of [
    ['publish', publishClient],
    ['subscribe', subscribeClient],
  ] as const) {
    // ioredis reconnects by itself; an unheard 'error' would crash the process.
    client.on('error', (error: Error) =>
      logger.warn('redis connection error; reconnecting', { role, error: error.message }),
    )
  }
  await Promise.all([publishClient.connect(), subscribeClient.connect()])
  const target = createRedisEventTarget<CustomEvent>({
    publishClient,
    subscribeClient,
  }) as unknown as PubSubEventTarget<Topics>
  return {
    pubsub: createBurnratePubSub(prefixedEventTarget(target, prefix)),
    async close() {
      await Promise.allSettled([publishClient.quit(), subscribeClient.quit()])
    },
  }
}
