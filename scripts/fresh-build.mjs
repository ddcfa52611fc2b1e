// The one "build if needed" of the workspace, used by the sdk, widget and console packages'
// scripts/build-if-needed.mjs (their `prepare`, the test run's global setup, the API's start):
// a package's build runs when an output is missing or older than the newest of its inputs (files,
// or folders read recursively), or when forced. Each package says what its inputs, outputs and
// build command are, and what a failed build means for it.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function newest(path) {
  if (!statSync(path).isDirectory()) return statSync(path).mtimeMs
  let latest = 0
  for (const entry of readdirSync(path, { withFileTypes: true }))
    latest = Math.max(latest, newest(join(path, entry.name)))
  return latest
}

/**
 * Builds `root`'s package unless every output is newer than every input. `command` is
 * [executable, ...args], run in `root` with inherited output. Returns true when fresh or built;
 * on a failed build prints `failure` (console.error when `fatal`, else console.warn) and returns false.
 */
export function freshBuild({
  name,
  root,
  inputs,
  outputs,
  command,
  failure,
  fatal = false,
  force = false,
  quiet = false,
}) {
  const changed = Math.max(...inputs.map((input) => newest(join(root, input))))
  const built = outputs.map((output) => join(root, output))
  if (!force && built.every((file) => existsSync(file) && statSync(file).mtimeMs >= changed)) {
    if (!quiet) console.log(`${name}: dist is up to date`)
    return true
  }
  const [executable, ...args] = command
  const result = spawnSync(executable, args, {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32' && executable === 'npm',
  })
  if (result.status === 0) return true
  ;(fatal ? console.error : console.warn)(`${name}: ${failure}`)
  return false
}
