#!/usr/bin/env node
// The import graph of packages/api/src, checked: import cycles (madge) and "upward" arrows — an
// import from a lower layer into a higher one, in the layer order of docs/architecture.md:
//   0 base       shared/, money/, clock.ts, config.ts, logger.ts
//   1 db         db/
//   2 repository <domain>/repository.ts, <domain>/repository/, *-repository.ts, db-types.ts
//   3 service    every other module of a domain (service, pure logic), pubsub.ts, secrets/
//   4 wiring     services.ts, loaders.ts
//   5 edge       schema/, <domain>/schema.ts, context.ts, http/, HTTP routes and subscription transports
//   6 app        app.ts, demo/
//   7 entry      server.ts, main.ts, runtime.ts, index.ts, cli/
// Type-only imports count: a type is a dependency too.
// Usage: node scripts/check-imports.mjs [--list] [--fail-on-cycles] [--max-upward N]
import madge from 'madge'

const SRC = 'packages/api/src'
const args = process.argv.slice(2)
const list = args.includes('--list')
const failOnCycles = args.includes('--fail-on-cycles')
const maxAt = args.indexOf('--max-upward')
const maxUpward = maxAt >= 0 ? Number(args[maxAt + 1]) : Infinity

// Modules of a domain folder that serve HTTP or a subscription transport (the edge layer).
const EDGE_FILES = new Set([
  'gateway/routes.ts',
  'gateway/sse.ts',
  'stripe/webhooks.ts',
  'widget-sessions/http.ts',
  'subscriptions/streams.ts',
  'subscriptions/websocket.ts',
  'subscriptions/redis.ts',
  'usage/queries.ts',
  'auth/session-routes.ts',
])
// Folders of a domain whose every module serves HTTP (the metering gateway's proxy).
const EDGE_DIRS = ['gateway/proxy/']
const LAYERS = ['base', 'db', 'repository', 'service', 'wiring', 'edge', 'app', 'entry']

export function layerOf(file) {
  const top = file.split('/')[0]
  const base = file.split('/').at(-1)
  if (['shared', 'money'].includes(top) || ['clock.ts', 'config.ts', 'logger.ts'].includes(file)) return 0
  if (top === 'db') return 1
  if (
    file.includes('/repository/') ||
    base === 'repository.ts' ||
    base.endsWith('-repository.ts') ||
    base === 'db-types.ts'
  )
    return 2
  if (['services.ts', 'loaders.ts'].includes(file)) return 4
  if (top === 'schema' || top === 'http' || base === 'schema.ts' || file.includes('/schema/') || file === 'context.ts')
    return 5
  if (EDGE_FILES.has(file) || EDGE_DIRS.some((dir) => file.startsWith(dir))) return 5
  if (file === 'app.ts' || top === 'demo') return 6
  if (['server.ts', 'main.ts', 'runtime.ts', 'index.ts'].includes(file) || top === 'cli') return 7
  return 3
}

const result = await madge(SRC, {
  fileExtensions: ['ts'],
  tsConfig: 'packages/api/tsconfig.json',
  excludeRegExp: [/node_modules/, /^\.\.\//],
})
const graph = result.obj()
const upward = []
let arrows = 0
for (const [from, tos] of Object.entries(graph)) {
  for (const to of tos) {
    if (to.startsWith('..')) continue
    arrows++
    if (layerOf(from) < layerOf(to)) upward.push([from, to])
  }
}
const cycles = result.circular()

console.log(`import graph of ${SRC}: ${Object.keys(graph).length} files, ${arrows} arrows`)
console.log(`cycles: ${cycles.length}`)
for (const c of cycles) console.log(`  ${c.join(' > ')}`)
console.log(`upward arrows: ${upward.length}`)
if (list || upward.length <= 50)
  for (const [from, to] of upward) console.log(`  ${from} (${LAYERS[layerOf(from)]}) -> ${to} (${LAYERS[layerOf(to)]})`)

let failed = false
if (failOnCycles && cycles.length > 0) {
  console.error(`FAIL: ${cycles.length} import cycle(s)`)
  failed = true
}
if (upward.length > maxUpward) {
  console.error(`FAIL: ${upward.length} upward arrows, at most ${maxUpward} allowed`)
  failed = true
}
process.exit(failed ? 1 : 0)
