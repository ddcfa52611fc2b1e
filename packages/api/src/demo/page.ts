/**
 * The demo SaaS page. Static HTML: options (?theme=dark, ?locale=de-DE, ?hostile) are read by its
 * own script, so nothing from the URL is ever written into the markup by the server.
 */
export function demoPage({ bundleReady }: { bundleReady: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lumen Notes · Billing & usage (Burnrate widget demo)</title>
<style>
  body { margin: 0; font: 15px/1.5 Georgia, "Times New Roman", serif; background: #f3f1ec; color: #2b2620; }
  header { display: flex; align-items: center; gap: 12px; padding: 14px 28px; background: #2b2620; color: #f3f1ec; }
  header b { font-size: 18px; letter-spacing: .02em; }
  header span { opacity: .7; font-size: 13px; }
  .layout { display: grid; grid-template-columns: 200px minmax(0, 1fr) 260px; gap: 28px; padding: 28px; max-width: 1280px; margin: 0 auto; }
  nav a { display: block; padding: 6px 10px; color: inherit; text-decoration: none; border-radius: 6px; }
  nav a[aria-current] { background: #e4dfd4; font-weight: bold; }
  main h1 { margin: 0 0 4px; font-size: 26px; }
  main p.lead { margin: 0 0 20px; color: #6b6257; }
  aside { font-size: 13px; }
  aside section { background: #fffdf8; border: 1px solid #e4dfd4; border-radius: 10px; padding: 14px; margin-bottom: 16px; }
  aside h2 { font-size: 14px; margin: 0 0 8px; }
  aside button { display: block; width: 100%; margin: 6px 0; padding: 8px; font: inherit; border: 1px solid #b9ae9c; background: #fff; border-radius: 6px; cursor: pointer; }
  aside code { font-size: 12px; }
  .missing { background: #fff4e5; border: 1px solid #f0b45b; padding: 16px; border-radius: 10px; }
  @media (max-width: 1000px) { .layout { grid-template-columns: 1fr; } }
</style>
<style id="hostile" media="not all">
  /* ?hostile: what a careless host stylesheet does; the widget must look the same. */
  * { font-size: 40px !important; color: red !important; line-height: 3 !important; letter-spacing: 4px !important; }
  div, section, span, p, li, button, svg, rect { background: yellow !important; border: 3px dashed lime !important; padding: 12px !important; margin: 8px !important; }
  ul, ol { list-style: disc !important; }
  table { border-collapse: separate !important; }
  html { font-size: 5px !important; }
</style>
</head>
<body>
<header><b>Lumen Notes</b><span>AI workspace · Acme Inc. team</span></header>
<div class="layout">
  <nav aria-label="Settings">
    <a href="#">Profile</a><a href="#">Team</a><a href="#" aria-current="page">Billing &amp; usage</a><a href="#">Integrations</a>
  </nav>
  <main>
    <h1>Billing &amp; usage</h1>
    <p class="lead">Your AI usage this period, billed per call. Updated live.</p>
    ${
      bundleReady
        ? '<burnrate-spend id="widget" token-url="/demo/session" heading="AI usage and spend"></burnrate-spend>'
        : '<div class="missing" role="alert"><b>The widget bundle is not built.</b> Run <code>npx pnpm@10 --filter @burnrate/widget build</code> and reload.</div>'
    }
  </main>
  <aside>
    <section>
      <h2>Demo controls</h2>
      <button type="button" id="usage">Simulate a few calls</button>
      <button type="button" id="big">Simulate a large agent run</button>
      <p id="result" role="status"></p>
    </section>
    <section>
      <h2>Try</h2>
      <p><a href="?theme=dark">Dark theme</a> · <a href="?locale=de-DE">de-DE</a> · <a href="?locale=ja-JP">ja-JP</a> · <a href="?hostile">Hostile CSS</a> · <a href="?">Default</a></p>
      <p>This page's backend mints a short-lived widget token for its signed-in customer (<code>POST /demo/session</code> → <code>createWidgetSession</code> with the dev tenant's key); the widget never sees a secret key.</p>
    </section>
  </aside>
</div>
<script type="module">
  const params = new URLSearchParams(location.search)
  if (params.has('hostile')) document.getElementById('hostile').media = 'all'
  const widget = document.getElementById('widget')
  if (widget) {
    widget.setAttribute('endpoint', new URL('/graphql', location.href).href)
    for (const name of ['theme', 'locale', 'refresh-interval']) if (params.get(name)) widget.setAttribute(name, params.get(name))
    import('/demo/burnrate-spend.js')
  }
  const result = document.getElementById('result')
  const simulate = async (scale) => {
    result.textContent = 'Recording…'
    const response = await fetch('/demo/usage?scale=' + scale, { method: 'POST' })
    const body = await response.json()
    result.textContent = response.ok ? 'Recorded ' + body.recorded + ' call(s), $' + Number(body.amount).toFixed(4) + ' billed.' : 'Failed: ' + JSON.stringify(body)
  }
  document.getElementById('usage').onclick = () => simulate(1)
  document.getElementById('big').onclick = () => simulate(40)
</script>
</body>
</html>
`
}
