/**
 * The metering gateway's HTTP routes: OpenAI-compatible `POST /v1/chat/completions` and
 * Anthropic-compatible `POST /v1/messages`. The caller authenticates with its Burnrate tenant key
 * (Authorization: Bearer, or x-api-key as Anthropic clients send it) and names its customer in
 * `Burnrate-Customer`; the call goes to the provider with the tenant's stored key and comes back
 * unchanged (SSE streams piped through as they arrive), and the provider's own usage numbers are
 * recorded under the provider's response id — once, even when the client disconnects mid-stream.
 * The parts are in proxy/: providers, request checks, the per-call state, the upstream relay and
 * the usage recorder.
 */
import type { HttpRoute } from '../shared/http-route.ts'
import type { BudgetGate } from './budget-hold.ts'
import type { GatewayDeps } from './proxy/deps.ts'
import { PROVIDERS } from './proxy/providers.ts'
import { proxy } from './proxy/proxy.ts'
import { admit } from './proxy/request.ts'

export type { BudgetGate }

export function gatewayRoutes(deps: GatewayDeps): HttpRoute[] {
  return PROVIDERS.map((spec) => ({
    method: 'POST' as const,
    path: spec.path,
    admit: (req) => admit(deps, spec, req),
    handle: (req, res, body) => proxy(deps, spec, req, res, body),
  }))
}
