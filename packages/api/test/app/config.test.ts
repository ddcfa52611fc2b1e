import { describe, expect, it } from 'vitest'
import { ConfigError, configSchema, defaultConfig, loadConfig } from '../../src/config.ts'

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`)
}

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({})
    expect(Object.keys(config).sort()).toEqual(Object.keys(configSchema.shape).sort())
    // What `pnpm start` on a fresh machine relies on: local only, embedded database under ./.data.
    expect(config).toMatchObject({
      PORT: 4000,
      HOST: '127.0.0.1',
      DATABASE_URL: undefined,
      DATA_DIR: './.data',
      MAX_BODY_BYTES: 8 * 1024 * 1024,
      GRAPHIQL: true,
      DEV_TENANT: true,
      CATALOG_SYNC_ON_START: true,
      LOG_LEVEL: 'info',
    })
    // Tuning limits may be retuned, but are always set.
    for (const key of [
      'DB_POOL_SIZE',
      'GRAPHQL_MAX_DEPTH',
      'GRAPHQL_MAX_COST',
      'GRAPHQL_MAX_ALIASES',
      'SHUTDOWN_TIMEOUT_MS',
    ] as const) {
      expect(Number.isInteger(config[key]) && config[key] > 0, key).toBe(true)
    }
    expect(defaultConfig()).toEqual(config)
  })

  it('honours PORT, DATABASE_URL and the other settings, coercing numbers and booleans', () => {
    const config = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgres://burnrate:secret@db.internal:5432/burnrate',
      MAX_BODY_BYTES: '2048',
      GRAPHIQL: 'false',
      DEV_TENANT: '0',
      CATALOG_SYNC_ON_START: 'no',
      LOG_LEVEL: 'debug',
    })
    expect(config.PORT).toBe(8080)
    expect(config.DATABASE_URL).toBe('postgres://burnrate:secret@db.internal:5432/burnrate')
    expect(config.MAX_BODY_BYTES).toBe(2048)
    expect(config.GRAPHIQL).toBe(false)
    expect(config.DEV_TENANT).toBe(false)
    expect(config.CATALOG_SYNC_ON_START).toBe(false)
    expect(config.LOG_LEVEL).toBe('debug')
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/x' }).DATABASE_URL).toBe('postgresql://localhost/x')
    expect(loadConfig({ GRAPHIQL: 'yes' }).GRAPHIQL).toBe(true)
  })

  it('ignores variables it does not know', () => {
    expect(loadConfig({ HOME: '/root', PATH: '/bin', PORT: '5000' }).PORT).toBe(5000)
  })

  it('reports every bad value at once in one ConfigError', () => {
    const error = configError({ PORT: 'abc', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', HOST: 'localhost' })
    expect(error.issues).toHaveLength(3)
    const byKey = Object.fromEntries(error.issues.map((issue) => [issue.split(':')[0], issue]))
    expect(Object.keys(byKey).sort()).toEqual(['DATABASE_URL', 'LOG_LEVEL', 'PORT'])
    expect(byKey.PORT).toContain('"abc"')
    expect(byKey.DATABASE_URL).toContain('postgres://')
    expect(byKey.DATABASE_URL).toContain('"mysql://x"')
    expect(byKey.LOG_LEVEL).toContain('"loud"')
    // The message is what the start command prints: every issue on its own line.
    for (const issue of error.issues) expect(error.message).toContain(`  - ${issue}`)
    expect(error.message.split('\n')).toHaveLength(4)
  })

  it('rejects out-of-range and malformed numbers and booleans', () => {
    for (const [key, value] of [
      ['PORT', '70000'],
      ['PORT', '-1'],
      ['PORT', '80.5'],
      ['DB_POOL_SIZE', '0'],
      ['MAX_BODY_BYTES', '10'],
      ['GRAPHQL_MAX_DEPTH', '1'],
      ['GRAPHIQL', 'maybe'],
    ] as const) {
      const error = configError({ [key]: value })
      expect(error.issues, `${key}=${value}`).toHaveLength(1)
      expect(error.issues[0]).toMatch(new RegExp(`^${key}: `))
    }
  })

  it('treats empty strings as unset, so `PORT= DATABASE_URL=` in a .env file means the defaults', () => {
    const config = loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '', DATA_DIR: '', GRAPHIQL: '', HOST: '' })
    expect(config.PORT).toBe(4000)
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config.LOG_LEVEL).toBe('info')
    expect(config.DATA_DIR).toBe('./.data')
    expect(config.GRAPHIQL).toBe(true)
    expect(config.HOST).toBe('127.0.0.1')
    // Whitespace alone is blank too: Number(' ') is 0, which would silently bind a random port.
    expect(loadConfig({ PORT: ' ', MAX_BODY_BYTES: '\t' })).toMatchObject({
      PORT: 4000,
      MAX_BODY_BYTES: 8 * 1024 * 1024,
    })
  })

  it('defaultConfig applies overrides on top of the defaults', () => {
    const config = defaultConfig({ PORT: 0, MAX_BODY_BYTES: 2048 })
    expect(config.PORT).toBe(0)
    expect(config.MAX_BODY_BYTES).toBe(2048)
    expect(config.LOG_LEVEL).toBe('info')
  })
})
