// Bundled by test/widget.browser.test.ts (with React 18) to render the React component in Chromium.
import { createRoot } from 'react-dom/client'
import { SpendWidget } from '../src/index.ts'

const page = window as unknown as { calls: number; ENDPOINT: string }
page.calls = 0
createRoot(document.getElementById('root')!).render(
  <SpendWidget
    endpoint={page.ENDPOINT}
    fetchToken={async () => {
      page.calls++
      return (await fetch('/demo/session', { method: 'POST' })).json()
    }}
    locale="de-DE"
    theme={{ mode: 'dark', accent: '#14b8a6' }}
    title="KI-Nutzung"
  />,
)
