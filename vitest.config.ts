import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const require = createRequire(new URL('./packages/api/package.json', import.meta.url))

export default defineConfig({
  resolve: {
    // graphql ships CJS and ESM builds without an "exports" map: Node (and so yoga) loads the CJS
    // one, Vite would pick the ESM one for our sources, and `instanceof GraphQLError` would fail
    // across the two copies. One copy, as in production.
    alias: [
      { find: /^graphql$/, replacement: require.resolve('graphql') },
      // Tests run the SDK's sources, as tsc does through the "@burnrate/source" export condition;
      // processes the tests start (tsx) load its built dist/, which the global setup keeps current.
      { find: /^@burnrate\/sdk$/, replacement: fileURLToPath(new URL('./packages/sdk/src/index.ts', import.meta.url)) },
      {
        find: /^@burnrate\/sdk\/signing$/,
        replacement: fileURLToPath(new URL('./packages/sdk/src/signing.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: [
      './test/support/build-sdk.ts',
      './test/support/log-capture.ts',
      './packages/api/test/support/migrated-template.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Each test file gets its own database; two files at a time suits a 2-core machine.
    maxWorkers: 2,
    // Files share their worker's module graph instead of importing the whole API afresh each
    // (import was ~40 % of a run's worker time: 301 s of PGlite's, 257 s of PostgreSQL's). Safe
    // because nothing in src/ or the test support keeps module-level state a file could leak to
    // the next: every app, database, clock and server is built by the file that uses it and closed
    // in its afterAll; the one file with fake timers restores real ones after each test.
    isolate: false,
  },
})
