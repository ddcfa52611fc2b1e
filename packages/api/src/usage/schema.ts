import type { PricedLineJson, UnpricedReasonJson, UsageEventRow } from '../db/types.ts'
import { unpricedMessage } from '../pricing/price-event.ts'
import { badInput } from '../shared/errors.ts'
import { builder } from '../schema/builder.ts'
import type { RecordResult } from './service.ts'
import { LIMITS, type EventError, type UsageEventInput as UsageEventInputShape } from './validation.ts'

const RecordStatus = builder.enumType('RecordStatus', { values: ['RECORDED', 'DUPLICATE', 'REJECTED'] as const })
const PricingStatus = builder.enumType('PricingStatus', { values: ['PRICED', 'UNPRICED'] as const })

const UnitQuantityInput = builder.inputType('UnitQuantityInput', {
  fields: (t) => ({
    unit: t.string({ required: true }),
    quantity: t.field({ type: 'Decimal', required: true }),
  }),
})

const UsageEventInput = builder.inputType('UsageEventInput', {
  fields: (t) => ({
    id: t.string({
      required: true,
      description: "Idempotency key, unique per tenant (e.g. the provider's request id). 1-255 characters.",
    }),
    customerId: t.string({
      required: true,
      description: "The tenant's own reference for its customer. Unknown customers are created on first use.",
    }),
    model: t.string({
      required: true,
      description: 'Model name as the provider or gateway reported it: gpt-4o-2024-08-06, anthropic/claude-3.5-sonnet.',
    }),
    provider: t.string({
      description:
        'Who was paid for the call: openai, anthropic, google, openrouter, … Inferred from model when absent.',
    }),
    timestamp: t.field({ type: 'DateTime', required: true, description: 'When the call happened.' }),
    inputTokens: t.int({ description: 'All input tokens, including cacheReadTokens and cacheWriteTokens.' }),
    outputTokens: t.int({ description: 'All output tokens, including reasoningTokens.' }),
    cacheReadTokens: t.int(),
    cacheWriteTokens: t.int(),
    reasoningTokens: t.int(),
    units: t.field({
      type: [UnitQuantityInput],
      description: 'Non-token usage priced by unit: images, audio seconds, web searches, requests, tool calls, …',
    }),
    feature: t.string({
      description: 'Product feature that caused the call, for breakdowns (chat, summarize, agent-run, …).',
    }),
    metadata: t.field({ type: 'JSON', description: 'Small labels. Never prompts or completions.' }),
    signature: t.string({
      description: "HMAC-SHA256 signature over the event's canonical form; required when the tenant requires it.",
    }),
    reservationId: t.string({
      description:
        "The budget reservation (reserveBudget) made for this call: recording the event settles it, the event's amount replacing the estimate. Not part of the signed canonical form.",
    }),
  }),
})

const UsageError = builder.objectRef<EventError>('UsageError').implement({
  fields: (t) => ({
    code: t.exposeString('code', {
      description: 'Machine-readable: INVALID_INPUT, IDEMPOTENCY_CONFLICT, INVALID_SIGNATURE, BUDGET_EXCEEDED, …',
    }),
    message: t.exposeString('message'),
    field: t.string({
      nullable: true,
      description: 'The input field at fault, if one is.',
      resolve: (e) => e.field ?? null,
    }),
  }),
})

/** Said on every field a widget session created with priceDetails: false may not read. */
export const PRICE_DETAIL = 'FORBIDDEN for a widget session created with priceDetails: false.'

export const PricedLine = builder.objectRef<PricedLineJson>('PricedLine').implement({
  fields: (t) => ({
    usageType: t.exposeString('usageType', {
      description: 'input, output, cache_read, cache_write, reasoning, or a unit name.',
    }),
    quantity: t.field({ type: 'Decimal', resolve: (l) => l.quantity }),
    unitPrice: t.field({
      type: 'Decimal',
      description: `Catalog price of one unit: what the tenant pays its provider per token, request or other unit. ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (l) => l.unitPrice,
    }),
    cost: t.field({
      type: 'Decimal',
      description: `What the tenant pays its provider for this line (quantity × unitPrice). ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (l) => l.cost,
    }),
    amount: t.field({
      type: 'Decimal',
      description: 'What the customer is billed for this line (after markup or margin).',
      resolve: (l) => l.amount,
    }),
    priceId: t.id({
      description: `Id of the effective-dated catalog row that priced this line. ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (l) => l.priceId,
    }),
  }),
})

const UnpricedReasonCode = builder.enumType('UnpricedReasonCode', {
  values: {
    UNKNOWN_MODEL: { description: 'No price source, nor a negotiated price of this tenant, knows the model.' },
    NO_PRICE_AT_TIME: { description: "The model is known but had no price in force at the event's timestamp." },
    MISSING_USAGE_PRICE: {
      description:
        'The prices in force (negotiated, else public) leave a reported usage type without a price: see usageTypes.',
    },
  } as const,
})

export const UnpricedReason = builder.objectRef<UnpricedReasonJson>('UnpricedReason').implement({
  description:
    'Why an event is UNPRICED. It is priced automatically once a price for what it lacks is in force for its timestamp.',
  fields: (t) => ({
    code: t.field({ type: UnpricedReasonCode, resolve: (r) => r.code }),
    usageTypes: t.stringList({
      description: 'The usage types with a quantity and no price (MISSING_USAGE_PRICE); empty otherwise.',
      resolve: (r) => r.usageTypes,
    }),
    message: t.string({ resolve: (r) => unpricedMessage(r) }),
  }),
})

export const UsageEvent = builder.objectRef<UsageEventRow>('UsageEvent').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    customerId: t.exposeString('customer_id'),
    model: t.exposeString('model'),
    canonicalModel: t.exposeString('canonical_model', { nullable: true }),
    provider: t.string({ nullable: true, resolve: (e) => e.canonical_provider ?? e.provider }),
    timestamp: t.field({ type: 'DateTime', resolve: (e) => e.ts }),
    receivedAt: t.field({ type: 'DateTime', resolve: (e) => e.received_at }),
    status: t.field({ type: PricingStatus, resolve: (e) => e.status }),
    unpricedReason: t.field({
      type: UnpricedReason,
      nullable: true,
      description: 'Why the event is UNPRICED; null when priced (and for events stored before reasons were kept).',
      resolve: (e) => (e.status === 'UNPRICED' ? e.unpriced_reason : null),
    }),
    cost: t.field({
      type: 'Decimal',
      nullable: true,
      description: `What the tenant pays its provider. ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (e) => e.cost,
    }),
    amount: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'What the customer is billed.',
      resolve: (e) => e.amount,
    }),
    currency: t.exposeString('currency'),
    lines: t.field({ type: [PricedLine], resolve: (e) => e.lines }),
    feature: t.exposeString('feature', { nullable: true }),
    inputTokens: t.exposeInt('input_tokens'),
    outputTokens: t.exposeInt('output_tokens'),
    cacheReadTokens: t.exposeInt('cache_read_tokens'),
    cacheWriteTokens: t.exposeInt('cache_write_tokens'),
    reasoningTokens: t.exposeInt('reasoning_tokens'),
    metadata: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.metadata }),
    pricingPlan: t.string({
      nullable: true,
      description: `The markup or margin applied, e.g. "MARKUP 30". ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (e) => (e.plan_kind ? `${e.plan_kind} ${e.plan_percent}` : null),
    }),
  }),
})

const RecordUsageResult = builder.objectRef<RecordResult>('RecordUsageResult').implement({
  fields: (t) => ({
    status: t.field({ type: RecordStatus, resolve: (r) => r.status }),
    event: t.field({
      type: UsageEvent,
      nullable: true,
      description: 'The stored event; for DUPLICATE the one stored first.',
      resolve: (r) => r.event,
    }),
    error: t.field({ type: UsageError, nullable: true, resolve: (r) => r.error }),
  }),
})

const RecordUsageBatchResult = builder.objectRef<RecordResult[]>('RecordUsageBatchResult').implement({
  fields: (t) => ({
    results: t.field({
      type: [RecordUsageResult],
      description: 'One result per input event, in input order.',
      resolve: (r) => r,
    }),
    recorded: t.int({ resolve: (r) => r.filter((x) => x.status === 'RECORDED').length }),
    duplicates: t.int({ resolve: (r) => r.filter((x) => x.status === 'DUPLICATE').length }),
    rejected: t.int({ resolve: (r) => r.filter((x) => x.status === 'REJECTED').length }),
  }),
})

builder.mutationFields((t) => ({
  recordUsage: t.withAuth({ tenant: true }).field({
    type: RecordUsageResult,
    args: { event: t.arg({ type: UsageEventInput, required: true }) },
    // Through group commit: coalesced with concurrent single calls, answered once durable.
    resolve: (_root, { event }, ctx) =>
      ctx.services.usage.recordOne(ctx.principal.tenant, event as UsageEventInputShape),
  }),
  recordUsageBatch: t.withAuth({ tenant: true }).field({
    type: RecordUsageBatchResult,
    args: { events: t.arg({ type: [UsageEventInput], required: true }) },
    resolve: async (_root, { events }, ctx) => {
      if (events.length > LIMITS.batchSize) {
        throw badInput(`a batch holds at most ${LIMITS.batchSize} events, got ${events.length}`, 'events')
      }
      return ctx.services.usage.record(ctx.principal.tenant, events as UsageEventInputShape[])
    },
  }),
}))
