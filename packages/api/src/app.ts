import type { IncomingMessage } from 'node:http'
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor'
import { useErrorHandler } from '@envelop/core'
import { GraphQLError, type ExecutionResult } from 'graphql'
import { createYoga, mapAsyncIterator, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import { renderGraphiQL } from '@graphql-yoga/render-graphiql'
import type { GraphQLContext, Principal } from './context.ts'
import { createLoaders } from './loaders.ts'
import { maskError } from './schema/errors.ts'
import { buildSchema } from './schema/index.ts'
import { mutationGuardPlugin } from './schema/mutation-guard.ts'
import { DomainError } from './shared/errors.ts'
import { requestIdFrom } from './shared/request-id.ts'
import { unsafeTextPlugin } from './schema/input-text.ts'
import { gatewayRoutes, type BudgetGate } from './gateway/routes.ts'
import { graphqlAdmission } from './http/admission.ts'
import { graphqlRequestGuards } from './http/graphql-guards.ts'
import type { Admission, HttpRoute } from './shared/http-route.ts'
import { createServices, type Dependencies, type Services } from './services.ts'
import { otlpTracesRoute } from './otlp/routes.ts'
import { usageBatchRoute } from './http/usage-batch-route.ts'
import { createOtlpService } from './otlp/service.ts'
import { instrumentUsage } from './observability/instrument.ts'
import { metricsPlugin } from './http/metrics-plugin.ts'
import { tracingPlugin } from './http/tracing-plugin.ts'
import { TracingPlugin } from './db/tracing-plugin.ts'
import { withPlugin } from './db/database.ts'
import { tracedFetch, tracingEnabled } from './observability/tracing.ts'
import { createMetrics, type Metrics } from './observability/metrics.ts'
import { metricsRoute, readinessRoute } from './observability/routes.ts'
import { stripeWebhookRoute } from './stripe/webhooks.ts'
import { authenticateWidgetRequest, widgetAwareCors, widgetTokenOf } from './widget-sessions/http.ts'
import { consolePrincipal, consoleSessionRoutes } from './auth/session-routes.ts'

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>
  services: Services
  /** Prometheus metrics of this app (GET /metrics). */
  metrics: Metrics
  /** Non-GraphQL endpoints; domains add theirs in createApp. */
  routes: HttpRoute[]
  /** Whether a request with a body may send it to /graphql, from its headers (content type, credentials). */
  admitGraphQL(req: IncomingMessage): Promise<Admission>
}

/** GraphiQL with its scripts and styles inside the page (no CDN: it works offline); rendered once. */
function offlineGraphiQL(): (options?: Parameters<typeof renderGraphiQL>[0]) => string {
  let page: string | undefined
  return (options) => (page ??= renderGraphiQL(options))
}

const requestIds = new WeakMap<Request, string>()

/** The caller's x-request-id when it is sane, else a new one; stable for the life of the request. */
function requestIdOf(request: Request): string {
  let id = requestIds.get(request)
  if (!id) {
    id = requestIdFrom(request.headers.get('x-request-id'))
    requestIds.set(request, id)
  }
  return id
}

const VARIABLE_ERROR = /^Variable "\$(\w+)" got invalid value .*?(?: at "([^"]+)")?;/
const VARIABLE_MISSING =
  /^Variable "\$(\w+)" of (?:non-null|required) type "[^"]+" (?:must not be null|was not provided)\./
const TOO_MANY_VARIABLE_ERRORS = /^Too many errors processing variables/
// graphql-armor's refusals (aliases, cost, depth, directives) carry no code of their own.
const ARMOR_LIMIT = /^Syntax Error: [\w ]+ limit of \d+ exceeded/

/**
 * Gives every error a code: masked errors carry the request id (so a user can quote it and an
 * operator can find the log line), and graphql-js's variable coercion errors (a fractional token
 * count, an unparseable timestamp) become BAD_USER_INPUT with the offending path as `field`.
 */
const errorCodesPlugin: Plugin<GraphQLContext> = {
  onExecute: () => ({
    onExecuteDone: ({ result }) => {
      if (!('errors' in result) || !result.errors) return
      for (const error of result.errors) {
        const extensions = error.extensions as Record<string, unknown>
        // Our scalars (Decimal, DateTime, JSON) give their refusals a code but cannot know the path.
        if (extensions.code && extensions.code !== 'BAD_USER_INPUT') continue
        const variable = VARIABLE_ERROR.exec(error.message) ?? VARIABLE_MISSING.exec(error.message)
        if (variable) {
          extensions.code = 'BAD_USER_INPUT'
          extensions.field ??= variable[2] ?? variable[1]
        } else if (TOO_MANY_VARIABLE_ERRORS.test(error.message)) {
          extensions.code = 'BAD_USER_INPUT'
        }
      }
    },
  }),
  // Tagged when the result is processed for the response: only then has yoga masked every error
  // (onExecuteDone runs before its masking), including those raised before execution, such as a
  // context factory failing because the database is down.
  onResultProcess: ({ request, result, setResult }) => {
    const requestId = requestIdOf(request)
    const tag = (single: ExecutionResult) => {
      for (const error of single.errors ?? []) {
        const extensions = error.extensions as Record<string, unknown>
        if (extensions.code === 'INTERNAL_SERVER_ERROR' || extensions.code === 'UNAVAILABLE')
          extensions.requestId = requestId
        else if (!extensions.code && ARMOR_LIMIT.test(error.message)) extensions.code = 'GRAPHQL_VALIDATION_FAILED'
      }
      return single
    }
    if (Symbol.asyncIterator in result) setResult(mapAsyncIterator(result, tag))
    else for (const single of Array.isArray(result) ? result : [result]) tag(single)
  },
  onResponse: ({ request, response }) => {
    response.headers.set('x-request-id', requestIdOf(request))
  },
}

/**
 * graphql-armor's refusals carry no code; they are validation failures like graphql-js's own,
 * which yoga codes GRAPHQL_VALIDATION_FAILED.
 */
const coded = (_context: unknown, error: GraphQLError): void => {
  ;(error.extensions as Record<string, unknown>).code ??= 'GRAPHQL_VALIDATION_FAILED'
}

/**
 * The GraphQL application, independent of any HTTP server: tests call `app.yoga.fetch`, the
 * server mounts it on node:http. All dependencies come in; nothing is global.
 */
export function createApp(given: Dependencies): App {
  // Tracing on (observability/tracing.ts): a span per database statement and per outgoing HTTP call.
  const deps: Dependencies = tracingEnabled()
    ? {
        ...given,
        db: withPlugin(given.db, new TracingPlugin()),
        webhookFetch: tracedFetch(given.webhookFetch),
        providerFetch: tracedFetch(given.providerFetch),
      }
    : given
  const { config, logger } = deps
  const metrics = createMetrics(deps)
  const created = createServices(deps)
  // Every ingest path (GraphQL, gateway, OTLP) goes through services.usage: counted and timed there.
  const services = { ...created, usage: instrumentUsage(created.usage, metrics) }

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: config.GRAPHIQL ? { title: 'Burnrate', defaultQuery: '{ tenant { id name } }' } : false,
    renderGraphiQL: offlineGraphiQL(),
    logging: false,
    // Batched HTTP requests would multiply every limit below by the batch size.
    batching: false,
    // Widget tokens only work from the origins their tenant allows (widget-sessions/http.ts).
    cors: widgetAwareCors(services.widgetSessions),
    // Domain errors become their coded GraphQL errors (schema/errors.ts); anything else unexpected
    // becomes "Unexpected error." with INTERNAL_SERVER_ERROR; errorCodesPlugin adds the request id.
    maskedErrors: { maskError },
    plugins: [
      // Before graphql-armor: its rules walk the parsed document recursively, so size comes first.
      graphqlRequestGuards(),
      EnvelopArmorPlugin({
        maxDepth: { n: config.GRAPHQL_MAX_DEPTH, ignoreIntrospection: true, onReject: [coded] },
        costLimit: { maxCost: config.GRAPHQL_MAX_COST, ignoreIntrospection: true, onReject: [coded] },
        maxAliases: { n: config.GRAPHQL_MAX_ALIASES, onReject: [coded] },
        // Counted before parsing by graphqlRequestGuards (armor's counter wraps the lexer in a Proxy per token).
        maxTokens: { enabled: false },
        maxDirectives: { n: 50, onReject: [coded] },
        blockFieldSuggestion: { enabled: false },
      }),
      useErrorHandler(({ errors, context, phase }) => {
        // In the execution phase envelop hands over the execution args, whose contextValue is ours; a
        // failing context factory hands over yoga's initial context, which has the request but no requestId.
        const partial = (
          phase === 'execution' ? (context as { contextValue?: unknown }).contextValue : context
        ) as Partial<GraphQLContext> & { request?: Request }
        const requestId = partial.requestId ?? (partial.request ? requestIdOf(partial.request) : undefined)
        for (const error of errors) {
          const unexpected =
            error instanceof GraphQLError
              ? error.originalError &&
                !(error.originalError instanceof GraphQLError) &&
                !(error.originalError instanceof DomainError)
              : !(error instanceof DomainError)
          if (unexpected) {
            const cause = error instanceof GraphQLError ? error.originalError : error
            logger.error('unexpected error', {
              requestId,
              path: error instanceof GraphQLError ? error.path?.join('.') : undefined,
              error: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause),
            })
          }
        }
      }),
      errorCodesPlugin,
      // READ_ONLY keys and console sessions without their CSRF token: no mutation runs.
      mutationGuardPlugin,
      unsafeTextPlugin,
      metricsPlugin(metrics),
      tracingPlugin(logger),
    ],
    context: async ({ request, ...serverContext }): Promise<GraphQLContext> => {
      const requestId = requestIdOf(request)
      let principal: Principal | null = null
      const header = request.headers.get('authorization')
      const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
      let credentialsProblem: GraphQLContext['credentialsProblem']
      const widgetToken = widgetTokenOf(request)
      if (widgetToken) {
        const widget = await authenticateWidgetRequest(services.widgetSessions, request, widgetToken, serverContext)
        principal = widget.principal
        credentialsProblem = widget.problem
      } else if (match?.[1]) {
        const found = await services.tenants.authenticateKey(match[1])
        if (found)
          principal = {
            kind: 'tenant',
            tenant: found.tenant,
            key: { id: found.key.id, name: found.key.name, role: found.key.role },
            authMethod: 'BEARER',
          }
      } else {
        principal = await consolePrincipal(services.consoleSessions, request)
      }
      return {
        services,
        requestId,
        principal,
        ...(credentialsProblem ? { credentialsProblem } : {}),
        loaders: createLoaders(services),
      }
    },
  })
  const routes: HttpRoute[] = [
    ...consoleSessionRoutes({
      consoleSessions: services.consoleSessions,
      ttlSeconds: config.CONSOLE_SESSION_TTL_SECONDS,
      logger,
      signInLimits: {
        perIp: config.CONSOLE_SIGN_IN_FAILURES_PER_IP,
        perKeyPrefix: config.CONSOLE_SIGN_IN_FAILURES_PER_KEY,
        windowMs: config.CONSOLE_SIGN_IN_WINDOW_SECONDS * 1000,
      },
      now: () => services.clock.now().getTime(),
    }),
    stripeWebhookRoute({ ...services, stripe: services.stripe }),
    // The gateway refuses calls over a hard budget when the budgets domain is present.
    ...gatewayRoutes({ ...services, budgets: (services as Partial<{ budgets: BudgetGate }>).budgets }),
    // recordUsageBatch without GraphQL: the same UsageService.record, hence the same ingest pipeline.
    usageBatchRoute({ tenants: services.tenants, usage: services.usage, logger, maxBodyBytes: config.MAX_BODY_BYTES }),
    // OTLP/HTTP trace export: GenAI spans become usage events through the same ingest.
    otlpTracesRoute({
      tenants: services.tenants,
      otlp: createOtlpService({
        record: (tenant, inputs) => services.usage.record(tenant, inputs),
        mapping: {
          customerAttributes: config.OTLP_CUSTOMER_ATTRIBUTES,
          featureAttributes: config.OTLP_FEATURE_ATTRIBUTES,
        },
      }),
      logger,
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxDecompressedBytes: 4 * config.MAX_BODY_BYTES,
      onExport: ({ result, status }) =>
        metrics.otlpExport({
          accepted: result?.accepted ?? 0,
          rejected: result?.rejected ?? 0,
          ignored: result?.ignored ?? 0,
          status,
        }),
    }),
  ]
  const admitGraphQL = graphqlAdmission({
    tenants: services.tenants,
    consoleSessions: services.consoleSessions,
    widgetSessions: services.widgetSessions,
    logger,
    maxBodyBytes: config.MAX_BODY_BYTES,
  })
  routes.push(
    metricsRoute({ metrics, token: config.METRICS_TOKEN, logger }),
    readinessRoute({ db: services.db, logger }),
  )
  return { yoga, services, metrics, routes, admitGraphQL }
}
