/**
 * Runs every benchmark in sequence, each in its own process (fresh heap, fresh database), with the
 * environment passed through (BENCH_EVENTS, BENCH_CLIENTS, … apply to each script that reads them),
 * then repeats their one-line RESULT summaries.
 *
 *   npx -y pnpm@10 bench        (= tsx bench/run-all.ts)
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const BENCHMARKS = ['ingest-batch', 'ingest-single', 'summary'] as const

function run(name: string, results: string[]): Promise<number> {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, file], { stdio: ['ignore', 'pipe', 'inherit'] })
    let pending = ''
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk)
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      results.push(...lines.filter((line) => line.startsWith('RESULT ')))
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
  })
}

const results: string[] = []
const failed: string[] = []
for (const name of BENCHMARKS) {
  const code = await run(name, results)
  if (code !== 0) failed.push(`${name} (exit ${code})`)
}
console.log(`\n${results.join('\n')}`)
if (failed.length) {
  console.error(`\nfailed: ${failed.join(', ')}`)
  process.exit(1)
}
console.log('\nall benchmarks finished')
