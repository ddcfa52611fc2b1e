/** The HTTP route Stripe posts tenants' events to: verifies the signature, then hands the event to the service. */
import Stripe from 'stripe'
import type { HttpRoute } from '../shared/http-route.ts'
import type { Clock } from '../clock.ts'
import type { Logger } from '../logger.ts'
import type { StripeEvent } from './inbox.ts'
import type { StripeService } from './service.ts'

/** Stripe's recommended tolerance between the signed timestamp and now. */
const WEBHOOK_TOLERANCE_SECONDS = 300

// Only the static webhook helpers are used here: no API key is needed to verify a signature.
const verifier = new Stripe('sk_test_verification_only', { telemetry: false })

/**
 * POST /webhooks/stripe?tenant=<tenant id>: each tenant points its own Stripe account's event
 * destinations here — snapshot events (invoice.*) and thin events (the meter error report) need
 * two destinations, each with its own signing secret — and stores both with setStripeCredentials.
 * The signature (HMAC-SHA256 over `t.payload`, 300 s tolerance, constant-time comparison) is
 * checked by the Stripe SDK against either secret before anything is parsed.
 */
export function stripeWebhookRoute({
  clock,
  logger,
  stripe,
}: {
  clock: Clock
  logger: Logger
  stripe: Pick<StripeService, 'webhookSecrets' | 'receiveEvent'>
}): HttpRoute {
  const reply = (res: Parameters<HttpRoute['handle']>[1], status: number, body: Record<string, unknown>) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  return {
    method: 'POST',
    path: '/webhooks/stripe',
    async handle(req, res, body) {
      const tenantId = new URL(req.url ?? '/', 'http://localhost').searchParams.get('tenant')
      const signature = req.headers['stripe-signature']
      if (!tenantId || typeof signature !== 'string')
        return reply(res, 400, { error: 'expected ?tenant=<tenant id> and a Stripe-Signature header' })
      const secrets = await stripe.webhookSecrets(tenantId).catch(() => [])
      // The same answer for an unknown tenant and a bad signature: nothing to probe.
      if (secrets.length === 0) return reply(res, 400, { error: 'signature verification failed' })
      let event: StripeEvent
      try {
        // verifyHeader rather than constructEvent: the same scheme signs snapshot events and the
        // thin v2 events (v1.billing.meter.error_report_triggered) that constructEvent refuses.
        // Either destination's secret will do: which one signed is not something the body proves.
        const verifies = (secret: string) => {
          try {
            return verifier.webhooks.signature!.verifyHeader(
              body,
              signature,
              secret,
              WEBHOOK_TOLERANCE_SECONDS,
              undefined,
              clock.now().getTime(),
            )
          } catch {
            return false
          }
        }
        if (!secrets.some(verifies)) throw new Error('no secret verifies the signature')
        // The SDK bounds the age only; a timestamp from the future is as suspect as an old one.
        const signedAt = Number(/(?:^|,)t=(\d+)/.exec(signature)?.[1])
        if (signedAt > clock.now().getTime() / 1000 + WEBHOOK_TOLERANCE_SECONDS)
          throw new Error('timestamp in the future')
        event = JSON.parse(body.toString('utf8')) as typeof event
        if (typeof event?.id !== 'string' || typeof event.type !== 'string') throw new Error('not a Stripe event')
      } catch {
        return reply(res, 400, { error: 'signature verification failed' })
      }
      try {
        if ((await stripe.receiveEvent(tenantId, event)) === 'duplicate')
          return reply(res, 200, { received: true, duplicate: true })
      } catch (error) {
        logger.error('stripe webhook handling failed', {
          tenantId,
          eventId: event.id,
          error: error instanceof Error ? error.message : String(error),
        })
        return reply(res, 500, { error: 'handling failed; retry' })
      }
      reply(res, 200, { received: true })
    },
  }
}
