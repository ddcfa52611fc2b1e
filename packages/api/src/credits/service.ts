/**
 * Prepaid credits: grants per customer, drawn down by ingest in event order (the pipeline step
 * `credits.consume`, usage/pipeline.ts) and by billed changes, an append-only ledger, balances,
 * expiry, low- and zero-balance alerts, and the hard stop for prepaid-only customers (what budgets
 * and the gateway ask through `prepaidGate`). The arithmetic is consume.ts.
 */
import { randomBytes } from 'node:crypto'
import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor, Tx } from '../db/database.ts'
import type {
  CreditAlertRow,
  CreditCategory,
  CreditGrantRow,
  CreditLedgerRow,
  CreditScopeJson,
  CreditSettingsRow,
  CreditSource,
  Tenant,
} from '../db/types.ts'
import type { Logger } from '../logger.ts'
import { AMOUNT_SCALE, Decimal, isExactDecimalString } from '../money/decimal.ts'
import type { BurnratePubSub, CreditAlertEvent } from '../pubsub.ts'
import { badInput, isDomainError } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'
import { crossedDown, drawDown, drawOrder, refund, sum, type Charge, type Draw, type OpenGrant } from './consume.ts'
import * as repo from './repository.ts'

export const CREDIT_LIMITS = {
  customerIdLength: 255,
  idempotencyKeyLength: 255,
  descriptionLength: 500,
  maxAmount: new Decimal('1e15'),
  scopeEntries: 50,
  scopeEntryLength: 200,
  defaultPriority: 50,
  alertsDefaultFirst: 50,
  alertsMaxFirst: 500,
  topUpUrlLength: 2000,
  sweepBatch: 500,
} as const

/**
 * Whether a customer's plan is prepaid-only at a time: the plans of the rating domain answer it
 * (services.ts wires `planInForce`); without plans nobody is prepaid-only.
 */
export interface PrepaidPolicy {
  /** `executor`: the caller's transaction when it holds one (PGlite has a single connection). */
  prepaidOnly(tenantId: string, customerId: string, at: Date, executor?: Executor): Promise<boolean>
}
interface GrantCreditsInput {
  customerId: string
  amount: string
  currency?: string | null
  category?: CreditCategory | null
  priority?: number | null
  effectiveAt?: Date | null
  expiresAt?: Date | null
  scope?: { models?: readonly string[] | null; features?: readonly string[] | null } | null
  lowBalanceThreshold?: string | null
  description?: string | null
  /** The client's key: the same key returns the grant it made, once. */
  idempotencyKey: string
}

export interface GrantView {
  row: CreditGrantRow
  /** ACTIVE, PENDING (not yet effective), EXPIRED or DEPLETED, as of now. */
  status: 'ACTIVE' | 'PENDING' | 'EXPIRED' | 'DEPLETED'
}

export interface CreditBalanceView {
  customerId: string
  currency: string
  /** What effective, unexpired grants hold now. */
  balance: string
  /** Held by the customer's active budget reservations (counted against the balance by the hard stop). */
  reserved: string
  /** balance − reserved, never negative. */
  available: string
  /** Grants not effective yet. */
  upcoming: string
  lowBalanceThreshold: string | null
  prepaidOnly: boolean
  grants: GrantView[]
  topUpUrl: string | null
}

export interface GrantResult {
  grant: GrantView
  /** false: the idempotency key had made this grant before; nothing changed. */
  created: boolean
}

export interface CreditService {
  grantCredits(tenant: Tenant, input: GrantCreditsInput, source?: CreditSource): Promise<GrantResult>
  /**
   * A paid Stripe Checkout Session (stripe/inbox.ts): a PAID grant of what it bought, once per
   * session (its id is the idempotency key). A session in another currency than the tenant's, or
   * otherwise refused, grants nothing and is logged (Stripe redelivering it would not help).
   */
  grantFromCheckout(
    tenantId: string,
    checkout: { sessionId: string; customerId: string; amount: string; currency: string },
  ): Promise<GrantResult | null>
  balance(tenant: Tenant, customerId: string): Promise<CreditBalanceView>
  /**
   * For the invoice preview: what credits paid for the customer's usage in the period (by the
   * usage's time), and the balance left now.
   */
  forPeriod(
    tenant: Tenant,
    customerId: string,
    period: { start: Date; end: Date },
  ): Promise<{ applied: string; remaining: string }>
  ledger(
    tenant: Tenant,
    customerId: string,
    args: { grantId?: string | null; first?: number | null; after?: string | null },
  ): Promise<Page<CreditLedgerRow>>
  alerts(tenant: Tenant, customerId: string, first: number | null | undefined): Promise<CreditAlertRow[]>
  setCreditSettings(
    tenant: Tenant,
    input: { customerId: string; lowBalanceThreshold?: string | null },
  ): Promise<CreditSettingsRow>
  setTopUpUrl(tenant: Tenant, url: string | null): Promise<string | null>
  /** Writes the EXPIRY entries of every grant past its expiry (periodic; idempotent). */
  sweepExpired(): Promise<number>
  /**
   * For budgets' hard stop (checkBudget, reserveBudget) and so the gateway: whether the customer
   * is prepaid-only now and what its credits hold. With `lock`, the customer's grants are locked
   * in the caller's transaction, so reservations against credits are serialized.
   */
  prepaidGate(
    executor: Executor,
    tenantId: string,
    customerId: string,
    now: Date,
    options?: { lock?: Tx },
  ): Promise<{ prepaidOnly: boolean; balance: string }>
  /** Ingest step `credits.consume`. */
  followIngest(trx: Tx, batch: IngestBatch): Promise<void>
  /** Billed-change step `credits.consume`: a raised bill draws more, a lowered one gives back. */
  followChanges(trx: Tx, batch: BilledChangeBatch): Promise<void>
  /** After commit: subscribers hear of the credit alerts raised. */
  publishAlerts(batch: { creditAlertsRaised: readonly CreditAlertRow[] }): Promise<void>
}

const newGrantId = () => 'cg_' + randomBytes(12).toString('base64url')

function parseAmount(value: string, field: string, allowZero: boolean): string {
  if (!isExactDecimalString(value)) throw badInput(`${field} must be a decimal string such as "12.50"`, field)
  const d = new Decimal(value)
  if (d.isNegative() || (!allowZero && d.isZero()))
    throw badInput(`${field} must be ${allowZero ? 'zero or more' : 'more than zero'}`, field)
  if (d.greaterThan(CREDIT_LIMITS.maxAmount))
    throw badInput(`${field} must be at most ${CREDIT_LIMITS.maxAmount.toFixed()}`, field)
  if (d.decimalPlaces() > AMOUNT_SCALE) throw badInput(`${field} has more than ${AMOUNT_SCALE} decimal places`, field)
  return d.toFixed()
}

function checkCustomerId(customerId: string, field = 'customerId'): void {
  if (customerId.length === 0 || customerId.length > CREDIT_LIMITS.customerIdLength)
    throw badInput(`customerId must be 1-${CREDIT_LIMITS.customerIdLength} characters`, field)
}

function checkScope(scope: GrantCreditsInput['scope']): CreditScopeJson | null {
  if (scope == null) return null
  const list = (values: readonly string[] | null | undefined, name: 'models' | 'features') => {
    if (values == null) return undefined
    if (values.length > CREDIT_LIMITS.scopeEntries)
      throw badInput(`at most ${CREDIT_LIMITS.scopeEntries} ${name}`, `input.scope.${name}`)
    for (const [i, v] of values.entries())
      if (v.trim().length === 0 || v.length > CREDIT_LIMITS.scopeEntryLength)
        throw badInput(
          `${name} entries are 1-${CREDIT_LIMITS.scopeEntryLength} characters`,
          `input.scope.${name}[${i}]`,
        )
    return [...new Set(values)]
  }
  const models = list(scope.models, 'models')
  const features = list(scope.features, 'features')
  if (!models?.length && !features?.length)
    throw badInput('a scope names at least one model glob or feature (leave scope out for all usage)', 'input.scope')
  return { ...(models?.length ? { models } : {}), ...(features?.length ? { features } : {}) }
}

function statusOf(row: CreditGrantRow, now: Date): GrantView['status'] {
  if (row.expires_at && new Date(row.expires_at).getTime() <= now.getTime()) return 'EXPIRED'
  if (new Decimal(row.remaining).isZero()) return 'DEPLETED'
  if (new Date(row.effective_at).getTime() > now.getTime()) return 'PENDING'
  return 'ACTIVE'
}

function openGrantOf(row: CreditGrantRow): OpenGrant {
  return {
    id: row.id,
    customerId: row.customer_id,
    remaining: row.remaining,
    priority: row.priority,
    effectiveAt: new Date(row.effective_at),
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    createdAt: new Date(row.created_at),
    scope: row.scope,
  }
}

export function creditAlertEvent(row: CreditAlertRow): CreditAlertEvent {
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    customerId: row.customer_id,
    grantId: row.grant_id,
    kind: row.kind,
    threshold: new Decimal(row.threshold).toFixed(),
    balance: new Decimal(row.balance).toFixed(),
    triggeredAt: new Date(row.triggered_at).toISOString(),
  }
}

/** Effective and unexpired at `now`: what a balance counts. */
function availableNow(row: CreditGrantRow, now: Date): boolean {
  return (
    new Date(row.effective_at).getTime() <= now.getTime() &&
    (!row.expires_at || new Date(row.expires_at).getTime() > now.getTime())
  )
}

const ledgerCursor = keysetCursor('creditLedger')

export function createCreditService({
  db,
  clock,
  logger,
  pubsub,
  prepaid,
  reservedAmount,
  onAlertsRaised,
  audit = null,
}: {
  /** Grants, settings and the top-up URL are recorded in the audit log in the transaction of the change. */
  audit?: Pick<AuditService, 'record'> | null
  db: Db
  clock: Clock
  logger: Logger
  pubsub: BurnratePubSub
  prepaid: PrepaidPolicy
  /** Held by the customer's active budget reservations (the budgets repository's). */
  reservedAmount: (executor: Executor, tenantId: string, customerId: string, now: Date) => Promise<string>
  /** credit.alert webhooks, in the transaction that raised the alerts. */
  onAlertsRaised: (trx: Tx, alerts: readonly CreditAlertRow[]) => Promise<void>
}): CreditService {
  /**
   * Expires, in the caller's transaction, the locked grants past their expiry at `now`: an EXPIRY
   * entry takes what is left. Returns the grants still open, and the alerts the expiry raised
   * (inserted; the caller raises them — webhooks in its transaction, subscriptions after commit).
   */
  async function expireLocked(
    trx: Tx,
    tenantId: string,
    grants: CreditGrantRow[],
    now: Date,
  ): Promise<{ open: CreditGrantRow[]; alerts: CreditAlertRow[] }> {
    const expired = grants.filter(
      (g) => g.expires_at && new Date(g.expires_at).getTime() <= now.getTime() && new Decimal(g.remaining).gt(0),
    )
    if (expired.length > 0) {
      await repo.appendLedger(
        trx,
        expired.map((g) => ({
          tenant_id: tenantId,
          grant_id: g.id,
          customer_id: g.customer_id,
          kind: 'EXPIRY' as const,
          amount: new Decimal(g.remaining).negated().toFixed(),
          balance_after: '0',
          event_id: null,
          change_key: null,
          usage_at: null,
          created_at: now,
        })),
      )
      await repo.setRemaining(trx, tenantId, new Map(expired.map((g) => [g.id, '0'])))
    }
    const gone = new Set(expired.map((g) => g.id))
    const alerts = expired.length > 0 ? await expiryAlerts(trx, tenantId, expired, now) : []
    return { open: grants.filter((g) => !gone.has(g.id)), alerts }
  }

  /**
   * The customer-level alerts an expiry crossed into: the total available before (with what the
   * expired grants had left) against the total after, at the customer's low-balance threshold and
   * at zero — once per crossing, like a draw-down. A grant's own threshold is not raised by its
   * expiry: the grant is gone, not running low.
   */
  async function expiryAlerts(
    trx: Tx,
    tenantId: string,
    expired: readonly CreditGrantRow[],
    now: Date,
  ): Promise<CreditAlertRow[]> {
    const customers = [...new Set(expired.map((g) => g.customer_id))]
    const thresholds = new Map(
      (await repo.settingsOf(trx, tenantId, customers)).map((s) => [s.customer_id, s.low_balance_threshold]),
    )
    const due: Parameters<typeof repo.insertAlerts>[1][number][] = []
    for (const customerId of customers) {
      const lost = sum(
        expired
          .filter((g) => g.customer_id === customerId && new Date(g.effective_at).getTime() <= now.getTime())
          .map((g) => g.remaining),
      )
      const after = sum(
        (await repo.grantsOfCustomer(trx, tenantId, customerId))
          .filter((g) => availableNow(g, now))
          .map((g) => g.remaining),
      )
      const before = new Decimal(after).plus(lost).toFixed()
      const base = { tenant_id: tenantId, customer_id: customerId, triggered_at: now, grant_id: null }
      const low = thresholds.get(customerId)
      if (low != null && new Decimal(low).gt(0) && crossedDown(low, before, after))
        due.push({ ...base, kind: 'LOW_BALANCE', threshold: low, balance: after })
      if (crossedDown('0', before, after)) due.push({ ...base, kind: 'ZERO_BALANCE', threshold: '0', balance: after })
    }
    return repo.insertAlerts(trx, due)
  }

  /**
   * The alerts a draw-down crossed into: per customer, the total over the grants it holds (its
   * low-balance threshold, and zero); per grant, the grant's own low-balance threshold.
   */
  async function alertsFor(
    trx: Tx,
    tenantId: string,
    grants: readonly CreditGrantRow[],
    after: ReadonlyMap<string, string>,
    now: Date,
  ): Promise<CreditAlertRow[]> {
    const customers = [...new Set(grants.map((g) => g.customer_id))]
    const thresholds = new Map(
      (await repo.settingsOf(trx, tenantId, customers)).map((s) => [s.customer_id, s.low_balance_threshold]),
    )
    const due: Parameters<typeof repo.insertAlerts>[1][number][] = []
    for (const customerId of customers) {
      const mine = grants.filter((g) => g.customer_id === customerId && availableNow(g, now))
      const before = sum(mine.map((g) => g.remaining))
      const total = sum(mine.map((g) => after.get(g.id) ?? g.remaining))
      const base = { tenant_id: tenantId, customer_id: customerId, triggered_at: now }
      const low = thresholds.get(customerId)
      if (low != null && new Decimal(low).gt(0) && crossedDown(low, before, total))
        due.push({ ...base, grant_id: null, kind: 'LOW_BALANCE', threshold: low, balance: total })
      if (crossedDown('0', before, total))
        due.push({ ...base, grant_id: null, kind: 'ZERO_BALANCE', threshold: '0', balance: total })
      for (const g of mine) {
        const threshold = g.low_balance_threshold
        const now_ = after.get(g.id)
        if (threshold == null || now_ === undefined || !new Decimal(threshold).gt(0)) continue
        if (crossedDown(threshold, g.remaining, now_))
          due.push({ ...base, grant_id: g.id, kind: 'LOW_BALANCE', threshold, balance: now_ })
      }
    }
    return repo.insertAlerts(trx, due)
  }

  /** Draws the charges from the customers' grants and writes the ledger; returns the alerts raised. */
  async function consume(
    trx: Tx,
    tenantId: string,
    charges: readonly Charge[],
    /** The grants the caller locked already (through repo.lockGrants), as they stand now. */
    lockedAlready?: CreditGrantRow[],
  ): Promise<CreditAlertRow[]> {
    const payable = charges.filter((c) => new Decimal(c.amount).gt(0))
    if (payable.length === 0) return []
    const now = clock.now()
    const locked = (
      lockedAlready ??
      (await repo.lockGrants(
        trx,
        tenantId,
        payable.map((c) => c.customerId),
      ))
    ).filter((g) => new Decimal(g.remaining).gt(0))
    if (locked.length === 0) return []
    const { open, alerts } = await expireLocked(trx, tenantId, locked, now)
    if (open.length === 0) return alerts
    const { draws, remaining } = drawDown(open.map(openGrantOf), payable, now)
    if (draws.length === 0) return alerts
    await writeDraws(trx, tenantId, draws, now)
    const changed = new Map([...new Set(draws.map((d) => d.grantId))].map((id) => [id, remaining.get(id)!]))
    await repo.setRemaining(trx, tenantId, changed)
    return [...alerts, ...(await alertsFor(trx, tenantId, open, changed, now))]
  }

  function writeDraws(trx: Tx, tenantId: string, draws: readonly Draw[], now: Date) {
    return repo.appendLedger(
      trx,
      draws.map((d) => ({
        tenant_id: tenantId,
        grant_id: d.grantId,
        customer_id: d.customerId,
        kind: 'CONSUMPTION' as const,
        amount: new Decimal(d.amount).negated().toFixed(),
        balance_after: d.balanceAfter,
        event_id: d.eventId,
        change_key: d.changeKey,
        usage_at: d.ts,
        created_at: now,
      })),
    )
  }

  async function raise(trx: Tx, alerts: CreditAlertRow[], into: CreditAlertRow[]) {
    if (alerts.length === 0) return
    into.push(...alerts)
    await onAlertsRaised(trx, alerts)
  }

  async function grantView(row: CreditGrantRow): Promise<GrantView> {
    return { row, status: statusOf(row, clock.now()) }
  }

  /** Expires the customer's due grants now (balances and ledgers read after it are current). */
  async function expireCustomer(tenantId: string, customerId: string): Promise<void> {
    const now = clock.now()
    const due = (await repo.grantsOfCustomer(db, tenantId, customerId)).some(
      (g) => g.expires_at && new Date(g.expires_at).getTime() <= now.getTime() && new Decimal(g.remaining).gt(0),
    )
    if (!due) return
    const raised: CreditAlertRow[] = []
    await db.transaction().execute(async (trx) => {
      const { alerts } = await expireLocked(trx, tenantId, await repo.lockGrants(trx, tenantId, [customerId]), now)
      await raise(trx, alerts, raised)
    })
    await service.publishAlerts({ creditAlertsRaised: raised })
  }

  const service: CreditService = {
    async grantFromCheckout(tenantId, checkout) {
      const tenant = await repo.tenantById(db, tenantId)
      if (!tenant) return null
      try {
        return await service.grantCredits(
          tenant,
          {
            customerId: checkout.customerId,
            amount: checkout.amount,
            currency: checkout.currency,
            category: 'PAID',
            description: `Stripe Checkout ${checkout.sessionId}`,
            idempotencyKey: `stripe-checkout:${checkout.sessionId}`,
          },
          'STRIPE_CHECKOUT',
        )
      } catch (error) {
        if (!isDomainError(error)) throw error
        logger.warn('stripe checkout not granted as credits', {
          tenantId,
          sessionId: checkout.sessionId,
          reason: error.message,
        })
        return null
      }
    },

    async grantCredits(tenant, input, source = 'MUTATION') {
      checkCustomerId(input.customerId, 'input.customerId')
      const key = input.idempotencyKey
      if (key.length === 0 || key.length > CREDIT_LIMITS.idempotencyKeyLength)
        throw badInput(
          `idempotencyKey must be 1-${CREDIT_LIMITS.idempotencyKeyLength} characters`,
          'input.idempotencyKey',
        )
      const amount = parseAmount(input.amount, 'input.amount', false)
      const currency = (input.currency ?? tenant.currency).toUpperCase()
      if (currency !== tenant.currency.toUpperCase())
        throw badInput(`credits are granted in the tenant's billing currency (${tenant.currency})`, 'input.currency')
      const priority = input.priority ?? CREDIT_LIMITS.defaultPriority
      if (!Number.isInteger(priority) || priority < 0 || priority > 100)
        throw badInput('priority is an integer from 0 (drawn first) to 100', 'input.priority')
      const now = clock.now()
      const effectiveAt = input.effectiveAt ?? now
      const expiresAt = input.expiresAt ?? null
      if (expiresAt && expiresAt.getTime() <= effectiveAt.getTime())
        throw badInput('expiresAt must be after effectiveAt', 'input.expiresAt')
      if (expiresAt && expiresAt.getTime() <= now.getTime())
        throw badInput('expiresAt must be in the future', 'input.expiresAt')
      const scope = checkScope(input.scope)
      const low =
        input.lowBalanceThreshold == null
          ? null
          : parseAmount(input.lowBalanceThreshold, 'input.lowBalanceThreshold', false)
      const description = input.description ?? null
      if (description !== null && description.length > CREDIT_LIMITS.descriptionLength)
        throw badInput(`description is at most ${CREDIT_LIMITS.descriptionLength} characters`, 'input.description')
      const category = input.category ?? 'PAID'

      const inserted = await db.transaction().execute(async (trx) => {
        const row = await repo.insertGrant(trx, {
          tenant_id: tenant.id,
          id: newGrantId(),
          customer_id: input.customerId,
          amount,
          remaining: amount,
          currency,
          category,
          priority,
          effective_at: effectiveAt,
          expires_at: expiresAt,
          scope,
          source,
          idempotency_key: key,
          low_balance_threshold: low,
          description,
          created_at: now,
        })
        if (!row) return null
        await audit?.record(trx, {
          tenantId: tenant.id,
          action: 'creditGrant.create',
          entityType: 'CreditGrant',
          entityId: row.id,
          before: null,
          after: row,
        })
        await repo.appendLedger(trx, [
          {
            tenant_id: tenant.id,
            grant_id: row.id,
            customer_id: row.customer_id,
            kind: 'GRANT',
            amount,
            balance_after: amount,
            event_id: null,
            change_key: null,
            usage_at: null,
            created_at: now,
          },
        ])
        return row
      })
      if (inserted) return { grant: await grantView(inserted), created: true }
      const existing = await repo.grantByKey(db, tenant.id, key)
      if (!existing) throw new Error('credit grant idempotency key vanished')
      if (existing.customer_id !== input.customerId || !new Decimal(existing.amount).eq(amount))
        throw badInput(
          `idempotencyKey "${key}" already made grant ${existing.id} for another customer or amount`,
          'input.idempotencyKey',
        )
      return { grant: await grantView(existing), created: false }
    },

    async forPeriod(tenant, customerId, period) {
      const [applied, { balance }] = await Promise.all([
        repo.appliedToUsage(db, tenant.id, customerId, period.start, period.end),
        service.balance(tenant, customerId),
      ])
      return { applied: new Decimal(applied).toFixed(), remaining: balance }
    },
    async balance(tenant, customerId) {
      checkCustomerId(customerId)
      await expireCustomer(tenant.id, customerId)
      const now = clock.now()
      const rows = await repo.grantsOfCustomer(db, tenant.id, customerId)
      const balance = sum(rows.filter((g) => availableNow(g, now)).map((g) => g.remaining))
      const upcoming = sum(
        rows.filter((g) => new Date(g.effective_at).getTime() > now.getTime()).map((g) => g.remaining),
      )
      const reserved = new Decimal(await reservedAmount(db, tenant.id, customerId, now)).toFixed()
      const [settings] = await repo.settingsOf(db, tenant.id, [customerId])
      return {
        customerId,
        currency: tenant.currency,
        balance,
        reserved,
        available: Decimal.max(0, new Decimal(balance).minus(reserved)).toFixed(),
        upcoming,
        lowBalanceThreshold: settings?.low_balance_threshold ?? null,
        prepaidOnly: await prepaid.prepaidOnly(tenant.id, customerId, now),
        grants: [...rows]
          .sort((a, b) => drawOrder(openGrantOf(a), openGrantOf(b)))
          .map((row) => ({ row, status: statusOf(row, now) })),
        topUpUrl: await repo.topUpUrlOf(db, tenant.id),
      }
    },

    async ledger(tenant, customerId, args) {
      checkCustomerId(customerId)
      const first = pageSize(args.first)
      const before = args.after ? Number(ledgerCursor.decode(args.after).id) : null
      if (before !== null && !Number.isSafeInteger(before))
        throw badInput('after is not a creditLedger cursor', 'after')
      await expireCustomer(tenant.id, customerId)
      const rows = await repo.ledgerOfCustomer(db, tenant.id, customerId, {
        grantId: args.grantId,
        beforeId: before,
        limit: first + 1,
      })
      return pageOf(rows, { first, after: args.after }, (r) =>
        ledgerCursor.encode({ at: new Date(r.created_at), id: String(r.id) }),
      )
    },

    async alerts(tenant, customerId, first) {
      checkCustomerId(customerId)
      const n = pageSize(first, {
        defaultFirst: CREDIT_LIMITS.alertsDefaultFirst,
        maxFirst: CREDIT_LIMITS.alertsMaxFirst,
      })
      return repo.alertsOfCustomer(db, tenant.id, customerId, n)
    },

    async setCreditSettings(tenant, input) {
      checkCustomerId(input.customerId, 'input.customerId')
      const low =
        input.lowBalanceThreshold == null
          ? null
          : parseAmount(input.lowBalanceThreshold, 'input.lowBalanceThreshold', false)
      return db.transaction().execute(async (trx) => {
        const [before] = await repo.settingsOf(trx, tenant.id, [input.customerId])
        const after = await repo.upsertSettings(trx, {
          tenant_id: tenant.id,
          customer_id: input.customerId,
          low_balance_threshold: low,
          updated_at: clock.now(),
        })
        await audit?.record(trx, {
          tenantId: tenant.id,
          action: 'creditSettings.set',
          entityType: 'CreditSettings',
          entityId: input.customerId,
          before: before ? { lowBalanceThreshold: before.low_balance_threshold } : null,
          after: { lowBalanceThreshold: after.low_balance_threshold },
        })
        return after
      })
    },

    async setTopUpUrl(tenant, url) {
      if (url !== null) {
        let parsed: URL
        try {
          parsed = new URL(url)
        } catch {
          throw badInput('creditTopUpUrl must be an absolute https:// (or http://) URL', 'input.creditTopUpUrl')
        }
        if (!['https:', 'http:'].includes(parsed.protocol) || url.length > CREDIT_LIMITS.topUpUrlLength)
          throw badInput('creditTopUpUrl must be an absolute https:// (or http://) URL', 'input.creditTopUpUrl')
      }
      await db.transaction().execute(async (trx) => {
        const before = await repo.topUpUrlOf(trx, tenant.id)
        await repo.setTopUpUrl(trx, tenant.id, url)
        await audit?.record(trx, {
          tenantId: tenant.id,
          action: 'creditTopUpUrl.set',
          entityType: 'Tenant',
          entityId: tenant.id,
          before: { creditTopUpUrl: before },
          after: { creditTopUpUrl: url },
        })
      })
      return url
    },

    async sweepExpired() {
      let total = 0
      for (;;) {
        const now = clock.now()
        const raised: CreditAlertRow[] = []
        const n = await db.transaction().execute(async (trx) => {
          raised.length = 0
          const due = await repo.lockExpiredGrants(trx, now, CREDIT_LIMITS.sweepBatch)
          const byTenant = new Map<string, CreditGrantRow[]>()
          for (const g of due) byTenant.set(g.tenant_id, [...(byTenant.get(g.tenant_id) ?? []), g])
          for (const [tenantId, grants] of byTenant)
            await raise(trx, (await expireLocked(trx, tenantId, grants, now)).alerts, raised)
          return due.length
        })
        await service.publishAlerts({ creditAlertsRaised: raised })
        total += n
        if (n < CREDIT_LIMITS.sweepBatch) return total
      }
    },

    async prepaidGate(executor, tenantId, customerId, now, options) {
      const prepaidOnly = await prepaid.prepaidOnly(tenantId, customerId, now, options?.lock ?? executor)
      if (!prepaidOnly) return { prepaidOnly, balance: '0' }
      let rows: CreditGrantRow[]
      if (options?.lock) {
        const expired = await expireLocked(
          options.lock,
          tenantId,
          await repo.lockGrants(options.lock, tenantId, [customerId]),
          now,
        )
        // Raised in the caller's transaction (webhooks); subscribers hear of them at once.
        const raised: CreditAlertRow[] = []
        await raise(options.lock, expired.alerts, raised)
        await service.publishAlerts({ creditAlertsRaised: raised })
        rows = expired.open
      } else rows = await repo.grantsOfCustomer(executor, tenantId, customerId)
      return { prepaidOnly, balance: sum(rows.filter((g) => availableNow(g, now)).map((g) => g.remaining)) }
    },

    async followIngest(trx, batch) {
      const charges: Charge[] = batch.inserted
        .filter((e) => e.status === 'PRICED' && e.amount !== null)
        .map((e) => ({
          customerId: e.customer_id,
          eventId: e.id,
          changeKey: null,
          ts: new Date(e.ts),
          amount: e.amount!,
          model: e.canonical_model ?? e.model,
          feature: e.feature,
        }))
      await raise(trx, await consume(trx, batch.tenant.id, charges), batch.creditAlertsRaised)
    },

    async followChanges(trx, batch) {
      const { tenantId, changes } = batch
      const raised = changes.filter((c) => new Decimal(c.amount).gt(0))
      const lowered = changes.filter((c) => new Decimal(c.amount).lt(0))
      if (raised.length === 0 && lowered.length === 0) return
      const now = clock.now()
      // Every grant of the customers (drained ones may be refilled), locked at once in the one order.
      const locked = await repo.lockGrants(
        trx,
        tenantId,
        changes.map((c) => c.customerId),
        { drained: true },
      )
      if (locked.length === 0) return
      const byId = new Map(locked.map((g) => [g.id, g]))
      if (lowered.length > 0) {
        const drawn = await repo.drawsOfEvents(
          trx,
          tenantId,
          lowered.map((c) => c.eventId),
        )
        const entries: repo.NewLedgerEntry[] = []
        for (const change of lowered) {
          const list = drawn.get(change.eventId) ?? []
          for (const r of refund(list, new Decimal(change.amount).negated().toFixed())) {
            const grant = byId.get(r.grantId)!
            const after = new Decimal(grant.remaining).plus(r.amount).toFixed()
            byId.set(r.grantId, { ...grant, remaining: after })
            entries.push({
              tenant_id: tenantId,
              grant_id: r.grantId,
              customer_id: grant.customer_id,
              kind: 'REVERSAL',
              amount: r.amount,
              balance_after: after,
              event_id: change.eventId,
              change_key: change.key,
              usage_at: change.ts,
              created_at: now,
            })
            // A later lowering of the same event in this batch sees this reversal.
            const d = list.find((x) => x.grantId === r.grantId)!
            d.net = new Decimal(d.net).minus(r.amount).toFixed()
          }
        }
        if (entries.length > 0) {
          await repo.appendLedger(trx, entries)
          const touched = [...new Set(entries.map((e) => e.grant_id))]
          await repo.setRemaining(trx, tenantId, new Map(touched.map((id) => [id, byId.get(id)!.remaining])))
          // A refund into a grant that has expired meanwhile expires at once.
          const expired = await expireLocked(
            trx,
            tenantId,
            touched.map((id) => byId.get(id)!),
            now,
          )
          await raise(trx, expired.alerts, batch.creditAlertsRaised)
          const open = new Set(expired.open.map((g) => g.id))
          for (const id of touched) if (!open.has(id)) byId.set(id, { ...byId.get(id)!, remaining: '0' })
        }
      }
      if (raised.length > 0) {
        const features = await repo.featuresOfEvents(
          trx,
          tenantId,
          raised.map((c) => ({ id: c.eventId, ts: c.ts })),
        )
        const charges: Charge[] = raised.map((c) => ({
          customerId: c.customerId,
          eventId: c.eventId,
          changeKey: c.key,
          ts: c.ts,
          amount: c.amount,
          model: c.model,
          feature: features.get(c.eventId) ?? null,
        }))
        await raise(trx, await consume(trx, tenantId, charges, [...byId.values()]), batch.creditAlertsRaised)
      }
    },

    async publishAlerts({ creditAlertsRaised }) {
      for (const alert of creditAlertsRaised) {
        try {
          pubsub.publish('creditAlert', alert.tenant_id, creditAlertEvent(alert))
        } catch (error) {
          logger.error('credit alert publish failed', { error: String(error) })
        }
      }
    },
  }
  return service
}
