/**
 * Vitest global setup: child processes started by tests (the API under tsx, plain `node`) import
 * @burnrate/sdk's built dist/, so it is rebuilt first when the sources are newer (a checkout that
 * changed the SDK without a `pnpm install`).
 */
import { buildIfNeeded } from '../../packages/sdk/scripts/build-if-needed.mjs'

export default function setup() {
  if (!buildIfNeeded({ quiet: true })) throw new Error('@burnrate/sdk did not build: see the tsc errors above')
}
