/**
 * Burnrate's API as a library: what `npm start` (src/main.ts) composes, for embedding the server
 * in a process of your own or driving it from tests — config, database, the app and its HTTP server.
 */
export { createApp, type App } from './app.ts'
export type { HttpRoute } from './shared/http-route.ts'
export { startServer, type RunningServer } from './server.ts'
export { ConfigError, defaultConfig, loadConfig, type Config } from './config.ts'
export { createDatabase, migrateToLatest, type Db, type DatabaseOptions } from './db/database.ts'
export { openDatabase } from './runtime.ts'
export { fixedClock, systemClock, type Clock } from './clock.ts'
export { createLogger, type Logger, type LogLevel } from './logger.ts'
