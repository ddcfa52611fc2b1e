import { lazy, Suspense, useEffect, useState, type FormEvent } from 'react'
import { Link, Route, Router, Switch, useLocation } from 'wouter'
import { ApiError, currentSession, signIn, signOut, whenSignedOut, type Session } from './client.ts'
import { SessionContext } from './hooks.ts'
import { ErrorBox, Loading } from './ui.tsx'

// Route-level code splitting: the shell and sign-in load first, each page on first visit.
const Overview = lazy(() => import('./pages/overview.tsx'))
const Customers = lazy(() => import('./pages/customers.tsx'))
const CustomerPage = lazy(() => import('./pages/customer.tsx'))
const Prices = lazy(() => import('./pages/prices.tsx'))
const Unpriced = lazy(() => import('./pages/unpriced.tsx'))
const Billing = lazy(() => import('./pages/billing.tsx'))
const Webhooks = lazy(() => import('./pages/webhooks.tsx'))
const Audit = lazy(() => import('./pages/audit.tsx'))

const NAV = [
  ['/', 'Overview'],
  ['/customers', 'Customers'],
  ['/prices', 'Prices'],
  ['/unpriced', 'Unpriced'],
  ['/billing', 'Billing'],
  ['/webhooks', 'Webhooks'],
  ['/audit', 'Audit log'],
] as const

export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined)
  const [bootError, setBootError] = useState<ApiError | null>(null)
  useEffect(() => {
    whenSignedOut(() => setSession(null))
    currentSession()
      .then(setSession)
      .catch((e: unknown) => setBootError(e instanceof ApiError ? e : new ApiError(String(e), 'NETWORK')))
  }, [])
  if (bootError)
    return (
      <main className="center">
        <ErrorBox error={bootError} retry={() => location.reload()} />
      </main>
    )
  if (session === undefined)
    return (
      <main className="center">
        <Loading what="Checking your session" />
      </main>
    )
  if (!session) return <SignIn onSignedIn={setSession} />
  return (
    <SessionContext.Provider value={session}>
      <Router base="/console">
        <Shell session={session} onSignOut={() => void signOut().then(() => setSession(null))} />
      </Router>
    </SessionContext.Provider>
  )
}

function ThemeToggle() {
  const [theme, setTheme] = useState(
    () =>
      document.documentElement.dataset.theme ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'),
  )
  return (
    <button
      type="button"
      className="ghost"
      aria-pressed={theme === 'dark'}
      onClick={() => {
        const next = theme === 'dark' ? 'light' : 'dark'
        document.documentElement.dataset.theme = next
        localStorage.setItem('burnrate-console-theme', next)
        setTheme(next)
      }}
    >
      Dark theme
    </button>
  )
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [location] = useLocation()
  const current = (href: string) => (href === '/' ? location === '/' : location.startsWith(href))
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="brand">
          <span aria-hidden="true">◆</span> Burnrate
        </div>
        <nav aria-label="Console">
          <ul>
            {NAV.map(([href, label]) => (
              <li key={href}>
                <Link href={href} aria-current={current(href) ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <div className="tenant" data-testid="tenant-name">
            {session.tenant.name}
          </div>
          <div>
            <span className={`badge ${session.role === 'ADMIN' ? 'ok' : 'warn'}`} data-testid="role">
              {session.role === 'ADMIN' ? 'Admin' : 'View only'}
            </span>
          </div>
          <ThemeToggle />
          <button type="button" className="ghost" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </aside>
      <main id="main" tabIndex={-1}>
        {session.role === 'READ_ONLY' ? (
          <p className="banner" role="note">
            View mode: this key is read-only, so actions that change something are hidden.
          </p>
        ) : null}
        <Suspense fallback={<Loading what="Loading the page" />}>
          <Switch>
            <Route path="/" component={Overview} />
            <Route path="/customers" component={Customers} />
            <Route path="/customers/:id">{(p) => <CustomerPage id={decodeURIComponent(p.id)} />}</Route>
            <Route path="/prices" component={Prices} />
            <Route path="/unpriced" component={Unpriced} />
            <Route path="/billing" component={Billing} />
            <Route path="/webhooks" component={Webhooks} />
            <Route path="/audit" component={Audit} />
            <Route>
              <h1>Not found</h1>
              <p>
                No such page. <Link href="/">Back to the overview</Link>.
              </p>
            </Route>
          </Switch>
        </Suspense>
      </main>
    </div>
  )
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<ApiError | null>(null)
  const [pending, setPending] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setPending(true)
    setError(null)
    try {
      const session = await signIn(key.trim())
      setKey('')
      onSignedIn(session)
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(String(err), 'NETWORK'))
    } finally {
      setPending(false)
    }
  }
  useEffect(() => {
    document.title = 'Sign in · Burnrate console'
  }, [])
  return (
    <main className="center" id="main">
      <form className="card signin" onSubmit={(e) => void submit(e)}>
        <h1>
          <span aria-hidden="true">◆</span> Burnrate console
        </h1>
        <p>Sign in with a tenant secret key. It is exchanged for a session cookie and not stored in this browser.</p>
        <label htmlFor="key">Tenant secret key</label>
        <input
          id="key"
          name="key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="br_sk_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          required
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'key-error' : undefined}
        />
        {error ? (
          <p id="key-error" className="state error inline" role="alert">
            {error.message}
          </p>
        ) : null}
        <button type="submit" disabled={pending || !key.trim()}>
          {pending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}
