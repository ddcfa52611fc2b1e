// `prepare` (run by pnpm install) and the test run's global setup: builds dist/ (ESM + .d.ts, with
// tsc) when it is missing or older than the sources, so `node` and tsx-run processes that import
// @burnrate/sdk get current JavaScript. Inside the workspace, tsc and vitest read the sources
// directly (the "@burnrate/source" export condition and a vitest alias), so a stale dist/ can only
// affect processes started outside them. The freshness check is the workspace's scripts/fresh-build.mjs.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshBuild } from '../../../scripts/fresh-build.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Builds unless dist/ is newer than every source and config file; returns false when the build failed. */
export function buildIfNeeded({ force = false, quiet = false } = {}) {
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  return freshBuild({
    name: '@burnrate/sdk',
    root,
    inputs: ['src', 'tsconfig.build.json', 'package.json', '../../tsconfig.base.json'],
    outputs: ['dist/index.js', 'dist/index.d.ts', 'dist/signing.js'],
    command: [process.execPath, tsc, '-p', join(root, 'tsconfig.build.json')],
    failure: 'the build failed (tsc -p packages/sdk/tsconfig.build.json)',
    fatal: true,
    force,
    quiet,
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = buildIfNeeded({ force: process.argv.includes('--force') }) ? 0 : 1
}
