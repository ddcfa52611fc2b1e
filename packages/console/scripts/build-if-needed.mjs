// `prepare` (run by pnpm install) and the API at start: builds dist/ when it is missing or older than
// the sources, so a fresh clone's `npm start` serves the console at /console. A failed build is
// reported but does not fail the install: the API still starts and /console says the build is missing.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const output = join(root, 'dist', 'index.html')

function newest(dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

const sourcesChanged = Math.max(
  newest(join(root, 'src')),
  ...['vite.config.ts', 'index.html'].map((f) => statSync(join(root, f)).mtimeMs),
)
const fresh = existsSync(output) && statSync(output).mtimeMs >= sourcesChanged
if (fresh && !process.argv.includes('--force')) {
  console.log('@burnrate/console: dist is up to date')
} else {
  const result = spawnSync('npm', ['run', 'build'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  })
  if (result.status !== 0) console.warn('@burnrate/console: the build failed; /console will say the build is missing.')
}
