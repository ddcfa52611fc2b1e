import Stripe from 'stripe'
import type { HttpRoute } from '../shared/http-route.ts'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { enqueueStripeAlert } from './alerts.ts'
import type { StripeService } from './service.ts'

/** Stripe's recommended tolerance between the signed timestamp and now. */
export const WEBHOOK_TOLERANCE_SECONDS = 300

// Only the static webhook helpers are used here: no API key is needed to verify a signature.
const verifier = new Stripe('sk_test_verification_only', { telemetry: false })

interface SampleError {
  error_message?: string
  request?: { identifier?: string }
}
interface ErrorReportData {
  developer_message_summary?: string
  reason?: { error_types?: { code?: string; sample_errors?: SampleError[] }[] }
}

/**
 * POST /webhooks/stripe?tenant=<tenant id>: each tenant points its own Stripe account's event
 * destinations here — snapshot events (invoice.*) and thin events (the meter error report) need
 * two destinations, each with its own signing secret — and stores both with setStripeCredentials.
 * The signature (HMAC-SHA256 over `t.payload`, 300 s tolerance, constant-time comparison) is
 * checked by the Stripe SDK against either secret before anything is parsed.
 */
export function stripeWebhookRoute({
  db,
  clock,
  logger,
  stripe,
}: {
  db: Db
  clock: Clock
  logger: Logger
  stripe: StripeService
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
      let event: { id: string; type: string; created: number | string; data?: unknown; object?: string }
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
      const fresh = await db
        .insertInto('stripe_webhook_events')
        .values({ tenant_id: tenantId, event_id: event.id, type: event.type })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst()
      if (Number(fresh.numInsertedOrUpdatedRows ?? 0n) === 0)
        return reply(res, 200, { received: true, duplicate: true })
      try {
        if (event.type === 'v1.billing.meter.error_report_triggered') await handleErrorReport(tenantId, event)
        else if (event.type.startsWith('invoice.')) await handleInvoice(tenantId, event)
      } catch (error) {
        // Let Stripe redeliver: forget we saw it.
        await db
          .deleteFrom('stripe_webhook_events')
          .where('tenant_id', '=', tenantId)
          .where('event_id', '=', event.id)
          .execute()
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

  /**
   * Meter events are validated asynchronously: Stripe accepts a call, then reports the events it
   * could not apply. Those pushes become FAILED (visible in stripePushes, retryable with
   * retryStripePushes). A thin event (no data) is fetched from the API.
   */
  async function handleErrorReport(tenantId: string, event: { id: string; data?: unknown }) {
    let data = event.data as ErrorReportData | undefined
    if (!data) {
      const found = await stripe.clientFor(tenantId)
      if (!found) throw new Error('no Stripe key to fetch the event with')
      data = ((await found.client.v2.core.events.retrieve(event.id)) as unknown as { data?: ErrorReportData }).data
    }
    const now = clock.now()
    await db.transaction().execute(async (trx) => {
      for (const type of data?.reason?.error_types ?? []) {
        for (const sample of type.sample_errors ?? []) {
          const identifier = sample.request?.identifier
          if (!identifier) continue
          const reason = `Stripe error report: ${type.code ?? 'error'}: ${sample.error_message ?? ''}`.slice(0, 500)
          const failed = await trx
            .updateTable('stripe_pushes')
            .set({ status: 'FAILED', last_error: reason })
            .where('tenant_id', '=', tenantId)
            .where('identifier', '=', identifier)
            .where('status', 'in', ['SENT', 'PENDING'])
            .returningAll()
            .executeTakeFirst()
          // The push and its stripe.push_failed alert commit together (a redelivered report is a no-op).
          if (failed) await enqueueStripeAlert(trx, 'stripe.push_failed', failed, reason, now, stripe.alertAttempts)
        }
      }
    })
    logger.warn('stripe meter error report', { tenantId, eventId: event.id, summary: data?.developer_message_summary })
  }

  async function handleInvoice(tenantId: string, event: { type: string; created: number | string; data?: unknown }) {
    const invoice = (event.data as { object?: Record<string, unknown> } | undefined)?.object
    if (
      !invoice ||
      invoice.object !== 'invoice' ||
      typeof invoice.id !== 'string' ||
      typeof invoice.customer !== 'string'
    )
      return
    const created =
      typeof event.created === 'number' ? event.created : Math.floor(new Date(event.created).getTime() / 1000)
    const customer = await db
      .selectFrom('customers')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('stripe_customer_id', '=', invoice.customer)
      .executeTakeFirst()
    const seconds = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000) : null)
    const values = {
      stripe_customer_id: invoice.customer,
      customer_id: customer?.id ?? null,
      status: typeof invoice.status === 'string' ? invoice.status : null,
      currency: typeof invoice.currency === 'string' ? invoice.currency : null,
      total: typeof invoice.total === 'number' ? invoice.total : null,
      period_start: seconds(invoice.period_start),
      period_end: seconds(invoice.period_end),
      hosted_invoice_url: typeof invoice.hosted_invoice_url === 'string' ? invoice.hosted_invoice_url : null,
      event_created: created,
      updated_at: clock.now(),
    }
    // Events arrive out of order: an older event never overwrites a newer state.
    await db
      .insertInto('stripe_invoices')
      .values({ tenant_id: tenantId, invoice_id: invoice.id, ...values })
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'invoice_id'])
          .doUpdateSet(values)
          .where('stripe_invoices.event_created', '<=', created),
      )
      .execute()
  }
}
