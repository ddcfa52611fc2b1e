import type { TadaDocumentNode } from 'gql.tada'
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react'
import { ApiError, request, subscribe, type Session } from './client.ts'

export interface QueryState<R> {
  data: R | undefined
  error: ApiError | null
  loading: boolean
  refetch: () => Promise<void>
}

/** One GraphQL query, re-run when its variables change; the last answer stays shown while reloading. */
export function useQuery<R, V>(
  document: TadaDocumentNode<R, V>,
  variables?: V,
  options: { skip?: boolean } = {},
): QueryState<R> {
  const key = JSON.stringify(variables ?? {})
  const [state, setState] = useState<{ data: R | undefined; error: ApiError | null; loading: boolean }>({
    data: undefined,
    error: null,
    loading: !options.skip,
  })
  const latest = useRef(0)
  const run = useCallback(async () => {
    const id = ++latest.current
    setState((s) => ({ ...s, loading: true }))
    try {
      const data = await request(document, JSON.parse(key) as never)
      if (id === latest.current) setState({ data, error: null, loading: false })
    } catch (error) {
      const e = error instanceof ApiError ? error : new ApiError(String(error), 'NETWORK')
      if (id === latest.current) setState((s) => ({ data: s.data, error: e, loading: false }))
    }
  }, [document, key])
  useEffect(() => {
    if (!options.skip) void run()
  }, [run, options.skip])
  return { ...state, refetch: run }
}

/**
 * A mutation with its pending flag and last error (shown beside the control that ran it, by MutationError).
 * `onDone` runs after it succeeded, with its answer and variables: refresh what it changed, show what it made.
 */
export function useMutation<R, V>(
  document: TadaDocumentNode<R, V>,
  options: { onDone?: (data: R, variables: V) => unknown } = {},
) {
  const [pending, setPending] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const onDone = useRef(options.onDone)
  onDone.current = options.onDone
  const run = useCallback(
    async (variables: V): Promise<R | null> => {
      setPending(true)
      setError(null)
      const data = await request(document, variables as never).catch((e: unknown) => {
        setError(e instanceof ApiError ? e : new ApiError(String(e), 'NETWORK'))
        return null
      })
      setPending(false)
      if (data !== null) await onDone.current?.(data, variables)
      return data
    },
    [document],
  )
  return { run, pending, error, reset: () => setError(null) }
}

/** Live updates: calls onData for every event while mounted. */
export function useSubscription<R, V>(document: TadaDocumentNode<R, V>, variables: V, onData: (data: R) => void) {
  const handler = useRef(onData)
  handler.current = onData
  const key = JSON.stringify(variables ?? {})
  useEffect(() => subscribe(document, JSON.parse(key) as never, (d) => handler.current(d)), [document, key])
}

export const SessionContext = createContext<Session | null>(null)
/** False for a READ_ONLY key: the console is in view mode and hides every control that changes something. */
export const useCanChange = () => useContext(SessionContext)?.role === 'ADMIN'
