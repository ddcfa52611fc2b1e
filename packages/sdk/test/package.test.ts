import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fakeApi } from './fake-api.ts'

/**
 * The package as a consumer gets it: built with its own `build` config into a scratch
 * node_modules/@burnrate/sdk holding only package.json and what `files` ships, then imported by plain
 * `node` (no TypeScript loader) and type-checked by a consumer under NodeNext and bundler resolution.
 */
const sdkRoot = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = join(sdkRoot, '../..')
const tsc = createRequire(join(sdkRoot, 'package.json')).resolve('typescript/bin/tsc')
let consumer: string

/** Async, so the fake API in this process can answer the child meanwhile. */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: consumer })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

beforeAll(() => {
  // tsc on a busy machine: the build below and the checks take tens of seconds.
  consumer = mkdtempSync(join(tmpdir(), 'burnrate-sdk-consumer-'))
  const installed = join(consumer, 'node_modules/@burnrate/sdk')
  const manifest = JSON.parse(readFileSync(join(sdkRoot, 'package.json'), 'utf8')) as { files: string[] }
  const build = spawnSync(
    process.execPath,
    [tsc, '-p', join(sdkRoot, 'tsconfig.build.json'), '--outDir', join(installed, 'dist')],
    { encoding: 'utf8' },
  )
  expect(build.stdout + build.stderr).toBe('')
  cpSync(join(sdkRoot, 'package.json'), join(installed, 'package.json'))
  for (const entry of manifest.files)
    if (entry !== 'dist') cpSync(join(sdkRoot, entry), join(installed, entry), { recursive: true })
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
})
afterAll(() => rmSync(consumer, { recursive: true, force: true }))

describe('@burnrate/sdk as a published package', () => {
  it('plain node imports it (both entry points), maps a response and meters it to an API', async () => {
    const api = await fakeApi()
    writeFileSync(
      join(consumer, 'run.mjs'),
      `import { createMeter, openai } from '@burnrate/sdk'
import { canonicalEventString } from '@burnrate/sdk/signing'
import { readFileSync } from 'node:fs'
const [url, fixture] = process.argv.slice(2)
const usage = openai.chatCompletion(JSON.parse(readFileSync(fixture, 'utf8')))
const meter = createMeter({ url, apiKey: 'br_sk_test' })
meter.record({ ...usage, customerId: 'plain-node' })
const closed = await meter.close()
console.log(JSON.stringify({ closed, sent: meter.stats.sent, canonical: typeof canonicalEventString }))
`,
    )
    const fixture = fileURLToPath(new URL('./fixtures/openai-chat-completion-audio.json', import.meta.url))
    const child = await run(['run.mjs', api.url, fixture])
    expect(child.stderr).toBe('')
    expect(JSON.parse(child.stdout)).toEqual({ closed: { done: true, remaining: 0 }, sent: 1, canonical: 'function' })
    expect(api.stored.get('chatcmpl-CJ3pXoN7kX2bW0vVqUe5dZ1rT8mLh')).toMatchObject({
      customerId: 'plain-node',
      units: [
        { unit: 'input_audio_tokens', quantity: '356' },
        { unit: 'output_audio_tokens', quantity: '142' },
      ],
    })
  })

  it(
    'its type declarations check in a strict consumer, NodeNext and bundler resolution alike',
    { timeout: 240_000 },
    async () => {
      writeFileSync(
        join(consumer, 'consumer.ts'),
        `import { anthropic, createMeter, meterStream, openai, type MeteredUsage, type UsageEvent } from '@burnrate/sdk'
import { signEvent } from '@burnrate/sdk/signing'

const meter = createMeter({ url: 'http://127.0.0.1:4000', apiKey: 'br_sk_test' })
const usage: MeteredUsage = anthropic.message({ id: 'msg_1', model: 'claude-sonnet-4-0', usage: { input_tokens: 1, output_tokens: 2 } })
const event: UsageEvent = { ...usage, customerId: 'acme' }
meter.record(event)
signEvent({ ...event, timestamp: usage.timestamp }, 'secret')

// The README's streaming call: stream keeps its literal type, other request fields pass through.
const messages = [{ role: 'user' as const, content: 'hi' }]
const params = openai.withStreamUsage({ model: 'gpt-4o', messages, stream: true })
export const streaming: true = params.stream
export const includeUsage: true = params.stream_options.include_usage

async function* chunks(): AsyncGenerator<{ choices: { delta: { content?: string } }[] }> {}
export async function read(): Promise<string> {
  let text = ''
  for await (const chunk of meterStream(chunks(), openai.chatCompletionStream(), (u) => u && meter.record({ ...u, customerId: 'acme' }))) {
    text += chunk.choices[0]?.delta.content ?? ''
  }
  return text
}
`,
      )
      const types = ['--typeRoots', join(repoRoot, 'node_modules/@types'), '--types', 'node']
      const common = ['--noEmit', '--strict', '--target', 'es2022', '--skipLibCheck', 'false', ...types, 'consumer.ts']
      const resolutions = [
        ['--module', 'nodenext', '--moduleResolution', 'nodenext'],
        ['--module', 'esnext', '--moduleResolution', 'bundler'],
      ]
      const checks = await Promise.all(resolutions.map((resolution) => run([tsc, ...resolution, ...common])))
      for (const [i, check] of checks.entries()) {
        expect(check.stdout + check.stderr, resolutions[i]!.join(' ')).toBe('')
        expect(check.status).toBe(0)
      }
    },
  )
})
