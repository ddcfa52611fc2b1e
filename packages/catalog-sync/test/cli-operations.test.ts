import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, fixedClock, type TestApp } from '../../api/test/support/app.ts'
import type { CatalogDB } from '../src/apply.ts'
import { runCli } from '../src/cli.ts'
import { fromOpenRouter } from '../src/sources/openrouter.ts'

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
const NOW = '2026-11-23T12:00:00Z'

/**
 * What a terminal shows for the CLI's writes, the way bin/catalog-sync.mjs writes them: stdout
 * lines end with a newline; stderr lines too, except progress updates, which start with "\r".
 */
function screen(writes: readonly string[]): string[] {
  const lines: string[] = []
  let line = ''
  let column = 0
  for (const write of writes) {
    for (let i = 0; i < write.length; i++) {
      if (write.startsWith('\x1b[2K', i)) {
        line = ''
        i += 3
      } else if (write[i] === '\r') column = 0
      else if (write[i] === '\n') {
        lines.push(line)
        line = ''
        column = 0
      } else {
        line = line.slice(0, column) + write[i] + line.slice(column + 1)
        column++
      }
    }
  }
  if (line) lines.push(line)
  return lines
}

describe('catalog-sync CLI operations', () => {
  let t: TestApp
  let server: Server
  let base: string
  const bodies = new Map<string, string>()

  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(NOW), loadCatalog: false, config: { CATALOG_ADMIN_TENANTS: [] } })
    server = createServer((req, res) => {
      const body = bodies.get(req.url ?? '')
      if (body === undefined) res.writeHead(404).end()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    bodies.set('/api/v1/models', fixture('openrouter-models.json'))
    bodies.set('/litellm.json', fixture('litellm-prices.json'))
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
    await t.close()
  })

  async function run(args: string[], options: { env?: NodeJS.ProcessEnv; isTty?: boolean; now?: string } = {}) {
    const out: string[] = []
    const err: string[] = []
    const writes: string[] = []
    const code = await runCli(args, {
      out: (line) => {
        out.push(line)
        writes.push(`${line}\n`)
      },
      err: (line) => {
        err.push(line)
        writes.push(line.startsWith('\r') ? line : `${line}\n`)
      },
      isTty: options.isTty ?? false,
      env: options.env ?? {},
      db: t.database.db as unknown as Kysely<CatalogDB>,
      now: () => new Date(options.now ?? NOW),
    })
    return { code, out, err, writes }
  }

  it('takes each source’s URL from its own flag, so several sources sync in one run', async () => {
    const result = await run([
      '--source',
      'openrouter,litellm',
      '--openrouter-url',
      `${base}/api/v1/models`,
      '--litellm-url',
      `${base}/litellm.json`,
      '--dry-run',
    ])
    expect(
      result.err.filter((line) => line.includes('failed')),
      result.err.join('\n'),
    ).toEqual([])
    expect(result.code).toBe(0)
    expect(result.out.some((line) => line.startsWith('openrouter '))).toBe(true)
    expect(result.out.some((line) => line.startsWith('litellm '))).toBe(true)
  })

  it('takes each source’s URL from its documented environment variable; a flag wins over it', async () => {
    const env = { OPENROUTER_MODELS_URL: `${base}/api/v1/models`, LITELLM_PRICES_URL: `${base}/missing.json` }
    const fromEnv = await run(['--source', 'openrouter', '--dry-run'], { env })
    expect(fromEnv.code, fromEnv.err.join('\n')).toBe(0)
    expect(fromEnv.out.at(-1)).toMatch(/^dry run \(nothing written\): models seen 4, /)
    const flagWins = await run(['--source', 'litellm', '--litellm-url', `${base}/litellm.json`, '--dry-run'], { env })
    expect(flagWins.code, flagWins.err.join('\n')).toBe(0)
  })

  it('refuses one --url for several sources instead of feeding one file to all of them', async () => {
    const result = await run(['--source', 'openrouter,litellm', '--url', `${base}/api/v1/models`])
    expect(result.code).toBe(2)
    expect(result.err.join('\n')).toContain('--openrouter-url')
  })

  it('clears the progress line before every other line, the summary included', async () => {
    const { writeFile: write, mkdtemp: temp } = await import('node:fs/promises')
    const file = join(await temp(join(tmpdir(), 'burnrate-')), 'overrides.yaml')
    const tenant = await t.createTenant('Progress')
    await write(
      file,
      `overrides:\n  - { tenant: ${tenant.id}, provider: openai, model: gpt-4o, usageType: input, unitPrice: "0.000002", effectiveFrom: "2026-11-01T00:00:00Z" }\n`,
    )
    const result = await run(
      ['--source', 'openrouter,overrides', '--openrouter-url', `${base}/api/v1/models`, '--file', file, '--dry-run'],
      { isTty: true },
    )
    expect(result.err.some((line) => line.startsWith('\r') && line.includes('[1/2]'))).toBe(true)
    const shown = screen(result.writes)
    expect(shown.filter((line) => /\[\d\/\d\]/.test(line))).toEqual([])
    expect(shown.at(-1)).toMatch(/^dry run \(nothing written\): models seen/)
  })

  it('writes no key with a doubled prefix (OpenRouter’s own openrouter/auto)', async () => {
    const snapshot = fromOpenRouter(JSON.parse(fixture('openrouter-models.json')))
    const keys = [...(snapshot.rejected ?? []), ...snapshot.skipped].map(
      (issue) => `${issue.model} ${issue.field ?? ''} ${issue.reason}`,
    )
    expect(keys.some((key) => key.startsWith('openrouter/auto'))).toBe(true)
    expect(keys.filter((key) => key.includes('openrouter/openrouter/'))).toEqual([])
    const result = await run(['--source', 'openrouter', '--openrouter-url', `${base}/api/v1/models`, '--dry-run'])
    expect(result.err.filter((line) => line.includes('openrouter/openrouter/'))).toEqual([])
  })
})

describe('catalog-sync CLI and the API’s view of it', () => {
  let t: TestApp
  let dir: string
  const clock = fixedClock(NOW)

  beforeAll(async () => {
    t = await createTestApp({ clock, loadCatalog: false })
    dir = await mkdtemp(join(tmpdir(), 'burnrate-cli-'))
  })
  afterAll(() => t.close())

  async function run(args: string[], now = NOW) {
    const out: string[] = []
    const err: string[] = []
    const code = await runCli(args, {
      out: (line) => void out.push(line),
      err: (line) => void err.push(line),
      isTty: false,
      env: {},
      db: t.database.db as unknown as Kysely<CatalogDB>,
      now: () => new Date(now),
    })
    return { code, out, err }
  }
  const openrouter = async (mutate?: (models: { data: { id: string; pricing: Record<string, string> }[] }) => void) => {
    const models = JSON.parse(fixture('openrouter-models.json'))
    mutate?.(models)
    const file = join(dir, `openrouter-${Math.random().toString(36).slice(2)}.json`)
    await writeFile(file, JSON.stringify(models))
    return file
  }

  it('counts only rows in force as unchanged, not the history a sync closed', async () => {
    const first = (await run(['--source', 'openrouter', '--url', await openrouter()])).out.at(-1)!
    const rows = Number(/rows opened (\d+), rows closed 0, unchanged 0,/.exec(first)?.[1])
    expect(rows, first).toBeGreaterThan(1)
    const cheaper = await openrouter((m) => (m.data[0]!.pricing.prompt = '0.000002'))
    const changed = await run(['--source', 'openrouter', '--url', cheaper], '2026-11-23T13:00:00Z')
    expect(changed.out.at(-1)).toContain(`rows opened 1, rows closed 1, unchanged ${rows - 1},`)
    // rows + 1 rows of the source now, one of them history: `rows` are in force and unchanged.
    const again = await run(['--source', 'openrouter', '--url', cheaper], '2026-11-23T14:00:00Z')
    expect(again.out.at(-1)).toContain(`rows opened 0, rows closed 0, unchanged ${rows},`)
  })

  it('records CLI syncs in catalogSources like the API’s own, failures included', async () => {
    const query = '{ catalogSources { source lastAttemptAt lastSuccessAt consecutiveFailures lastError } }'
    const after = await t.gql(query)
    expect(after.data?.catalogSources).toEqual([
      {
        source: 'openrouter',
        lastAttemptAt: '2026-11-23T14:00:00.000Z',
        lastSuccessAt: '2026-11-23T14:00:00.000Z',
        consecutiveFailures: 0,
        lastError: null,
      },
    ])
    const failed = await run(['--source', 'openrouter', '--url', join(dir, 'missing.json')], '2026-11-23T15:00:00Z')
    expect(failed.code).toBe(1)
    const state = (await t.gql(query)).data?.catalogSources[0]
    expect(state).toMatchObject({
      source: 'openrouter',
      lastAttemptAt: '2026-11-23T15:00:00.000Z',
      lastSuccessAt: '2026-11-23T14:00:00.000Z',
      consecutiveFailures: 1,
    })
    expect(state.lastError).toContain('missing.json')
    // A dry run writes nothing, not even the source's state.
    await run(['--source', 'openrouter', '--url', await openrouter(), '--dry-run'], '2026-11-23T16:00:00Z')
    expect((await t.gql(query)).data?.catalogSources[0]).toMatchObject({
      lastAttemptAt: '2026-11-23T15:00:00.000Z',
      consecutiveFailures: 1,
    })
  })

  it('counts conflicts exactly as catalogConflicts lists them (tiers included)', async () => {
    const genai = join(dir, 'genai.json')
    await writeFile(
      genai,
      JSON.stringify([
        {
          id: 'acme',
          models: [
            {
              id: 'rocket-x',
              prices: { input_mtok: { base: 1, tiers: [{ start: 200000, price: 2 }] }, output_mtok: 4 },
            },
          ],
        },
      ]),
    )
    const litellm = join(dir, 'litellm.json')
    await writeFile(
      litellm,
      JSON.stringify({
        'rocket-x': { litellm_provider: 'acme', mode: 'chat', input_cost_per_token: 1e-6, output_cost_per_token: 4e-6 },
      }),
    )
    await run(['--source', 'genai-prices-remote', '--url', genai])
    const result = await run(['--source', 'litellm', '--url', litellm])
    const listed = (await t.gql(`{ catalogConflicts(at: "${NOW}") { provider model usageType } }`)).data
      ?.catalogConflicts
    expect(listed).toEqual([{ provider: 'acme', model: 'rocket-x', usageType: 'input' }])
    expect(result.out.at(-1)).toMatch(/, conflicts 1$/)
  })

  it('confirms and rejects held changes, as confirmPriceChange and rejectPriceChange do', async () => {
    const tenfold = await openrouter((m) => {
      m.data[0]!.pricing.completion = '0.001'
      m.data[1]!.pricing.completion = '0.003'
    })
    const held = await run(['--source', 'openrouter', '--url', tenfold], '2026-11-24T00:00:00Z')
    expect(held.out.at(-1)).toMatch(/held 2,/)
    const pending = await run(['pending'])
    expect(pending.code).toBe(0)
    const ids = (await t.gql('{ pendingPriceChanges { id model usageType newUnitPrice } }')).data
      ?.pendingPriceChanges as { id: string; model: string }[]
    expect(ids).toHaveLength(2)
    for (const change of ids) expect(pending.out.join('\n')).toContain(change.model)

    const confirmed = await run(['confirm', ids[0]!.id])
    expect(confirmed.code, confirmed.err.join('\n')).toBe(0)
    const rejected = await run(['reject', ids[1]!.id])
    expect(rejected.code, rejected.err.join('\n')).toBe(0)
    expect((await t.gql('{ pendingPriceChanges { id } }')).data?.pendingPriceChanges).toEqual([])
    const inForce = async (model: string) =>
      (
        await t.gql(
          `{ providerPrices(provider: "openrouter", model: "${model}", at: "2026-11-24T01:00:00Z") { usageType unitPrice } }`,
        )
      ).data?.providerPrices.find((p: { usageType: string }) => p.usageType === 'output')?.unitPrice
    expect(await inForce(ids[0]!.model)).toBe(ids[0]!.model === 'openai/gpt-4o' ? '0.001' : '0.003')
    expect(await inForce(ids[1]!.model)).toBe(ids[1]!.model === 'openai/gpt-4o' ? '0.00001' : '0.000015')

    const again = await run(['confirm', ids[0]!.id])
    expect(again.code).toBe(1)
    expect(again.err.join('\n')).toContain(`no pending price change ${ids[0]!.id}`)
    expect((await run(['confirm'])).code).toBe(2)
    expect((await run(['confirm', 'x1'])).code).toBe(2)
  })

  it('every command an error message points to exists', async () => {
    // The API refuses confirmPriceChange to other tenants and points to the CLI: that command must run.
    const refusal = await t.gql('mutation { confirmPriceChange(id: "1") { id } }')
    const message = refusal.errors?.[0]?.message ?? ''
    const command = /`catalog-sync ([a-z]+) <id>`/.exec(message)
    expect(command, message).not.toBeNull()
    const result = await run([command![1]!, '999999'])
    expect(result.err.join('\n')).toContain('no pending price change 999999')
  })
})
