// What the first visit downloads, gzipped, against the budget: the entry (index.html's scripts and
// styles with their static imports) plus the Overview route the console opens on (its chunk and
// static imports). Other routes' chunks load on first visit and are listed apart. Fails when over.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const LIMIT_KB = 150
const manifest = JSON.parse(readFileSync(dist + '.vite/manifest.json', 'utf8'))
const gz = (file) => gzipSync(readFileSync(dist + file), { level: 9 }).length
const kb = (n) => (n / 1024).toFixed(1).padStart(6)

function closure(key, into = new Set()) {
  const chunk = manifest[key]
  if (!chunk || into.has(chunk.file)) return into
  into.add(chunk.file)
  for (const css of chunk.css ?? []) into.add(css)
  for (const dep of chunk.imports ?? []) closure(dep, into)
  return into
}
const initial = closure('index.html')
const overview = closure('src/pages/overview.tsx', new Set(initial))
let entryTotal = 0
for (const file of initial) {
  entryTotal += gz(file)
  console.log(`initial   ${file.padEnd(44)} ${kb(gz(file))} KB gzipped`)
}
let total = entryTotal
for (const file of overview) {
  if (initial.has(file)) continue
  total += gz(file)
  console.log(`overview  ${file.padEnd(44)} ${kb(gz(file))} KB gzipped`)
}
const all = new Set(Object.values(manifest).flatMap((c) => [c.file, ...(c.css ?? [])]))
for (const file of all)
  if (!overview.has(file) && /\.(js|css)$/.test(file))
    console.log(`on route  ${file.padEnd(44)} ${kb(gz(file))} KB gzipped`)
const ok = total <= LIMIT_KB * 1024
console.log(`entry (shell + sign-in) ${kb(entryTotal)} KB gzipped`)
console.log(`${ok ? 'ok  ' : 'OVER'} initial JS+CSS (shell + Overview) ${kb(total)} KB gzipped (budget ${LIMIT_KB} KB)`)
if (!ok) {
  console.error('The console initial load is over its size budget.')
  process.exit(1)
}
