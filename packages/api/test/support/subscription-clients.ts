import { createClient as createSseClient } from 'graphql-sse'
import { createClient as createWsClient } from 'graphql-ws'
import WebSocket from 'ws'
import type { PubSubEventTarget } from 'graphql-yoga'
import type { Topics } from '../../src/pubsub.ts'

interface Received<T = Record<string, any>> {
  data?: T
  errors?: { message: string; extensions?: Record<string, unknown> }[]
}

/** A live subscription from a real client: results arrive in a queue; `next()` awaits the next one. */
export interface LiveSubscription<T = Record<string, any>> {
  next(timeoutMs?: number): Promise<Received<T>>
  /** Everything received so far and not yet taken with next(). */
  pending(): Received<T>[]
  /** Resolves when the server completes the stream (or it fails). */
  ended: Promise<{ error?: unknown }>
  dispose(): Promise<void> | void
}

function queue<T>() {
  const items: Received<T>[] = []
  const waiters: ((r: Received<T>) => void)[] = []
  let end!: (v: { error?: unknown }) => void
  const ended = new Promise<{ error?: unknown }>((resolve) => (end = resolve))
  return {
    ended,
    end,
    push(item: Received<T>) {
      const waiter = waiters.shift()
      if (waiter) waiter(item)
      else items.push(item)
    },
    next(timeoutMs = 20_000): Promise<Received<T>> {
      const item = items.shift()
      if (item) return Promise.resolve(item)
      return new Promise((resolve, reject) => {
        const waiter = (r: Received<T>) => {
          clearTimeout(timer)
          resolve(r)
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error('no subscription result in time'))
        }, timeoutMs)
        waiters.push(waiter)
      })
    },
    pending: () => items.splice(0),
  }
}

/** Both clients take graphql-ws's sink: feed one subscription into a queue the test can await. */
interface SinkClient {
  subscribe(
    request: { query: string; variables: Record<string, unknown> },
    sink: { next(value: unknown): void; error(error: unknown): void; complete(): void },
  ): () => void
  dispose(): void | Promise<void>
}

function collect<T>(client: SinkClient, query: string, variables?: Record<string, unknown>): LiveSubscription<T> {
  const q = queue<T>()
  const unsubscribe = client.subscribe(
    { query, variables: variables ?? {} },
    {
      next: (value) => q.push(value as Received<T>),
      error: (error) => q.end({ error }),
      complete: () => q.end({}),
    },
  )
  return { next: q.next, pending: q.pending, ended: q.ended, dispose: () => (unsubscribe(), void client.dispose()) }
}

/** graphql-sse's client in its default "distinct connections" mode (one SSE request per subscription). */
export function sseSubscribe<T = Record<string, any>>(
  graphqlUrl: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): LiveSubscription<T> {
  const client = createSseClient({
    url: graphqlUrl,
    headers: key ? { authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
  })
  return collect<T>(client, query, variables)
}

/** graphql-ws's client over the `ws` package, authenticating with connectionParams. */
export function wsSubscribe<T = Record<string, any>>(
  graphqlUrl: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): LiveSubscription<T> {
  const client = createWsClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: key ? { authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
    lazy: true,
  })
  return collect<T>(client, query, variables)
}

/** The subscriptions a test file opens (per transport), disposed together in its afterAll. */
export function openSubscriptions(subscribe: typeof sseSubscribe) {
  const open: LiveSubscription[] = []
  return {
    live(...args: Parameters<typeof sseSubscribe>): LiveSubscription {
      const s = subscribe(...args)
      open.push(s)
      return s
    },
    dispose: () => Promise.all(open.map((s) => s.dispose())),
  }
}

/**
 * An in-process event target that tells when someone listens on a channel, so a test publishes
 * only once the subscription is really registered (no sleeps). `listening(type, n)` resolves once
 * n listeners were ever added on `type` (a cumulative count: removals do not lower it);
 * `established(type, more)` once `more` listeners were added beyond those earlier calls waited for
 * (each test waits for the subscriptions it opened).
 */
export function observableEventTarget(): PubSubEventTarget<Topics> & {
  listening(type: string, count?: number): Promise<void>
  established(type: string, more?: number): Promise<void>
} {
  const target = new EventTarget()
  const counts = new Map<string, number>()
  const awaited = new Map<string, number>()
  const waiters: { type: string; count: number; resolve: () => void }[] = []
  const check = () => {
    for (const w of [...waiters]) {
      if ((counts.get(w.type) ?? 0) >= w.count) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }
  const listening = (type: string, count = 1) =>
    new Promise<void>((resolve) => {
      waiters.push({ type, count, resolve })
      check()
    })
  return {
    addEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject | null,
      options?: AddEventListenerOptions | boolean,
    ) {
      target.addEventListener(type, listener, options)
      counts.set(type, (counts.get(type) ?? 0) + 1)
      check()
    },
    removeEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject | null,
      options?: EventListenerOptions | boolean,
    ) {
      target.removeEventListener(type, listener, options)
    },
    dispatchEvent: (event: Event) => target.dispatchEvent(event),
    listening,
    established(type: string, more = 1) {
      const count = (awaited.get(type) ?? 0) + more
      awaited.set(type, count)
      return listening(type, count)
    },
  } as never
}
