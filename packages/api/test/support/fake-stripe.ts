import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * A local server speaking Stripe's wire format for what Burnrate uses: form-encoded requests with
 * nested `a[b]=` keys, JSON objects with `object` and `id`, list objects, errors as
 * `{ error: { type, code, message, param } }` with Stripe's status codes, `Idempotency-Key`
 * replays of the stored result (errors included, with `Idempotent-Replayed: true`), and meter
 * events de-duplicated on `identifier` whatever the key. Accounts are keyed by secret key. Every
 * request is recorded; faults can be injected.
 */

export type Fault =
  /** 429 rate_limit, nothing processed. */
  | 'rate-limit'
  /** 500 api_error, nothing processed. */
  | 'server-error'
  /** Never answers; the client times out. Nothing processed. */
  | 'hang'
  /** Connection destroyed before processing. */
  | 'drop'
  /** Processed, then the connection is destroyed: the client never learns it succeeded. */
  | 'drop-after'
  /** Processed, then never answers. */
  | 'hang-after'
  /** 400 invalid_request_error on payload[value]: refused for good, nothing processed. */
  | 'invalid'
  /**
   * 500 api_error from inside the endpoint, nothing processed: like real Stripe, the error is the
   * stored result of its Idempotency-Key and replayed (`Idempotent-Replayed: true`) to every later
   * request with that key. A request whose key already has a stored result gets that instead.
   */
  | 'stored-server-error'
  /** Processed (the meter event counts), then a 500 is stored for the key instead of the result. */
  | 'server-error-after'

interface RecordedRequest {
  method: string
  path: string
  query: Record<string, unknown>
  params: Record<string, unknown>
  rawBody: string
  headers: Record<string, string | string[] | undefined>
  status: number | 'dropped' | 'hung'
  fault: Fault | null
  /** Answered from the Idempotency-Key cache: Stripe had already processed this request. */
  replayed: boolean
}

interface AcceptedMeterEvent {
  identifier: string
  event_name: string
  payload: Record<string, string>
  timestamp: number
  created: number
}

interface Account {
  meters: Record<string, unknown>[]
  products: Record<string, unknown>[]
  prices: Record<string, unknown>[]
  customers: Record<string, unknown>[]
  meterEvents: AcceptedMeterEvent[]
  identifiers: Map<string, AcceptedMeterEvent>
  creditGrants: Record<string, any>[]
  /** Invoice items; pending (invoice null) ones go on the customer's upcoming invoice. */
  invoiceItems: Record<string, any>[]
  subscriptions: Record<string, any>[]
  idempotency: Map<string, { fingerprint: string; status: number; body: unknown }>
  v2Events: Map<string, Record<string, unknown>>
}

export interface FakeStripe {
  url: string
  host: string
  port: number
  requests: RecordedRequest[]
  /** Decides a fault per request (null: behave). Replace it at any time. */
  fault: (request: { method: string; path: string; params: Record<string, unknown> }) => Fault | null
  account(secretKey: string): Account
  /** Sum of accepted meter event values per Stripe customer, for one event name. */
  totals(secretKey: string, eventName: string): Map<string, bigint>
  /**
   * Most meter event requests ever open at once for one Stripe customer, as the server sees
   * them: a request the client gave up on (timeout) may still count here for a moment.
   */
  maxConcurrentPerCustomer(): number
  /**
   * The invoice Stripe would make for a customer's subscription over [start, end) (seconds), as
   * POST /v1/invoices/create_preview answers for the current period: metered lines from the meter
   * events, each rounded half up to the minor unit, then billing credit grants applied; then the
   * customer's pending invoice items (with a period: those whose period starts in it).
   */
  invoice(secretKey: string, customer: string, period?: { start: number; end: number }): Record<string, any>
  /** A v2 event the fake serves at GET /v2/core/events/:id (for thin webhook payloads). */
  addV2Event(secretKey: string, event: Record<string, unknown>): void
  close(): Promise<void>
}

/** Decodes `a[b][0]=x&c=y` into nested objects; objects with keys 0..n-1 become arrays. */
function decodeForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const parts = rawKey.replace(/\]/g, '').split('[')
    let node = root
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1) node[part] = value
      else node = (node[part] ??= {}) as Record<string, unknown>
    }
  }
  const arrays = (value: unknown): unknown => {
    if (!value || typeof value !== 'object') return value
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, arrays(v)] as const)
    const keys = entries.map(([k]) => k)
    if (keys.length > 0 && keys.every((k, i) => k === String(i))) return entries.map(([, v]) => v)
    return Object.fromEntries(entries)
  }
  return arrays(root) as Record<string, unknown>
}

class StripeError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message)
  }
}

/** Stripe's 500 body (a server-error fault, or the error stored for an Idempotency-Key). */
const INTERNAL_ERROR = { error: { type: 'api_error', message: 'An unknown error occurred.' } }

/** 400 invalid_request_error: Stripe will not take the request as it is. */
const invalid = (message: string, code?: string, param?: string) =>
  new StripeError(400, 'invalid_request_error', message, code, param)

/** resource_missing: 404 for the object the URL names, 400 for one a parameter names. */
const missing = (status: 400 | 404, what: string, id: string | undefined, param?: string) =>
  new StripeError(status, 'invalid_request_error', `No such ${what}: '${id}'`, 'resource_missing', param)

const required = (params: Record<string, unknown>, name: string): string => {
  const value = params[name]
  if (typeof value !== 'string' || value === '')
    throw invalid(`Missing required param: ${name}.`, 'parameter_missing', name)
  return value
}

/** The `customer` parameter, which must name a customer of the account. */
const existingCustomer = (a: Account, params: Record<string, unknown>): string => {
  const customer = required(params, 'customer')
  if (!a.customers.some((c) => c.id === customer)) throw missing(400, 'customer', customer, 'customer')
  return customer
}

export async function startFakeStripe(): Promise<FakeStripe> {
  const accounts = new Map<string, Account>()
  const requests: RecordedRequest[] = []
  const sockets = new Set<Socket>()
  let counter = 0
  const openPerCustomer = new Map<string, number>()
  let maxOpen = 0
  const nextId = (prefix: string) => `${prefix}_fake${(++counter).toString(36).padStart(8, '0')}`
  const now = () => Math.floor(Date.now() / 1000)

  const account = (key: string): Account => {
    let a = accounts.get(key)
    if (!a) {
      a = {
        meters: [],
        products: [],
        prices: [],
        customers: [],
        meterEvents: [],
        identifiers: new Map(),
        creditGrants: [],
        invoiceItems: [],
        subscriptions: [],
        idempotency: new Map(),
        v2Events: new Map(),
      }
      accounts.set(key, a)
    }
    return a
  }
  const list = (url: string, data: unknown[]) => ({ object: 'list', url, has_more: false, data })
  /** A page of a list filtered by `?customer=`, from `?starting_after=` on, `?limit=` long (10, at most 100). */
  const customersPage = (url: string, objects: Record<string, any>[], query: Record<string, unknown>) => {
    const all = objects.filter((o) => !query.customer || o.customer === query.customer)
    const limit = Math.min(Number(query.limit ?? 10), 100)
    const after = query.starting_after ? all.findIndex((o) => o.id === query.starting_after) + 1 : 0
    return { ...list(url, all.slice(after, after + limit)), has_more: after + limit < all.length }
  }
  const monthOf = (seconds: number) => {
    const d = new Date(seconds * 1000)
    return {
      start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000,
      end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000,
    }
  }

  /**
   * Subscriptions of the fake bill UTC calendar months (billing_cycle_anchor on the 1st). Each
   * metered line: the period's sum of the meter's events for the customer × unit_amount_decimal,
   * rounded half up to the minor unit (0 when negative). Then billing credit grants in force
   * (not voided, effective, not expired) whose scope covers the line's price, by priority (0
   * first), soonest expiry, creation — each up to what it has left on this invoice. Grants are not
   * consumed across invoices: the fake does not finalize.
   */
  function invoiceOf(a: Account, customer: string, subscriptionId?: string, period?: { start: number; end: number }) {
    const subscription = a.subscriptions.find(
      (s) => s.customer === customer && s.status === 'active' && (!subscriptionId || s.id === subscriptionId),
    )
    if (!subscription) throw invalid(`No upcoming invoices for customer: ${customer}`, 'invoice_upcoming_none')
    const items = subscription.items.data as Record<string, any>[]
    const { start, end } = period ?? {
      start: items[0]!.current_period_start as number,
      end: items[0]!.current_period_end as number,
    }
    const at = now()
    const grants = a.creditGrants
      .filter(
        (g) =>
          g.customer === customer &&
          g.voided_at === null &&
          g.effective_at <= at &&
          (g.expires_at === null || g.expires_at > at),
      )
      .sort(
        (x, y) =>
          x.priority - y.priority ||
          (x.expires_at ?? Infinity) - (y.expires_at ?? Infinity) ||
          x.created - y.created ||
          (x.id < y.id ? -1 : 1),
      )
    const left = new Map(grants.map((g) => [g.id as string, BigInt(g.amount.monetary.value)]))
    const credits = new Map<string, bigint>()
    const lines = items.map((item) => {
      const price = item.price as Record<string, any>
      const meter = a.meters.find((m) => m.id === price.recurring?.meter)
      let quantity = 0n
      if (meter)
        for (const e of a.meterEvents)
          if (
            e.event_name === meter.event_name &&
            e.payload.stripe_customer_id === customer &&
            e.timestamp >= start &&
            e.timestamp < end
          )
            quantity += BigInt(e.payload.value!)
      const [whole, fraction = ''] = String(price.unit_amount_decimal ?? '0').split('.')
      const num = BigInt(whole! + fraction)
      const den = 10n ** BigInt(fraction.length)
      const exact = quantity * num
      const amount = exact <= 0n ? 0n : (2n * exact + den) / (2n * den)
      let due = amount
      const applied: { amount: number; type: string; credit_balance_transaction: string }[] = []
      for (const g of grants) {
        const scope = g.applicability_config.scope as { price_type?: string; prices?: { id: string }[] }
        const covers = scope.prices
          ? scope.prices.some((p) => p.id === price.id)
          : scope.price_type === 'metered' && !!meter
        if (!covers || due === 0n || g.amount.monetary.currency !== price.currency) continue
        const take = due < left.get(g.id)! ? due : left.get(g.id)!
        if (take === 0n) continue
        left.set(g.id, left.get(g.id)! - take)
        credits.set(g.id, (credits.get(g.id) ?? 0n) + take)
        due -= take
        applied.push({
          amount: Number(take),
          type: 'credit_balance_transaction',
          credit_balance_transaction: `cbtxn_preview_${g.id}`,
        })
      }
      return {
        id: `il_tmp_${item.id}`,
        object: 'line_item',
        amount: Number(amount),
        currency: price.currency,
        description: `${quantity} units`,
        quantity: Number(quantity),
        period: { start, end },
        pretax_credit_amounts: applied,
        pricing: {
          type: 'price_details',
          price_details: { price: price.id, product: price.product },
          unit_amount_decimal: price.unit_amount_decimal,
        },
        subscription: subscription.id,
      }
    })
    // Pending invoice items (a one-off charge): on the upcoming invoice whatever their period, like
    // Stripe; credit grants scoped to the metered price do not apply to them.
    const itemLines = a.invoiceItems
      .filter(
        (ii) =>
          ii.customer === customer &&
          ii.invoice === null &&
          (!period || (ii.period.start >= start && ii.period.start < end)),
      )
      .map((ii) => ({
        id: `il_tmp_${ii.id}`,
        object: 'line_item',
        amount: ii.amount as number,
        currency: ii.currency as string,
        description: ii.description as string,
        quantity: 1,
        period: ii.period,
        pretax_credit_amounts: [],
        pricing: null,
        invoice_item: ii.id,
        subscription: null,
      }))
    const subtotal = [...lines, ...itemLines].reduce((s, l) => s + l.amount, 0)
    const credited = [...credits.values()].reduce((s, c) => s + c, 0n)
    const total = subtotal - Number(credited)
    return {
      id: `upcoming_in_${subscription.id}`,
      object: 'invoice',
      customer,
      subscription: subscription.id,
      currency: lines[0]?.currency ?? 'usd',
      status: 'draft',
      period_start: start,
      period_end: end,
      lines: list(`/v1/invoices/upcoming/lines?customer=${customer}`, [...lines, ...itemLines]),
      subtotal,
      subtotal_excluding_tax: subtotal,
      total_pretax_credit_amounts: [...credits].map(([id, amount]) => ({
        amount: Number(amount),
        type: 'credit_balance_transaction',
        credit_balance_transaction: `cbtxn_preview_${id}`,
      })),
      total_excluding_tax: total,
      total,
      amount_due: total,
      starting_balance: 0,
      livemode: false,
    }
  }

  function route(
    a: Account,
    method: string,
    path: string,
    params: Record<string, unknown>,
    query: Record<string, unknown>,
  ): [number, unknown] {
    if (method === 'POST' && path === '/v1/billing/meters') {
      const eventName = required(params, 'event_name')
      const displayName = required(params, 'display_name')
      const aggregation = params.default_aggregation as { formula?: string } | undefined
      if (!aggregation?.formula)
        throw invalid(
          'Missing required param: default_aggregation[formula].',
          'parameter_missing',
          'default_aggregation[formula]',
        )
      if (a.meters.some((m) => m.event_name === eventName && m.status === 'active')) {
        throw invalid(
          `An active meter with event_name ${eventName} already exists.`,
          'resource_already_exists',
          'event_name',
        )
      }
      const customerMapping = (params.customer_mapping as Record<string, string> | undefined) ?? {
        event_payload_key: 'stripe_customer_id',
        type: 'by_id',
      }
      const valueSettings = (params.value_settings as Record<string, string> | undefined) ?? {
        event_payload_key: 'value',
      }
      const meter = {
        id: nextId('mtr'),
        object: 'billing.meter',
        created: now(),
        customer_mapping: customerMapping,
        default_aggregation: { formula: aggregation.formula },
        display_name: displayName,
        event_name: eventName,
        event_time_window: params.event_time_window ?? null,
        livemode: false,
        status: 'active',
        status_transitions: { deactivated_at: null },
        updated: now(),
        value_settings: valueSettings,
        ...(params.dimension_payload_keys ? { dimension_payload_keys: params.dimension_payload_keys } : {}),
      }
      a.meters.push(meter)
      return [200, meter]
    }
    if (method === 'GET' && path === '/v1/billing/meters') {
      return [
        200,
        list(
          '/v1/billing/meters',
          a.meters.filter((m) => !query.status || m.status === query.status),
        ),
      ]
    }
    const meterMatch = /^\/v1\/billing\/meters\/([^/]+)(\/event_summaries)?$/.exec(path)
    if (method === 'GET' && meterMatch) {
      const meter = a.meters.find((m) => m.id === meterMatch[1])
      if (!meter) throw missing(404, 'billing meter', meterMatch[1], 'id')
      if (!meterMatch[2]) return [200, meter]
      const customer = required(query, 'customer')
      const start = Number(required(query, 'start_time'))
      const end = Number(required(query, 'end_time'))
      if (start % 60 !== 0 || end % 60 !== 0)
        throw invalid('start_time and end_time must be aligned with minute boundaries.', undefined, 'start_time')
      let sum = 0
      for (const e of a.meterEvents) {
        if (e.event_name !== meter.event_name || e.payload.stripe_customer_id !== customer) continue
        if (e.timestamp >= start && e.timestamp < end) sum += Number(e.payload.value)
      }
      return [
        200,
        list(`/v1/billing/meters/${String(meter.id)}/event_summaries`, [
          {
            id: nextId('mtrusg'),
            object: 'billing.meter_event_summary',
            aggregated_value: sum,
            end_time: end,
            livemode: false,
            meter: meter.id,
            start_time: start,
          },
        ]),
      ]
    }
    if (method === 'POST' && path === '/v1/products') {
      const product = {
        id: (params.id as string | undefined) ?? nextId('prod'),
        object: 'product',
        active: true,
        created: now(),
        name: required(params, 'name'),
        metadata: params.metadata ?? {},
        livemode: false,
      }
      if (a.products.some((p) => p.id === product.id))
        throw invalid(`Product already exists.`, 'resource_already_exists', 'id')
      a.products.push(product)
      return [200, product]
    }
    if (method === 'POST' && path === '/v1/prices') {
      const recurring = params.recurring as Record<string, string> | undefined
      if (recurring?.usage_type === 'metered' && !recurring.meter)
        throw invalid(
          'A metered price must reference a meter: recurring[meter].',
          'parameter_missing',
          'recurring[meter]',
        )
      if (recurring?.meter && !a.meters.some((m) => m.id === recurring.meter))
        throw missing(400, 'billing meter', recurring.meter, 'recurring[meter]')
      if (!a.products.some((p) => p.id === params.product))
        throw missing(400, 'product', String(params.product), 'product')
      const price = {
        id: nextId('price'),
        object: 'price',
        active: true,
        created: now(),
        currency: required(params, 'currency'),
        product: params.product,
        unit_amount_decimal: params.unit_amount_decimal ?? null,
        billing_scheme: params.billing_scheme ?? 'per_unit',
        lookup_key: params.lookup_key ?? null,
        recurring: recurring
          ? {
              interval: recurring.interval,
              interval_count: 1,
              usage_type: recurring.usage_type ?? 'licensed',
              meter: recurring.meter ?? null,
            }
          : null,
        metadata: params.metadata ?? {},
        type: recurring ? 'recurring' : 'one_time',
        livemode: false,
      }
      a.prices.push(price)
      return [200, price]
    }
    if (method === 'POST' && path === '/v1/customers') {
      const customer = {
        id: nextId('cus'),
        object: 'customer',
        created: now(),
        name: params.name ?? null,
        metadata: params.metadata ?? {},
        livemode: false,
      }
      a.customers.push(customer)
      return [200, customer]
    }
    if (method === 'POST' && path === '/v1/billing/meter_events') {
      const eventName = required(params, 'event_name')
      const payload = params.payload as Record<string, string> | undefined
      if (!payload?.stripe_customer_id)
        throw invalid(
          'Missing required param: payload[stripe_customer_id].',
          'parameter_missing',
          'payload[stripe_customer_id]',
        )
      if (!payload.value || !/^-?\d+$/.test(payload.value))
        throw invalid('payload[value] must be a whole number.', 'parameter_invalid_integer', 'payload[value]')
      const identifier = (params.identifier as string | undefined) ?? nextId('mev')
      if (identifier.length > 100)
        throw invalid('identifier is longer than 100 characters.', 'parameter_invalid_string', 'identifier')
      const timestamp = params.timestamp === undefined ? now() : Number(params.timestamp)
      if (timestamp < now() - 35 * 86_400)
        throw invalid('timestamp must be within the past 35 calendar days.', 'parameter_invalid_integer', 'timestamp')
      if (a.identifiers.has(identifier)) {
        throw invalid(`An event already exists with identifier ${identifier}.`, 'resource_already_exists', 'identifier')
      }
      const event: AcceptedMeterEvent = {
        identifier,
        event_name: eventName,
        payload: { ...payload },
        timestamp,
        created: now(),
      }
      a.identifiers.set(identifier, event)
      a.meterEvents.push(event)
      return [200, { object: 'billing.meter_event', ...event, livemode: false }]
    }
    if (method === 'POST' && path === '/v1/billing/credit_grants') {
      const customer = existingCustomer(a, params)
      const amount = params.amount as { type?: string; monetary?: { currency?: string; value?: string } } | undefined
      if (amount?.type !== 'monetary' || !amount.monetary?.currency || !/^\d+$/.test(amount.monetary.value ?? ''))
        throw invalid(
          'amount[monetary][value] must be a positive integer.',
          'parameter_invalid_integer',
          'amount[monetary][value]',
        )
      const scope = (
        params.applicability_config as { scope?: { price_type?: string; prices?: { id: string }[] } } | undefined
      )?.scope
      if (!scope || (!scope.price_type && !scope.prices))
        throw invalid(
          'Missing required param: applicability_config[scope].',
          'parameter_missing',
          'applicability_config[scope]',
        )
      const category = (params.category as string | undefined) ?? 'paid'
      if (category !== 'paid' && category !== 'promotional')
        throw invalid(`Invalid category: ${category}`, 'parameter_invalid', 'category')
      const grant = {
        id: nextId('credgr'),
        object: 'billing.credit_grant',
        amount: {
          type: 'monetary',
          monetary: { currency: amount.monetary.currency, value: Number(amount.monetary.value) },
        },
        applicability_config: { scope },
        category,
        created: now(),
        customer,
        effective_at: params.effective_at === undefined ? now() : Number(params.effective_at),
        expires_at: params.expires_at === undefined ? null : Number(params.expires_at),
        livemode: false,
        metadata: params.metadata ?? {},
        name: params.name ?? null,
        priority: params.priority === undefined ? 50 : Number(params.priority),
        test_clock: null,
        updated: now(),
        voided_at: null as number | null,
      }
      a.creditGrants.push(grant)
      return [200, grant]
    }
    if (method === 'GET' && path === '/v1/billing/credit_grants') {
      return [200, customersPage('/v1/billing/credit_grants', a.creditGrants, query)]
    }
    const grantMatch = /^\/v1\/billing\/credit_grants\/([^/]+)(\/void|\/expire)?$/.exec(path)
    if (grantMatch) {
      const grant = a.creditGrants.find((g) => g.id === grantMatch[1])
      if (!grant) throw missing(404, 'credit grant', grantMatch[1], 'id')
      if (method === 'GET' && !grantMatch[2]) return [200, grant]
      if (method === 'POST' && grantMatch[2] === '/void') {
        if (grant.voided_at !== null)
          throw invalid('This credit grant has already been voided.', 'credit_grant_already_voided')
        grant.voided_at = now()
        grant.updated = now()
        return [200, grant]
      }
      if (method === 'POST' && grantMatch[2] === '/expire') {
        if (grant.expires_at !== null && grant.expires_at <= now())
          throw invalid('This credit grant has already expired.')
        grant.expires_at = now()
        grant.updated = now()
        return [200, grant]
      }
    }
    if (method === 'POST' && path === '/v1/invoiceitems') {
      const customer = existingCustomer(a, params)
      const currency = required(params, 'currency')
      const amount = required(params, 'amount')
      if (!/^-?\d+$/.test(amount)) throw invalid('Invalid integer: amount', 'parameter_invalid_integer', 'amount')
      const p = params.period as { start?: string; end?: string } | undefined
      const at = now()
      const item = {
        id: nextId('ii'),
        object: 'invoiceitem',
        amount: Number(amount),
        currency,
        customer,
        date: at,
        description: (params.description as string | undefined) ?? null,
        invoice: null,
        livemode: false,
        metadata: params.metadata ?? {},
        period: p?.start && p.end ? { start: Number(p.start), end: Number(p.end) } : { start: at, end: at },
        quantity: 1,
      }
      a.invoiceItems.push(item)
      return [200, item]
    }
    if (method === 'GET' && path === '/v1/invoiceitems') {
      return [200, customersPage('/v1/invoiceitems', a.invoiceItems, query)]
    }
    if (method === 'POST' && path === '/v1/subscriptions') {
      const customer = existingCustomer(a, params)
      const items = (params.items as { price?: string }[] | undefined) ?? []
      if (items.length === 0 || items.some((i) => !a.prices.some((p) => p.id === i.price)))
        throw invalid('items[0][price] must name an existing price.', 'resource_missing', 'items')
      const period = monthOf(now())
      const id = nextId('sub')
      const subscription = {
        id,
        object: 'subscription',
        customer,
        status: 'active',
        created: now(),
        billing_cycle_anchor: period.start,
        items: list(
          `/v1/subscription_items?subscription=${id}`,
          items.map((i) => ({
            id: nextId('si'),
            object: 'subscription_item',
            price: a.prices.find((p) => p.id === i.price),
            current_period_start: period.start,
            current_period_end: period.end,
          })),
        ),
        livemode: false,
      }
      a.subscriptions.push(subscription)
      return [200, subscription]
    }
    if (method === 'POST' && path === '/v1/invoices/create_preview') {
      const customer = required(params, 'customer')
      return [200, invoiceOf(a, customer, params.subscription as string | undefined)]
    }
    const v2Event = /^\/v2\/core\/events\/([^/]+)$/.exec(path)
    if (method === 'GET' && v2Event) {
      const event = a.v2Events.get(v2Event[1]!)
      if (!event) throw missing(404, 'event', v2Event[1])
      return [200, event]
    }
    throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path}).`)
  }

  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: string) => {
    const url = new URL(req.url ?? '/', 'http://fake-stripe')
    const method = req.method ?? 'GET'
    const path = url.pathname
    const contentType = String(req.headers['content-type'] ?? '')
    const params =
      rawBody === ''
        ? {}
        : contentType.includes('json')
          ? (JSON.parse(rawBody) as Record<string, unknown>)
          : decodeForm(rawBody)
    const query = decodeForm(url.search.slice(1))
    const record: RecordedRequest = {
      method,
      path,
      query,
      params,
      rawBody,
      headers: req.headers,
      status: 200,
      fault: null,
      replayed: false,
    }
    requests.push(record)
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      record.status = status
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${++counter}`, ...extra })
      res.end(JSON.stringify(body))
    }
    if (path === '/v1/billing/meter_events') {
      const customer = String((params.payload as Record<string, unknown> | undefined)?.stripe_customer_id)
      const open = (openPerCustomer.get(customer) ?? 0) + 1
      openPerCustomer.set(customer, open)
      maxOpen = Math.max(maxOpen, open)
      let closed = false
      const done = () => {
        if (closed) return
        closed = true
        openPerCustomer.set(customer, (openPerCustomer.get(customer) ?? 1) - 1)
      }
      // Done for the client when the answer is written, or when the connection goes away.
      res.once('finish', done).once('close', done)
    }
    const fault = fake.fault({ method, path, params })
    record.fault = fault
    if (fault === 'rate-limit')
      return send(429, {
        error: {
          type: 'invalid_request_error',
          code: 'rate_limit',
          message: 'Too many requests hit the API too quickly.',
        },
      })
    if (fault === 'server-error') return send(500, INTERNAL_ERROR)
    if (fault === 'invalid')
      return send(400, {
        error: {
          type: 'invalid_request_error',
          code: 'parameter_invalid_integer',
          param: 'payload[value]',
          message: 'Invalid integer: payload[value].',
        },
      })
    if (fault === 'hang') return void (record.status = 'hung')
    if (fault === 'drop') {
      record.status = 'dropped'
      return void req.socket.destroy()
    }

    const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1]
    if (!auth || !auth.startsWith('sk_'))
      return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } })
    const a = account(auth)
    const idempotencyKey = method === 'POST' ? (req.headers['idempotency-key'] as string | undefined) : undefined
    const fingerprint = createHash('sha256')
      .update(`${method} ${path} ${JSON.stringify(params)}`)
      .digest('hex')
    let status: number
    let body: unknown
    let replayed = false
    const previous = idempotencyKey ? a.idempotency.get(idempotencyKey) : undefined
    if (previous) {
      if (previous.fingerprint !== fingerprint) {
        status = 400
        body = {
          error: {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          },
        }
      } else {
        ;({ status, body } = previous)
        replayed = true
        record.replayed = true
      }
    } else {
      if (fault === 'stored-server-error') {
        status = 500
        body = INTERNAL_ERROR
      } else {
        try {
          ;[status, body] = route(a, method, path, params, query)
        } catch (error) {
          if (!(error instanceof StripeError)) throw error
          status = error.status
          body = {
            error: {
              type: error.type,
              message: error.message,
              ...(error.code ? { code: error.code } : {}),
              ...(error.param ? { param: error.param } : {}),
            },
          }
        }
        if (fault === 'server-error-after') {
          status = 500
          body = INTERNAL_ERROR
        }
      }
      if (idempotencyKey) a.idempotency.set(idempotencyKey, { fingerprint, status, body })
    }
    if (fault === 'hang-after') return void (record.status = 'hung')
    if (fault === 'drop-after') {
      record.status = 'dropped'
      return void req.socket.destroy()
    }
    send(status, body, replayed ? { 'idempotent-replayed': 'true' } : {})
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'))
      } catch (error) {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { type: 'api_error', message: String(error) } }))
      }
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const fake: FakeStripe = {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    requests,
    fault: () => null,
    account,
    totals(secretKey, eventName) {
      const totals = new Map<string, bigint>()
      for (const e of account(secretKey).meterEvents) {
        if (e.event_name !== eventName) continue
        const customer = e.payload.stripe_customer_id!
        totals.set(customer, (totals.get(customer) ?? 0n) + BigInt(e.payload.value!))
      }
      return totals
    },
    maxConcurrentPerCustomer: () => maxOpen,
    invoice: (secretKey, customer, period) => invoiceOf(account(secretKey), customer, undefined, period),
    addV2Event(secretKey, event) {
      account(secretKey).v2Events.set(String(event.id), event)
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return fake
}
