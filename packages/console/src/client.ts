import { print } from '@0no-co/graphql.web'
import type { TadaDocumentNode } from 'gql.tada'
import { createClient, type Client } from 'graphql-sse'

/**
 * The console's only way to the API: GraphQL over fetch with the session cookie (same origin,
 * HttpOnly: the page never holds a key), the CSRF token in a header on mutations, and
 * subscriptions over server-sent events (graphql-sse, distinct connections), also cookie-borne.
 */

export interface Session {
  csrfToken: string
  role: 'ADMIN' | 'READ_ONLY'
  tenant: { id: string; name: string }
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly field?: string,
  ) {
    super(message)
  }
}

let csrfToken: string | null = null
let onSignedOut: (() => void) | null = null

export function whenSignedOut(handler: () => void) {
  onSignedOut = handler
}

const SESSION = '/console/api/session'

async function sessionCall(method: 'GET' | 'POST' | 'DELETE', body?: unknown): Promise<Session | null> {
  const response = await fetch(SESSION, {
    method,
    credentials: 'same-origin',
    headers: {
      accept: 'application/json',
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(method === 'DELETE' && csrfToken ? { 'x-csrf-token': csrfToken } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
  if (method === 'DELETE') return null
  if (response.status === 401 && method === 'GET') return null
  const json = (await response.json().catch(() => null)) as
    (Session & { error?: never }) | { error?: { code?: string; message?: string; field?: string } } | null
  if (!response.ok || !json || !('csrfToken' in json)) {
    const e = json && 'error' in json ? json.error : undefined
    throw new ApiError(
      e?.message ?? (response.status === 401 ? 'That key was not accepted.' : `Sign-in failed (${response.status}).`),
      e?.code ?? (response.status === 401 ? 'UNAUTHENTICATED' : 'SIGN_IN_FAILED'),
      e?.field,
    )
  }
  csrfToken = json.csrfToken
  return json
}

export const currentSession = () => sessionCall('GET')
export const signIn = (key: string) => sessionCall('POST', { key }) as Promise<Session>
export async function signOut() {
  await sessionCall('DELETE').catch(() => undefined)
  csrfToken = null
}

type Vars<V> = V extends Record<string, never> ? Record<string, never> | undefined : V

export async function request<R, V>(document: TadaDocumentNode<R, V>, variables?: Vars<V>): Promise<R> {
  const query = print(document)
  const mutation = /^\s*mutation\b/.test(query)
  const response = await fetch('/graphql', {
    method: 'POST',
    credentials: 'same-origin',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(mutation && csrfToken ? { 'x-csrf-token': csrfToken } : {}),
    },
    body: JSON.stringify({ query, variables: variables ?? {} }),
  })
  const json = (await response.json().catch(() => null)) as {
    data?: R
    errors?: { message: string; extensions?: { code?: string; field?: string } }[]
  } | null
  const error = json?.errors?.[0]
  if (error) {
    const code = error.extensions?.code ?? 'ERROR'
    if (code === 'UNAUTHENTICATED') onSignedOut?.()
    throw new ApiError(error.message, code, error.extensions?.field)
  }
  if (!json?.data) throw new ApiError(`The API answered ${response.status}.`, 'HTTP_' + response.status)
  return json.data
}

let sse: Client | null = null

/** A live subscription; returns the function that ends it. */
export function subscribe<R, V>(
  document: TadaDocumentNode<R, V>,
  variables: Vars<V>,
  onData: (data: R) => void,
  onError?: (error: unknown) => void,
): () => void {
  sse ??= createClient({ url: '/graphql', credentials: 'same-origin', retryAttempts: 5 })
  return sse.subscribe<R>(
    { query: print(document), variables: (variables ?? {}) as Record<string, unknown> },
    {
      next: (value) => value.data && onData(value.data as R),
      error: (error) => onError?.(error),
      complete: () => undefined,
    },
  )
}
