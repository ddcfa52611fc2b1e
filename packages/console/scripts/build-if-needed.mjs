// `prepare` (run by pnpm install) and the API at start: builds dist/ when it is missing or older than
// the sources, so a fresh clone's `npm start` serves the console at /console. A failed build is
// reported but does not fail the install: the API still starts and /console says the build is missing.
// The freshness check is the workspace's scripts/fresh-build.mjs.
import { fileURLToPath } from 'node:url'
import { freshBuild } from '../../../scripts/fresh-build.mjs'

freshBuild({
  name: '@burnrate/console',
  root: fileURLToPath(new URL('..', import.meta.url)),
  inputs: ['src', 'vite.config.ts', 'index.html'],
  outputs: ['dist/index.html'],
  command: ['npm', 'run', 'build'],
  failure: 'the build failed; /console will say the build is missing.',
  force: process.argv.includes('--force'),
})
