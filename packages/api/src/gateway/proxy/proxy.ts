/**
 * One gateway call from request to recorded usage: the tenant, customer and body checked, the
 * tenant's provider key looked up, the worst case held against a hard budget, the call sent and
 * its answer relayed (upstream.ts). Whatever path it takes, nothing stays held.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gatewayHoldTtlSeconds, holdForCall } from '../budget-hold.ts'
import { startCall } from './call.ts'
import type { GatewayDeps } from './deps.ts'
import type { ProviderSpec } from './providers.ts'
import { recorder } from './recorder.ts'
import { GATEWAY_DISABLED, NO_TENANT_KEY, readRequest, tenantKeyOf } from './request.ts'
import { relay, sendUpstream } from './upstream.ts'

export async function proxy(
  deps: GatewayDeps,
  spec: ProviderSpec,
  req: IncomingMessage,
  res: ServerResponse,
  rawBody: Buffer,
): Promise<void> {
  const { config, clock, logger } = deps
  const startedAt = clock.now()
  const call = startCall(deps, spec, res)

  try {
    if (!deps.gateway.enabled) return call.fail(503, 'gateway_disabled', GATEWAY_DISABLED)

    const apiKey = tenantKeyOf(req)
    const tenant = apiKey ? await deps.tenants.authenticate(apiKey) : null
    if (!tenant) return call.fail(401, 'authentication_error', NO_TENANT_KEY)

    const request = readRequest(req, rawBody)
    if (!request.ok) return call.fail(400, 'invalid_request_error', request.message)
    const { customerId, feature, payload } = request

    const providerKey = await deps.gateway.providerKey(tenant.id, spec.provider)
    if (!providerKey)
      return call.fail(
        400,
        'provider_key_missing',
        `No ${spec.provider} key is stored for this tenant: set one with the setProviderKey mutation.`,
      )

    const prepared = spec.prepare(payload)
    if (deps.budgets) {
      const hold = await holdForCall(
        {
          db: deps.db,
          clock,
          catalog: deps.catalog,
          rating: deps.rating,
          budgets: deps.budgets,
          leases: deps.budgetLeases ?? null,
          defaultMaxOutputTokens: config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS,
          ttlSeconds: gatewayHoldTtlSeconds(config),
        },
        spec.provider,
        tenant,
        customerId,
        payload,
      )
      if (hold.kind === 'refused') return call.fail(402, hold.type, hold.message)
      if (hold.kind === 'held') {
        if (hold.reservationId) call.hold(tenant, hold.reservationId)
        if (hold.lease) call.holdOnLease(hold.lease)
        // Under a hard budget the output cap the estimate assumed is the one the provider gets.
        if (hold.bound.defaultedOutputCap && spec.provider === 'openai')
          prepared.body = { ...prepared.body, max_completion_tokens: config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS }
      }
    }
    const record = recorder(deps, spec, tenant, customerId, feature, call.heldId())

    const upstream = await sendUpstream(deps, spec, call, req, providerKey, prepared.body)
    if (!upstream) return
    await relay({ logger, spec, call, res, prepared, startedAt, record }, upstream)
  } catch (error) {
    call.stopTimeout()
    logger.error('gateway: unexpected error', {
      provider: spec.provider,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    })
    await call.fail(500, 'internal_error', 'Unexpected gateway error.')
  } finally {
    // Whatever path was taken (refused upstream, unreachable, timed out, no usage, not recorded): nothing stays held.
    await call.releaseHold()
  }
}
