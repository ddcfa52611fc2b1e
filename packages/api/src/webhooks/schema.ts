import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import type { WebhookAttemptRow, WebhookEndpointRow } from './db-types.ts'
import { DELIVERY_PAGE, type DeliveryView } from './deliveries.ts'
import { ROTATION_GRACE } from './endpoints.ts'
import { WEBHOOK_EVENT_TYPES } from './events.ts'

const SIGNATURE_DOC =
  'Verify each delivery: Burnrate-Signature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of \'<t>.<raw body>\' with the secret>", with one v1 per signing secret while a rotated-out secret is in its grace period; accept when any v1 matches (constant-time compare) and refuse old timestamps.'

const WebhookEndpoint = builder.objectRef<WebhookEndpointRow>('WebhookEndpoint').implement({
  description: 'An HTTPS endpoint of the tenant that receives signed event deliveries.',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    eventTypes: t.field({
      type: ['String'],
      description: WEBHOOK_EVENT_TYPES.join(', '),
      resolve: (e) => e.event_types,
    }),
    description: t.exposeString('description', { nullable: true }),
    enabled: t.exposeBoolean('enabled'),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.created_at }),
    secretRotatedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When rotateWebhookSecret last ran; null if never.',
      resolve: (e) => e.secret_rotated_at,
    }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'While the secret replaced by the last rotation still signs deliveries (beside the current one): when it stops. Null otherwise.',
      resolve: (e, _args, ctx) =>
        e.previous_secret !== null &&
        e.previous_secret_expires_at !== null &&
        new Date(e.previous_secret_expires_at).getTime() > ctx.services.clock.now().getTime()
          ? e.previous_secret_expires_at
          : null,
    }),
  }),
})

const CreatedWebhookEndpoint = builder
  .objectRef<{ endpoint: WebhookEndpointRow; secret: string }>('CreatedWebhookEndpoint')
  .implement({
    fields: (t) => ({
      endpoint: t.field({ type: WebhookEndpoint, resolve: (c) => c.endpoint }),
      secret: t.exposeString('secret', { description: `Shown once. ${SIGNATURE_DOC}` }),
    }),
  })

const RotatedWebhookSecret = builder
  .objectRef<{ endpoint: WebhookEndpointRow; secret: string; previousSecretExpiresAt: Date | null }>(
    'RotatedWebhookSecret',
  )
  .implement({
    fields: (t) => ({
      endpoint: t.field({ type: WebhookEndpoint, resolve: (r) => r.endpoint }),
      secret: t.exposeString('secret', { description: `The new signing secret, shown once. ${SIGNATURE_DOC}` }),
      previousSecretExpiresAt: t.field({
        type: 'DateTime',
        nullable: true,
        description:
          'Until then deliveries carry a v1 signature with the previous secret too; null when it stopped at once.',
        resolve: (r) => r.previousSecretExpiresAt,
      }),
    }),
  })

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  description: 'Only the fields given change; validated like createWebhookEndpoint.',
  fields: (t) => ({
    url: t.string({ description: 'Null or absent: unchanged. Deliveries still pending go to the new URL.' }),
    eventTypes: t.stringList({
      description: `Null or absent: unchanged. Applies to events enqueued from now on (${WEBHOOK_EVENT_TYPES.join(', ')}).`,
    }),
    description: t.string({ description: 'Absent: unchanged; null or "": cleared.' }),
    enabled: t.boolean({
      description:
        'true re-enables a disabled endpoint (its DEAD deliveries stay DEAD: replay them); false disables it like disableWebhookEndpoint.',
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
    error: t.exposeString('error', {
      nullable: true,
      description: 'Why it failed: HTTP status, timeout or connection error.',
    }),
    url: t.exposeString('url', {
      nullable: true,
      description:
        "The URL this attempt was sent to (an endpoint's URL can change); null for attempts recorded before this was kept.",
    }),
  }),
})

const WebhookDelivery = builder.objectRef<DeliveryView>('WebhookDelivery').implement({
  description: 'One event to one endpoint, with its attempts.',
  fields: (t) => ({
    id: t.exposeID('id'),
    endpointId: t.exposeID('endpoint_id'),
    url: t.exposeString('url'),
    eventId: t.exposeID('event_id', {
      description: 'Also sent as the body\'s "id" and the Burnrate-Event-Id header: dedupe on it.',
    }),
    eventType: t.exposeString('event_type'),
    status: t.field({ type: WebhookDeliveryStatus, resolve: (d) => d.status }),
    attempts: t.exposeInt('attempts'),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (d) => (d.status === 'PENDING' ? d.next_attempt_at : null),
    }),
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

const WebhookDeliveryConnection = connection('WebhookDelivery', WebhookDelivery)

builder.queryFields((t) => ({
  webhookEndpoints: t.field({
    type: [WebhookEndpoint],
    description: "The tenant's webhook endpoints (secrets are never shown again).",
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.webhooks.listEndpoints(tenantOf(ctx)),
  }),
  webhookDeliveries: t.field({
    type: [WebhookDelivery],
    description: 'The delivery log, newest first.',
    args: {
      endpointId: t.arg.id(),
      status: t.arg({ type: WebhookDeliveryStatus }),
      first: t.arg.int({ description: '1-500, default 50.' }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.webhooks.deliveries(tenantOf(ctx), {
        endpointId: args.endpointId ? String(args.endpointId) : null,
        status: args.status ?? null,
        first: args.first ?? null,
      }),
  }),
  webhookDeliveriesPage: t.field({
    type: WebhookDeliveryConnection,
    description:
      'The delivery log in pages, newest first. Keyset pages on (createdAt, id): deliveries added between pages never repeat or push others out of later pages; pass pageInfo.endCursor as after.',
    args: {
      endpointId: t.arg.id(),
      status: t.arg({ type: WebhookDeliveryStatus }),
      ...pageArgs(t.arg, DELIVERY_PAGE),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.webhooks.deliveryPage(tenantOf(ctx), {
        endpointId: args.endpointId ? String(args.endpointId) : null,
        status: args.status ?? null,
        first: args.first ?? null,
        after: args.after ?? null,
      }),
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
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.webhooks.createEndpoint(tenantOf(ctx), args),
  }),
  updateWebhookEndpoint: t.field({
    type: WebhookEndpoint,
    description:
      'Changes an endpoint (only the input fields given), validated like createWebhookEndpoint; nothing changes when any field is refused.',
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateWebhookEndpointInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.webhooks.updateEndpoint(tenantOf(ctx), String(args.id), args.input),
  }),
  rotateWebhookSecret: t.field({
    type: RotatedWebhookSecret,
    description: `A new signing secret, returned once. The replaced one keeps signing beside it (a second v1 in Burnrate-Signature) for expiresPreviousInSeconds: default ${ROTATION_GRACE.defaultSeconds} (24 h), at most ${ROTATION_GRACE.maxSeconds} (7 days), 0 to stop it at once. Rotating again drops any older previous secret.`,
    args: { id: t.arg.id({ required: true }), expiresPreviousInSeconds: t.arg.int() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.webhooks.rotateSecret(tenantOf(ctx), String(args.id), args.expiresPreviousInSeconds ?? null),
  }),
  disableWebhookEndpoint: t.field({
    type: WebhookEndpoint,
    description: 'Stops deliveries to an endpoint; its pending deliveries become DEAD.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.webhooks.disableEndpoint(tenantOf(ctx), String(args.id)),
  }),
  replayWebhookDelivery: t.field({
    type: WebhookDelivery,
    description: 'Sends a DEAD delivery again: back to PENDING for another full round of attempts, same event id.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.webhooks.replay(tenantOf(ctx), String(args.id)),
  }),
}))
