// `prepare` (run by pnpm install) and the API's demo at start: builds dist/ when it is missing or
// older than the sources, so a fresh clone's `npm start` serves the demo. A failed build is
// reported but does not fail the install: the API still starts and the demo page says the widget
// bundle is missing. The freshness check is the workspace's scripts/fresh-build.mjs.
import { fileURLToPath } from 'node:url'
import { freshBuild } from '../../../scripts/fresh-build.mjs'

freshBuild({
  name: '@burnrate/widget',
  root: fileURLToPath(new URL('..', import.meta.url)),
  inputs: ['src', 'vite.config.ts'],
  outputs: ['dist/burnrate-widget.js', 'dist/burnrate-spend.js'],
  command: ['npm', 'run', 'build'],
  failure: 'the build failed; the demo page will say the bundle is missing.',
  force: process.argv.includes('--force'),
})
