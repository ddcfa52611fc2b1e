import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../api/test/support/db.ts'
import { runCli } from '../src/cli.ts'
import type { CatalogDB } from '../src/apply.ts'
import type { Kysely } from 'kysely'

const fixturePath = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

describe('catalog-sync CLI', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  async function run(args: string[]) {
    const out: string[] = []
    const err: string[] = []
    const code = await runCli(args, {
      out: (line) => void out.push(line),
      err: (line) => void err.push(line),
      isTty: false,
      env: {},
      db: database.db as unknown as Kysely<CatalogDB>,
      now: () => new Date('2026-11-23T12:00:00Z'),
    })
    return { code, out, err }
  }
  const rows = async () =>
    Number(
      (
        await database.db
          .selectFrom('price_catalog')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )

  it('--dry-run reports what a sync would do and writes nothing', async () => {
    const { code, out } = await run([
      '--source',
      'openrouter',
      '--url',
      fixturePath('openrouter-models.json'),
      '--dry-run',
    ])
    expect(code).toBe(0)
    expect(out.at(-1)).toBe(
      'dry run (nothing written): models seen 4, rows opened 14, rows closed 0, unchanged 0, held 0, rejected 2, skipped 0, conflicts 0',
    )
    expect(await rows()).toBe(0)
  })

  it('syncs several sources once with a final summary, then a re-run is a no-op', async () => {
    const args = [
      '--source',
      'openrouter,litellm',
      '--openrouter-url',
      fixturePath('openrouter-models.json'),
      '--litellm-url',
      fixturePath('openrouter-models.json'),
      '--once',
    ]
    // litellm given OpenRouter's file is a schema change, reported, not applied.
    const mixed = await run(args)
    expect(mixed.code).toBe(1)
    expect(mixed.err.join('\n')).toContain('litellm failed (schema); the catalog is unchanged for it')
    expect(mixed.out.at(-1)).toMatch(
      /^models seen 4, rows opened 14, rows closed 0, unchanged 0, held 0, rejected 2, skipped 0, conflicts 0, failed: litellm$/,
    )
    const again = await run(['--source', 'openrouter', '--url', fixturePath('openrouter-models.json')])
    expect(again.code).toBe(0)
    expect(again.out.at(-1)).toBe(
      'models seen 4, rows opened 0, rows closed 0, unchanged 14, held 0, rejected 2, skipped 0, conflicts 0',
    )
  })

  it('applies an overrides file for its tenants', async () => {
    await database.db
      .insertInto('tenants')
      .values({ id: 't_cli', name: 'CLI', api_key_hash: 'x', api_key_prefix: 'x', signing_secret: 'x' })
      .execute()
    const { writeFile, mkdtemp } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const file = join(await mkdtemp(join(tmpdir(), 'burnrate-')), 'overrides.yaml')
    await writeFile(
      file,
      'overrides:\n  - { tenant: t_cli, provider: openai, model: gpt-4o, usageType: input, unitPrice: "0.000002", effectiveFrom: "2026-11-01T00:00:00Z" }\n',
    )
    const { code, out } = await run(['--source', 'overrides', '--file', file])
    expect(code).toBe(0)
    expect(out.at(-1)).toContain('rows opened 1')
    const row = await database.db
      .selectFrom('price_catalog')
      .select(['tenant_id', 'unit_price', 'source'])
      .where('tenant_id', '=', 't_cli')
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ tenant_id: 't_cli', unit_price: '0.000002', source: 'override' })
  })
})

describe('catalog-sync CLI and a source correcting the past', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  it('reports a correction from a stated start date, without --correct-from', async () => {
    const { writeFile, mkdtemp } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const file = join(await mkdtemp(join(tmpdir(), 'burnrate-')), 'data.json')
    const data = (prices: unknown) => JSON.stringify([{ id: 'acme', models: [{ id: 'rocket-x', prices }] }])
    const run = async (now: string) => {
      const out: string[] = []
      const code = await runCli(['--source', 'genai-prices-remote', '--url', file], {
        out: (line) => void out.push(line),
        err: () => {},
        isTty: false,
        env: {},
        db: database.db as unknown as Kysely<CatalogDB>,
        now: () => new Date(now),
      })
      return { code, out }
    }
    await writeFile(file, data({ input_mtok: 1 }))
    expect((await run('2026-11-01T00:00:00Z')).code).toBe(0)
    await writeFile(
      file,
      data([
        { prices: { input_mtok: 1 } },
        { constraint: { type: 'start_date', start_date: '2026-11-15' }, prices: { input_mtok: 0.8 } },
      ]),
    )
    const corrected = await run('2026-11-23T12:00:00Z')
    expect(corrected.code).toBe(0)
    expect(corrected.out).toContain(
      'genai-prices-remote: past corrected from 2026-11-15T00:00:00.000Z (acme/rocket-x input from 2026-11-15T00:00:00.000Z) — run repriceUsage for events since then',
    )
    expect(corrected.out.at(-1)).toMatch(/rows opened 1, rows closed 1, .* past corrected 1, conflicts 0$/)
    const again = await run('2026-11-24T12:00:00Z')
    expect(again.out.some((line) => line.includes('past corrected'))).toBe(false)
  })
})
