import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './support/api-process.ts'

/** Every workspace package's main, types, bin and exports name a file that exists (after install). */
describe('package entry points', () => {
  const packages = readdirSync(join(ROOT, 'packages'))
  it.each(packages)('%s', (name) => {
    const dir = join(ROOT, 'packages', name)
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>
    const targets: string[] = []
    const walk = (value: unknown) => {
      if (typeof value === 'string') targets.push(value)
      else if (value && typeof value === 'object') Object.values(value).forEach(walk)
    }
    for (const field of ['main', 'module', 'types', 'bin', 'exports']) walk(manifest[field])
    expect(targets.length, `${name} declares an entry point`).toBeGreaterThan(0)
    const missing = targets
      .filter((t) => t.startsWith('./') || !t.includes(':'))
      .filter((t) => !t.includes('*') && !existsSync(join(dir, t)))
    expect(missing).toEqual([])
  })
})
