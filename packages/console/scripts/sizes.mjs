// The initial load of the console (index.html's own scripts, modulepreloads and stylesheets, gzipped)
// against its budget; route chunks loaded later are listed apart. Fails the build when over.
import { readdirSync, readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const LIMIT_KB = 150
const html = readFileSync(dist + 'index.html', 'utf8')
const initial = new Set([...html.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]))
const gz = (file) => gzipSync(readFileSync(dist + file), { level: 9 }).length
const kb = (n) => (n / 1024).toFixed(1).padStart(6)
let total = 0
for (const file of initial) {
  const size = gz(file)
  total += size
  console.log(`initial  ${file.padEnd(44)} ${kb(size)} KB gzipped`)
}
const lazy = readdirSync(dist + 'assets').filter((f) => /\.(js|css)$/.test(f) && !initial.has(`assets/${f}`))
for (const f of lazy) console.log(`on route ${('assets/' + f).padEnd(44)} ${kb(gz('assets/' + f))} KB gzipped`)
const ok = total <= LIMIT_KB * 1024
console.log(`${ok ? 'ok  ' : 'OVER'} initial JS+CSS ${kb(total)} KB gzipped (budget ${LIMIT_KB} KB)`)
if (!ok) {
  console.error('The console initial load is over its size budget.')
  process.exit(1)
}
