import { requireTenant } from '../auth/guard.ts'
import { builder } from '../schema/builder.ts'
import type { WebhookAttemptRow, WebhookEndpointRow } from './db-types.ts'
import { WEBHOOK_EVENT_TYPES, type DeliveryView } from './service.ts'

const WebhookEndpoint = builder.objectRef<WebhookEndpointRow>('WebhookEndpoint').implement({
  description: 'An HTTPS endpoint of the tenant that receives signed event deliveries.',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    eventTypes: t.field({ type: ['String'], description: WEBHOOK_EVENT_TYPES.join(', '), resolve: (e) => e.event_types }),
    description: t.exposeString('description', { nullable: true }),
    enabled: t.exposeBoolean('enabled'),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.created_at }),
  }),
})

const CreatedWebhookEndpoint = builder.objectRef<{ endpoint: WebhookEndpointRow; secret: string }>('CreatedWebhookEndpoint').implement({
  fields: (t) => ({
    endpoint: t.field({ type: WebhookEndpoint, resolve: (c) => c.endpoint }),
    secret: t.exposeString('secret', {
      description:
        'Shown once. Verify each delivery: Burnrate-Signature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of \'<t>.<raw body>\' with this secret>"; compare in constant time and refuse old timestamps.',
    }),
  }),
})

const WebhookDeliveryStatus = builder.enumType('WebhookDeliveryStatus', {
  values: {
    PENDING: { description: 'Waiting for its next attempt (or in one).' },
    SUCCEEDED: { description: 'The endpoint answered 2xx.' },
    DEAD: { description: 'Every attempt failed; replayWebhookDelivery gives it another round.' },
  } as const,
})

const WebhookAttempt = builder.objectRef<WebhookAttemptRow>('WebhookAttempt').implement({
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    startedAt: t.field({ type: 'DateTime', resolve: (a) => a.started_at }),
    durationMs: t.exposeInt('duration_ms'),
    statusCode: t.exposeInt('status_code', { nullable: true }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed: HTTP status, timeout or connection error.' }),
  }),
})

const WebhookDelivery = builder.objectRef<DeliveryView>('WebhookDelivery').implement({
  description: 'One event to one endpoint, with its attempts.',
  fields: (t) => ({
    id: t.exposeID('id'),
    endpointId: t.exposeID('endpoint_id'),
    url: t.exposeString('url'),
    eventId: t.exposeID('event_id', { description: 'Also sent as the body\'s "id" and the Burnrate-Event-Id header: dedupe on it.' }),
    eventType: t.exposeString('event_type'),
    status: t.field({ type: WebhookDeliveryStatus, resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts'),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => (d.status === 'PENDING' ? d.next_attempt_at : null) }),
    lastStatusCode: t.exposeInt('last_status_code', { nullable: true }),
    lastError: t.exposeString('last_error', { nullable: true }),
    deliveredAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => d.delivered_at }),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.created_at }),
    attemptLog: t.field({
      type: [WebhookAttempt],
      resolve: async (d, _args, ctx) => (await ctx.services.webhooks.attemptsOf([d.id])).get(d.id) ?? [],
    }),
  }),
})

builder.queryFields((t) => ({
  webhookEndpoints: t.field({
    type: [WebhookEndpoint],
    description: "The tenant's webhook endpoints (secrets are never shown again).",
    resolve: (_root, _args, ctx) => ctx.services.webhooks.listEndpoints(requireTenant(ctx)),
  }),
  webhookDeliveries: t.field({
    type: [WebhookDelivery],
    description: 'The delivery log, newest first.',
    args: { endpointId: t.arg.id(), status: t.arg({ type: WebhookDeliveryStatus }), first: t.arg.int({ description: '1-500, default 50.' }) },
    resolve: (_root, args, ctx) =>
      ctx.services.webhooks.deliveries(requireTenant(ctx), { endpointId: args.endpointId ? String(args.endpointId) : null, status: args.status ?? null, first: args.first ?? null }),
  }),
}))

builder.mutationFields((t) => ({
  createWebhookEndpoint: t.field({
    type: CreatedWebhookEndpoint,
    description: `Registers an endpoint for event types (${WEBHOOK_EVENT_TYPES.join(', ')}); returns its signing secret once.`,
    args: {
      url: t.arg.string({ required: true }),
      eventTypes: t.arg.stringList({ required: true }),
      description: t.arg.string(),
    },
    resolve: (_root, args, ctx) => ctx.services.webhooks.createEndpoint(requireTenant(ctx), args),
  }),
  disableWebhookEndpoint: t.field({
    type: WebhookEndpoint,
    description: 'Stops deliveries to an endpoint; its pending deliveries become DEAD.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.disableEndpoint(requireTenant(ctx), String(args.id)),
  }),
  replayWebhookDelivery: t.field({
    type: WebhookDelivery,
    description: 'Sends a DEAD delivery again: back to PENDING for another full round of attempts, same event id.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.replay(requireTenant(ctx), String(args.id)),
  }),
}))
