import { render, unmountComponentAtNode } from 'react-dom'
import { createClient, type FetchToken, type WidgetClient, type WidgetSession } from './client.ts'
import { SpendView, type ThemeName } from './SpendView.tsx'
import type { MessageOverrides } from './messages.ts'
import { CSS } from './styles.ts'

/**
 * <burnrate-spend endpoint="https://…/graphql" token-url="/api/burnrate-session"></burnrate-spend>
 *
 * The token comes from `el.fetchToken = async () => ({ token, customerId, expiresAt })` or from
 * `token-url`: a POST to your backend (same-origin cookies included) answering the
 * createWidgetSession result as JSON. Built with Preact (preact/compat) so one script carries all.
 */
export class BurnrateSpendElement extends HTMLElement {
  static observedAttributes = ['endpoint', 'token-url', 'locale', 'theme', 'refresh-interval', 'heading']
  #fetchToken: FetchToken | null = null
  #client: WidgetClient | null = null
  #clientKey = ''
  #root: ShadowRoot | null = null
  #messages: MessageOverrides | undefined

  /** UI words to override or add, by language tag: el.messages = { de: { title: 'KI-Nutzung' } }. */
  get messages(): MessageOverrides | undefined {
    return this.#messages
  }
  set messages(value: MessageOverrides | undefined) {
    this.#messages = value
    this.#render()
  }

  get fetchToken(): FetchToken | null {
    return this.#fetchToken
  }
  set fetchToken(fn: FetchToken | null) {
    this.#fetchToken = fn
    this.#clientKey = ''
    this.#render()
  }

  connectedCallback() {
    // A page may set el.fetchToken before this script defines the element: that set an own
    // property shadowing the accessor. Take it over.
    if (Object.prototype.hasOwnProperty.call(this, 'fetchToken')) {
      const early = (this as { fetchToken: FetchToken | null }).fetchToken
      delete (this as Partial<{ fetchToken: unknown }>).fetchToken
      this.#fetchToken = early
    }
    if (Object.prototype.hasOwnProperty.call(this, 'messages')) {
      const early = (this as { messages?: MessageOverrides }).messages
      delete (this as Partial<{ messages: unknown }>).messages
      this.#messages = early
    }
    this.#root ??= this.shadowRoot ?? this.attachShadow({ mode: 'open' })
    this.#render()
  }

  disconnectedCallback() {
    if (this.#root) unmountComponentAtNode(this.#root as unknown as Element)
    this.#clientKey = ''
  }

  attributeChangedCallback() {
    if (this.isConnected) this.#render()
  }

  #tokenFromUrl = async (): Promise<WidgetSession> => {
    const url = this.getAttribute('token-url')!
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { accept: 'application/json' },
    })
    if (!response.ok) throw new Error(`token-url answered HTTP ${response.status}`)
    const body = (await response.json()) as WidgetSession & { data?: { createWidgetSession?: WidgetSession } }
    return body.data?.createWidgetSession ?? body
  }

  #render() {
    if (!this.#root || !this.isConnected) return
    const endpoint = this.getAttribute('endpoint')
    const tokenUrl = this.getAttribute('token-url')
    const fetchToken = this.#fetchToken ?? (tokenUrl ? this.#tokenFromUrl : null)
    if (!endpoint || !fetchToken) {
      render(
        <>
          <style>{CSS}</style>
          <section className="br">
            <p className="muted">
              Set the <code>endpoint</code> attribute and a <code>token-url</code> attribute or a{' '}
              <code>fetchToken</code> property.
            </p>
          </section>
        </>,
        this.#root as unknown as Element,
      )
      return
    }
    const key = `${endpoint}\u0000${tokenUrl}`
    if (!this.#client || key !== this.#clientKey) {
      this.#client = createClient({ endpoint, fetchToken: () => (this.#fetchToken ?? this.#tokenFromUrl)() })
      this.#clientKey = key
    }
    const interval = this.getAttribute('refresh-interval')
    render(
      <>
        <style>{CSS}</style>
        <SpendView
          client={this.#client}
          locale={this.getAttribute('locale') ?? undefined}
          theme={(this.getAttribute('theme') as ThemeName | null) ?? 'auto'}
          refreshInterval={interval === null ? undefined : Number(interval)}
          title={this.getAttribute('heading') ?? undefined}
          messages={this.#messages}
        />
      </>,
      this.#root as unknown as Element,
    )
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('burnrate-spend')) {
  customElements.define('burnrate-spend', BurnrateSpendElement)
}

declare global {
  interface HTMLElementTagNameMap {
    'burnrate-spend': BurnrateSpendElement
  }
}
