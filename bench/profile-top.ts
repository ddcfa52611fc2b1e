/**
 * Summarizes a V8 .cpuprofile (from BENCH_CPU_PROFILE=… or node --cpu-prof): the functions with
 * the most self time, self time by package / source folder, and inclusive time by function, as
 * shares of the busy (non-idle) time. Inclusive time follows synchronous stacks only: an async
 * function's work after an await is counted under the microtask that resumed it.
 *
 *   npx tsx bench/profile-top.ts file.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } })
const file = positionals[0]
if (!file) {
  console.error('usage: npx tsx bench/profile-top.ts file.cpuprofile [--top 25]')
  process.exit(2)
}
const top = Number(values.top ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

function where(node: ProfileNode): string {
  const url = node.callFrame.url
  if (!url) return node.callFrame.functionName || '(native)'
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pnpm) return pnpm[2]!
  const ours = /\/(packages\/[^/]+\/src\/[^/]+)/.exec(url)
  if (ours) return ours[1]!
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  return url.replace(/^file:\/\//, '')
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const short = url
    ? `${url.replace(/^.*\/(node_modules\/\.pnpm\/[^/]+\/node_modules\/|packages\/)/, '')}:${lineNumber + 1}`
    : ''
  return `${functionName || '(anonymous)'} ${short}`.trim()
}

const self = new Map<string, number>()
const selfByPlace = new Map<string, number>()
const inclusive = new Map<string, number>()
let total = 0
for (const [i, sample] of profile.samples.entries()) {
  const dt = (profile.timeDeltas[i] ?? 0) / 1000
  const node = byId.get(sample)
  if (!node) continue
  total += dt
  self.set(label(node), (self.get(label(node)) ?? 0) + dt)
  selfByPlace.set(where(node), (selfByPlace.get(where(node)) ?? 0) + dt)
  const seen = new Set<string>()
  for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
    const l = label(byId.get(id)!)
    if (seen.has(l)) continue
    seen.add(l)
    inclusive.set(l, (inclusive.get(l) ?? 0) + dt)
  }
}

// Shares are of the time the thread was busy: (idle) is time spent waiting (for PostgreSQL, for requests).
const idle = self.get('(idle)') ?? 0
const busy = total - idle
const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title} (% of busy time)`)
  for (const [name, ms] of [...map.entries()]
    .filter(([name]) => name !== '(idle)' && name !== '(root)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)) {
    console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${name}`)
  }
}
console.log(
  `${file}: ${total.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy, ${idle.toFixed(0)} ms idle (${((idle / total) * 100).toFixed(0)} %)`,
)
print('self time by package / source folder', selfByPlace, top)
print('self time by function', self, top)
print('inclusive time by function', inclusive, top * 2)
