import { createRequire } from 'node:module'
import { defineConfig } from 'vitest/config'

const require = createRequire(new URL('./packages/api/package.json', import.meta.url))

export default defineConfig({
  resolve: {
    // graphql ships CJS and ESM builds without an "exports" map: Node (and so yoga) loads the CJS
    // one, Vite would pick the ESM one for our sources, and `instanceof GraphQLError` would fail
    // across the two copies. One copy, as in production.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Each test file gets its own database; two files at a time suits a 2-core machine.
    maxWorkers: 2,
  },
})
