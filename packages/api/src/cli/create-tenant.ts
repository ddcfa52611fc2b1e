import { parseArgs } from 'node:util'
import { DataDirLockedError } from '@burnrate/catalog-sync'
import { createTenantService } from '../auth/service.ts'
import { ConfigError, loadConfig } from '../config.ts'
import { openDatabase, systemClock } from '../runtime.ts'

const usage = 'usage: tenant:create --name <name> [--require-signatures] [--currency USD]'

function parseOptions() {
  try {
    return parseArgs({
      options: {
        name: { type: 'string' },
        'require-signatures': { type: 'boolean', default: false },
        currency: { type: 'string', default: 'USD' },
        help: { type: 'boolean', default: false },
      },
    }).values
  } catch (error) {
    // A typo (--nmae) or a stray positional is a usage error like a missing --name, not a crash with a stack trace.
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
    process.exit(2)
  }
}

async function main() {
  const values = parseOptions()
  if (values.help || !values.name) {
    console.error(usage)
    process.exit(values.help ? 0 : 2)
  }
  if (!/^[A-Z]{3}$/.test(values.currency ?? '')) {
    console.error('--currency must be an ISO 4217 code such as USD')
    process.exit(2)
  }
  const config = loadConfig()
  const db = await openDatabase(config, undefined, 'tenant:create')
  try {
    const created = await createTenantService({ db, clock: systemClock }).create({
      name: values.name,
      requireSignatures: values['require-signatures'],
      currency: values.currency,
    })
    console.log(`tenant         ${created.tenant.id} (${created.tenant.name})`)
    console.log(`api key        ${created.apiKey}`)
    console.log(`signing secret ${created.signingSecret}`)
    console.log('Store both now: the key is kept only as a hash and cannot be shown again.')
  } finally {
    await db.destroy()
  }
}

main().catch((error: unknown) => {
  if (error instanceof DataDirLockedError) {
    console.error(
      `refused: ${error.message}. PGlite allows one process at a time: stop it and run this again, or use PostgreSQL (DATABASE_URL).`,
    )
    process.exit(1)
  }
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
})
