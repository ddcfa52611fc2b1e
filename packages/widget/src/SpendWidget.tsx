import { useEffect, useMemo, useRef, useState } from 'react'
import type { CSSProperties } from 'react'
import { createPortal } from 'react-dom'
import { createClient, type FetchToken } from './client.ts'
import { SpendView, type SpendViewProps } from './SpendView.tsx'
import { CSS } from './styles.ts'

export interface SpendWidgetProps extends Omit<SpendViewProps, 'client'> {
  /** The Burnrate GraphQL endpoint, e.g. https://burnrate.example.com/graphql. */
  endpoint: string
  /**
   * Asks your backend for a widget session (it calls createWidgetSession with your secret key) and
   * resolves to { token, customerId, expiresAt }. Called again whenever the session expires.
   */
  fetchToken: FetchToken
  className?: string
  style?: CSSProperties
}

/**
 * The spend widget as a React component. It renders into its own shadow root (attached to a
 * wrapper div), so the host app's CSS cannot change it and its CSS cannot leak out; theme it with
 * the `theme` prop or the --br-* custom properties on the wrapper (className / style).
 */
export function SpendWidget({ endpoint, fetchToken, className, style, ...view }: SpendWidgetProps) {
  const host = useRef<HTMLDivElement>(null)
  const [root, setRoot] = useState<ShadowRoot | null>(null)
  // The latest callback is always used, without recreating the client (and its session) on each render.
  const tokenRef = useRef(fetchToken)
  tokenRef.current = fetchToken
  const client = useMemo(() => createClient({ endpoint, fetchToken: () => tokenRef.current() }), [endpoint])

  useEffect(() => {
    const el = host.current
    if (el) setRoot(el.shadowRoot ?? el.attachShadow({ mode: 'open' }))
  }, [])

  return (
    <div ref={host} className={className} style={style} data-burnrate-widget="">
      {root &&
        createPortal(
          <>
            <style>{CSS}</style>
            <SpendView client={client} {...view} />
          </>,
          root,
        )}
    </div>
  )
}
