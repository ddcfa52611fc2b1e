import { join } from 'node:path'
import { z } from 'zod'

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** A duration ("1h", "15m", "30s", "500ms", "1d"; 0 = never), in milliseconds. */
const duration = (fallback: string) =>
  z
    .string()
    .regex(/^(0|\d+(\.\d+)?(ms|s|m|h|d))$/, 'must be a duration such as 1h, 15m or 30s, or 0 to turn polling off')
    .default(fallback)
    .transform((text) => {
      const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text)!
      return Math.round(
        Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms'],
      )
    })

/** A comma-separated list of attribute keys (at least one). */
const attributeKeys = (defaults: string) =>
  z
    .string()
    .default(defaults)
    .transform((text) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().max(255)).min(1))

/**
 * Every setting Burnrate reads, with its default. This module is the only reader of process.env;
 * everything else receives a Config.
 */
export const configSchema = z.object({
  PORT: int(0, 65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  /** Where the exportUsage mutation writes (one folder per tenant and run); default <DATA_DIR>/exports. */
  EXPORT_DIR: z.string().min(1).optional(),
  // S3-compatible export target (export/destination.ts): the exportUsage / startUsageExport destination S3 and
  // `pnpm export --out s3://bucket/prefix`. Credentials absent: the AWS SDK's default chain (AWS_ACCESS_KEY_ID, …).
  EXPORT_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  EXPORT_S3_REGION: z.string().min(1).default('us-east-1'),
  EXPORT_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')
    .optional(),
  EXPORT_S3_PREFIX: z
    .string()
    .default('')
    .transform((p) => p.replace(/^\/+|\/+$/g, '')),
  EXPORT_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  EXPORT_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  EXPORT_S3_FORCE_PATH_STYLE: bool.default(false),
  // Export jobs (startUsageExport): how often each process looks for queued jobs, and runs of a job whose
  // process died before it is FAILED.
  EXPORT_JOB_POLL_INTERVAL: duration('5s'),
  EXPORT_JOB_MAX_ATTEMPTS: int(1, 20).default(3),
  // Retention (export/retention-schedule.ts): raw usage events older than this many months (whole UTC months
  // before the current one) are archived to RETENTION_ARCHIVE, read back, verified and dropped; absent: never.
  RETENTION_RAW_EVENTS_MONTHS: int(1, 1200).optional(),
  /** A directory, or s3://bucket/prefix (EXPORT_S3_* client settings); default <DATA_DIR>/archive. */
  RETENTION_ARCHIVE: z.string().min(1).optional(),
  RETENTION_INTERVAL: duration('24h'),
  DB_POOL_SIZE: int(1, 200).default(10),
  // Subscriptions across processes: absent, live events stay in this process.
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  // Namespaces the Redis pub/sub channels, so deployments (or test runs) can share one Redis.
  REDIS_CHANNEL_PREFIX: z.string().max(100).default('burnrate:'),
  // Webhook delivery (webhooks/): a worker in every process; work is claimed with SKIP LOCKED.
  WEBHOOK_WORKER: bool.default(true),
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  WEBHOOK_MAX_ATTEMPTS: int(1, 50).default(8),
  WEBHOOK_BACKOFF_BASE_MS: int(10, 86_400_000).default(30_000),
  WEBHOOK_POLL_INTERVAL_MS: int(10, 600_000).default(1_000),
  /** Changes to one customer's usage within this window reach usageUpdates subscribers as one event. */
  USAGE_UPDATE_WINDOW_MS: int(0, 10_000).default(200),
  /** Group commit of single events (recordUsage, the gateway): how long the first of a group waits for others, in ms (0 = off). */
  INGEST_GROUP_COMMIT_MS: int(0, 100).default(1),
  /** A group is sent as soon as this many single events wait in it. */
  INGEST_GROUP_COMMIT_MAX: int(1, 1000).default(256),
  /** Groups written at the same time (each holds one database connection while it runs). */
  INGEST_GROUP_COMMIT_CONCURRENCY: int(1, 64).default(4),
  WEBHOOK_ALLOW_PRIVATE_TARGETS: bool.default(false),
  MAX_BODY_BYTES: int(1024, 100 * 1024 * 1024).default(8 * 1024 * 1024),
  // How long a client may take to send its request headers, and its whole request (body included).
  HTTP_HEADERS_TIMEOUT_MS: int(1_000, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(1_000, 3_600_000).default(60_000),
  GRAPHQL_MAX_DEPTH: int(2, 100).default(12),
  // A full usageEvents page (first: 500) with every field costs about 22,000 in graphql-armor's model.
  GRAPHQL_MAX_COST: int(100, 1_000_000).default(50_000),
  GRAPHQL_MAX_ALIASES: int(1, 1000).default(30),
  GRAPHIQL: bool.default(true),
  /** How long a console sign-in lasts (absolute, not sliding), in seconds: 5 minutes to 30 days; default 12 hours. */
  CONSOLE_SESSION_TTL_SECONDS: int(300, 2_592_000).default(43_200),
  /** Failed console sign-ins allowed per client IP, and per key prefix, in each window; then 429. */
  CONSOLE_SIGN_IN_FAILURES_PER_IP: int(1, 1_000_000).default(20),
  CONSOLE_SIGN_IN_FAILURES_PER_KEY: int(1, 1_000_000).default(10),
  CONSOLE_SIGN_IN_WINDOW_SECONDS: int(1, 86_400).default(900),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  DEV_TENANT: bool.default(true),
  // Dev only, with DEV_TENANT: the spend widget demo page at /demo (a demo customer with synthetic usage).
  DEMO: bool.default(true),
  CATALOG_SYNC_ON_START: bool.default(true),
  // Catalog polling (catalog/): how often each source in CATALOG_SOURCES is synced ("1h", "15m", "30s"; 0 = never).
  CATALOG_SYNC_INTERVAL: z
    .string()
    .regex(/^(0|\d+(\.\d+)?(ms|s|m|h|d))$/, 'must be a duration such as 1h, 15m or 30s, or 0 to turn polling off')
    .default('1h')
    .transform((text) => {
      const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text)!
      return Math.round(
        Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms'],
      )
    }),
  CATALOG_SOURCES: z
    .string()
    .default('genai-prices')
    .transform((text) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['genai-prices', 'genai-prices-remote', 'openrouter', 'litellm'])).min(1)),
  CATALOG_SOURCE_TIMEOUT_MS: int(100, 600_000).default(30_000),
  // Tenants (ids, comma-separated) allowed to confirm or reject held public price changes; empty: none (CLI only).
  CATALOG_ADMIN_TENANTS: z
    .string()
    .default('')
    .transform((text) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  OPENROUTER_MODELS_URL: z.url({ protocol: /^https?$/ }).optional(),
  LITELLM_PRICES_URL: z.url({ protocol: /^https?$/ }).optional(),
  GENAI_PRICES_URL: z.url({ protocol: /^https?$/ }).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // Metering gateway (gateway/): the master key that encrypts tenants' provider keys at rest; absent: the gateway is off.
  GATEWAY_ENCRYPTION_KEY: z
    .string()
    .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes: 64 hex characters or 44 base64 characters')
    .optional(),
  GATEWAY_OPENAI_URL: z.url({ protocol: /^https?$/ }).default('https://api.openai.com'),
  GATEWAY_ANTHROPIC_URL: z.url({ protocol: /^https?$/ }).default('https://api.anthropic.com'),
  // Longest wait for the provider's response headers, and longest silence between two chunks of its answer.
  GATEWAY_TIMEOUT_MS: int(100, 3_600_000).default(600_000),
  // Output tokens assumed (and, under a hard budget, sent as the cap) for a call that sets no max_tokens / max_completion_tokens.
  GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS: int(1, 1_000_000).default(16_384),
  // Hard budgets: a process leases room for this many calls at a time and holds calls on it in memory
  // (gateway/budget-leases.ts); 0 = reserve every call in its own transaction.
  GATEWAY_BUDGET_LEASE_CALLS: int(0, 10_000).default(32),
  // Provider reconciliation (reconciliation/): the master key that encrypts tenants' provider admin keys;
  // absent: GATEWAY_ENCRYPTION_KEY is used; neither: admin keys cannot be stored.
  RECONCILE_ENCRYPTION_KEY: z
    .string()
    .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes: 64 hex characters or 44 base64 characters')
    .optional(),
  // How often every tenant's provider usage is imported and reconciled ("1h", "6h"; 0 = only on demand).
  RECONCILE_INTERVAL: duration('1h'),
  // Days back each scheduled import re-reads (providers revise recent buckets).
  RECONCILE_LOOKBACK_DAYS: int(1, 31).default(3),
  RECONCILE_OPENAI_URL: z.url({ protocol: /^https?$/ }).default('https://api.openai.com'),
  RECONCILE_ANTHROPIC_URL: z.url({ protocol: /^https?$/ }).default('https://api.anthropic.com'),
  RECONCILE_OPENROUTER_URL: z.url({ protocol: /^https?$/ }).default('https://openrouter.ai'),
  RECONCILE_TIMEOUT_MS: int(100, 600_000).default(30_000),
  // Attempts after the first for a rate-limited (429, Retry-After honoured) or failing (5xx) report request.
  RECONCILE_MAX_RETRIES: int(0, 20).default(5),
  // Stripe Billing (stripe/): the master key that encrypts tenants' Stripe keys at rest; absent: Stripe is off.
  STRIPE_ENCRYPTION_KEY: z
    .string()
    .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes: 64 hex characters or 44 base64 characters')
    .optional(),
  STRIPE_API_URL: z.url({ protocol: /^https?$/ }).optional(),
  STRIPE_TIMEOUT_MS: int(100, 120_000).default(20_000),
  STRIPE_PUSH_ENABLED: bool.default(true),
  STRIPE_PUSH_INTERVAL_MS: int(100, 3_600_000).default(10_000),
  STRIPE_PUSH_CONCURRENCY: int(1, 64).default(8),
  STRIPE_PUSH_MAX_ATTEMPTS: int(1, 100).default(16),
  // OTLP ingest (otlp/): span attributes naming the customer and the feature, first present wins.
  OTLP_CUSTOMER_ATTRIBUTES: attributeKeys('burnrate.customer_id,enduser.id'),
  OTLP_FEATURE_ATTRIBUTES: attributeKeys('burnrate.feature'),
  // Observability (observability/): the bearer token GET /metrics requires; absent: /metrics answers 401.
  // Tracing of the API itself (observability/tracing.ts), by the standard OpenTelemetry variables: on with
  // OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint (OTLP/HTTP protobuf); off by default.
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  // The `service.name` of the API's spans (OTEL_RESOURCE_ATTRIBUTES adds further resource attributes).
  OTEL_SERVICE_NAME: z.string().min(1).max(200).default('burnrate-api'),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
})

export type Config = z.infer<typeof configSchema>

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** Parses the environment; throws a ConfigError listing every bad value at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input = Object.fromEntries(
    // Blank means unset: `PORT=` in a .env file must not coerce to port 0.
    Object.keys(configSchema.shape).map((key) => [key, env[key]?.trim() === '' ? undefined : env[key]]),
  )
  const result = configSchema.safeParse(input)
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map(
        (issue) =>
          `${issue.path.join('.') || '(root)'}: ${issue.message} (got ${JSON.stringify(input[String(issue.path[0])])})`,
      ),
    )
  }
  return result.data
}

/** The server-side export directory: EXPORT_DIR, else `<DATA_DIR>/exports`. */
export function exportDirOf(config: Pick<Config, 'EXPORT_DIR' | 'DATA_DIR'>): string {
  return config.EXPORT_DIR ?? join(config.DATA_DIR, 'exports')
}

/** Where retention archives partitions: RETENTION_ARCHIVE, else `<DATA_DIR>/archive`. */
export function retentionArchiveOf(config: Pick<Config, 'RETENTION_ARCHIVE' | 'DATA_DIR'>): string {
  return config.RETENTION_ARCHIVE ?? join(config.DATA_DIR, 'archive')
}

/** Defaults for tests and embedding: the schema's defaults plus overrides. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  return { ...configSchema.parse({}), ...overrides }
}
