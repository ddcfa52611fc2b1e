import { useEffect, useId, useRef, type ReactNode } from 'react'
import type { ApiError } from './client.ts'

/** Shared building blocks: every page shows loading, error and empty states the same way. */

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    document.title = `${title} · Burnrate console`
    // Focus moves to the new page's heading after navigation (screen readers announce it).
    ref.current?.focus({ preventScroll: true })
  }, [title])
  return (
    <header className="page-header">
      <h1 tabIndex={-1} ref={ref}>
        {title}
      </h1>
      {children ? <div className="page-actions">{children}</div> : null}
    </header>
  )
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  const id = useId()
  return (
    <section className="card" aria-labelledby={id}>
      <div className="card-head">
        <h2 id={id}>{title}</h2>
        {actions ? <div className="card-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  )
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="state loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </p>
  )
}

export function ErrorBox({ error, retry }: { error: ApiError; retry?: () => void }) {
  return (
    <div className="state error" role="alert">
      <strong>{error.code === 'FORBIDDEN' ? 'Not allowed' : 'Could not load'}</strong>: {error.message}{' '}
      <code>{error.code}</code>
      {retry ? (
        <button type="button" onClick={retry}>
          Retry
        </button>
      ) : null}
    </div>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state empty">{children}</p>
}

/** Loading → error → empty → content, for one query. */
export function Async<T>({
  state,
  empty,
  isEmpty,
  children,
  what,
}: {
  state: { data: T | undefined; error: ApiError | null; loading: boolean; refetch: () => unknown }
  isEmpty?: (data: T) => boolean
  empty?: ReactNode
  what?: string
  children: (data: T) => ReactNode
}) {
  if (state.error && !state.data) return <ErrorBox error={state.error} retry={() => void state.refetch()} />
  if (!state.data) return <Loading what={what} />
  if (isEmpty?.(state.data)) return <Empty>{empty ?? 'Nothing here yet.'}</Empty>
  return (
    <>
      {state.error ? <ErrorBox error={state.error} retry={() => void state.refetch()} /> : null}
      {children(state.data)}
    </>
  )
}

export function Stat({
  label,
  value,
  hint,
  testId,
}: {
  label: string
  value: ReactNode
  hint?: ReactNode
  testId?: string
}) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" data-testid={testId}>
        {value}
      </div>
      {hint ? <div className="stat-hint">{hint}</div> : null}
    </div>
  )
}

export function Badge({
  tone = 'neutral',
  children,
}: {
  tone?: 'ok' | 'warn' | 'bad' | 'neutral'
  children: ReactNode
}) {
  return <span className={`badge ${tone}`}>{children}</span>
}

/** A mutation's last error, announced (role=alert): its message and code. */
export function MutationError({ error }: { error: ApiError | null }) {
  if (!error) return null
  return (
    <p className="state error inline" role="alert">
      {error.message} <code>{error.code}</code>
    </p>
  )
}

/**
 * A button that runs a mutation (useMutation: refresh in its onDone, its error in a MutationError where
 * the page shows it) with these variables; disabled while that mutation is pending. With `confirm`, the
 * browser asks that question first and Cancel runs nothing.
 */
export function ActionButton<V>({
  action,
  variables,
  confirm,
  className,
  children,
}: {
  action: { run: (variables: V) => Promise<unknown>; pending: boolean }
  variables: V
  confirm?: string
  className?: string
  children: ReactNode
}) {
  return (
    <button
      type="button"
      className={className}
      disabled={action.pending}
      onClick={() => {
        if (confirm && !window.confirm(confirm)) return
        void action.run(variables)
      }}
    >
      {children}
    </button>
  )
}

/** Previous / next for a forward-only Relay connection: the cursors walked so far make "previous" possible. */
export function Pager({
  cursors,
  setCursors,
  pageInfo,
  labels = ['Previous', 'Next'],
}: {
  cursors: string[]
  setCursors: (cursors: string[]) => void
  pageInfo: { hasNextPage: boolean; endCursor?: string | null | undefined }
  labels?: [string, string]
}) {
  return (
    <div className="row">
      <button
        type="button"
        className="ghost"
        disabled={!cursors.length}
        onClick={() => setCursors(cursors.slice(0, -1))}
      >
        {labels[0]}
      </button>
      <button
        type="button"
        className="ghost"
        disabled={!pageInfo.hasNextPage}
        onClick={() => setCursors([...cursors, pageInfo.endCursor!])}
      >
        {labels[1]}
      </button>
    </div>
  )
}

/**
 * A titled section showing one query's data: loading, error (with retry) and empty states inside the
 * card. `before` stands above the data whatever its state: the list's FilterBar, a mutation's error.
 */
export function DataSection<T>({
  title,
  actions,
  before,
  state,
  isEmpty,
  empty,
  what,
  children,
}: {
  title: string
  actions?: ReactNode
  before?: ReactNode
  state: { data: T | undefined; error: ApiError | null; loading: boolean; refetch: () => unknown }
  isEmpty?: (data: T) => boolean
  empty?: ReactNode
  what?: string
  children: (data: T) => ReactNode
}) {
  return (
    <Section title={title} actions={actions}>
      {before}
      <Async state={state} isEmpty={isEmpty} empty={empty} what={what ?? `Loading ${title.toLowerCase()}`}>
        {children}
      </Async>
    </Section>
  )
}

/** Filters above a list: one labelled search form; "Clear" when any filter is set. */
export function FilterBar({
  label,
  children,
  onClear,
  active,
}: {
  label: string
  children: ReactNode
  onClear?: () => void
  active?: boolean
}) {
  return (
    <form role="search" aria-label={label} className="filter-bar" onSubmit={(e) => e.preventDefault()}>
      {children}
      {onClear && active ? (
        <button type="button" className="ghost" onClick={onClear}>
          Clear
        </button>
      ) : null}
    </form>
  )
}
