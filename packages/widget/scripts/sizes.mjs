// Gzipped sizes of the built bundles, checked against the budgets (fails the build when over).
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const budgets = [
  { file: 'burnrate-widget.js', what: 'React component (React excluded)', limitKb: 25 },
  { file: 'burnrate-spend.js', what: 'standalone <burnrate-spend> (everything included)', limitKb: 70 },
]
let over = false
for (const { file, what, limitKb } of budgets) {
  const raw = readFileSync(dist + file)
  const gz = gzipSync(raw, { level: 9 }).length
  const ok = gz <= limitKb * 1024
  over ||= !ok
  console.log(
    `${ok ? 'ok  ' : 'OVER'} ${file.padEnd(20)} ${(raw.length / 1024).toFixed(1).padStart(6)} KB raw  ${(gz / 1024).toFixed(1).padStart(5)} KB gzipped  (budget ${limitKb} KB) — ${what}`,
  )
}
if (over) {
  console.error('A widget bundle is over its size budget.')
  process.exit(1)
}
