// `prepare` (run by pnpm install): builds dist/ when it is missing or older than the sources, so a
// fresh clone's `npm start` serves the demo. A failed build is reported but does not fail the
// install: the API still starts and the demo page says the widget bundle is missing.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const outputs = ['dist/burnrate-widget.js', 'dist/burnrate-spend.js'].map((f) => join(root, f))

function newest(dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

const sourcesChanged = Math.max(newest(join(root, 'src')), statSync(join(root, 'vite.config.ts')).mtimeMs)
const fresh = outputs.every((f) => existsSync(f) && statSync(f).mtimeMs >= sourcesChanged)
if (fresh && !process.argv.includes('--force')) {
  console.log('@burnrate/widget: dist is up to date')
} else {
  const result = spawnSync('npm', ['run', 'build'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  })
  if (result.status !== 0)
    console.warn('@burnrate/widget: the build failed; the demo page will say the bundle is missing.')
}
