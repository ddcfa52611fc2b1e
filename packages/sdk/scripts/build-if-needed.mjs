// `prepare` (run by pnpm install) and the test run's global setup: builds dist/ (ESM + .d.ts, with
// tsc) when it is missing or older than the sources, so `node` and tsx-run processes that import
// @burnrate/sdk get current JavaScript. Inside the workspace, tsc and vitest read the sources
// directly (the "@burnrate/source" export condition and a vitest alias), so a stale dist/ can only
// affect processes started outside them.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function newest(dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/** Builds unless dist/ is newer than every source and config file; returns false when the build failed. */
export function buildIfNeeded({ force = false, quiet = false } = {}) {
  const inputs = Math.max(
    newest(join(root, 'src')),
    ...['tsconfig.build.json', 'package.json', '../../tsconfig.base.json'].map((f) => statSync(join(root, f)).mtimeMs),
  )
  const outputs = ['dist/index.js', 'dist/index.d.ts', 'dist/signing.js'].map((f) => join(root, f))
  if (!force && outputs.every((f) => existsSync(f) && statSync(f).mtimeMs >= inputs)) {
    if (!quiet) console.log('@burnrate/sdk: dist is up to date')
    return true
  }
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: 'inherit',
  })
  if (result.status !== 0) console.error('@burnrate/sdk: the build failed (tsc -p packages/sdk/tsconfig.build.json)')
  return result.status === 0
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = buildIfNeeded({ force: process.argv.includes('--force') }) ? 0 : 1
}
