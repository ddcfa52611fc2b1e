/** The tenant's webhook endpoints: create, list, change, disable, rotate the signing secret. */
import { isIP } from 'node:net'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { badInput, userError } from '../shared/errors.ts'
import type { WebhookEndpointRow } from './db-types.ts'
import { newId, WEBHOOK_EVENT_TYPES } from './events.ts'
import * as repo from './repository.ts'
import { newEndpointSecret } from './signing.ts'
import { isPrivateAddress } from './targets.ts'

const MAX_ENDPOINTS_PER_TENANT = 20

/** How long a rotated-out secret keeps signing beside the new one, unless the caller says. */
export const ROTATION_GRACE = { defaultSeconds: 24 * 3600, maxSeconds: 7 * 24 * 3600 } as const

export interface WebhookEndpointUpdate {
  /** Absent or null: unchanged. */
  url?: string | null
  eventTypes?: readonly string[] | null
  /** Absent: unchanged; null or "": cleared. */
  description?: string | null
  /** true re-enables a disabled endpoint; false disables it (as disableWebhookEndpoint). */
  enabled?: boolean | null
}

export interface EndpointDeps {
  db: Db
  clock: Clock
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS: loopback and private addresses are allowed (development, tests). */
  allowPrivateTargets: boolean
}

/** The grace period of a rotation in seconds: default ROTATION_GRACE.defaultSeconds, 0 to ROTATION_GRACE.maxSeconds. */
export function rotationGraceSeconds(requested: number | null | undefined): number {
  const seconds = requested ?? ROTATION_GRACE.defaultSeconds
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > ROTATION_GRACE.maxSeconds) {
    throw badInput(
      `expiresPreviousInSeconds must be between 0 and ${ROTATION_GRACE.maxSeconds} (7 days)`,
      'expiresPreviousInSeconds',
    )
  }
  return seconds
}

function validUrl(raw: string, allowPrivate: boolean, field = 'url'): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw badInput(`url is not a valid URL: ${JSON.stringify(raw)}`, field)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badInput('url must be http:// or https://', field)
  if (url.username || url.password) throw badInput('url must not contain credentials', field)
  if (raw.length > 2048) throw badInput('url is longer than 2048 characters', field)
  // Names are checked again at each delivery, after resolving; literal addresses can be refused now.
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (
    !allowPrivate &&
    (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isPrivateAddress(host)))
  ) {
    throw badInput(
      `url must reach a public address, not ${host} (set WEBHOOK_ALLOW_PRIVATE_TARGETS=true for local development)`,
      field,
    )
  }
  return url.toString()
}

function validEventTypes(eventTypes: readonly string[], field = 'eventTypes'): string[] {
  const types = [...new Set(eventTypes)]
  if (types.length === 0)
    throw badInput(`eventTypes must name at least one of ${WEBHOOK_EVENT_TYPES.join(', ')}`, field)
  for (const t of types) {
    if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t))
      throw badInput(`unknown event type "${t}"; known: ${WEBHOOK_EVENT_TYPES.join(', ')}`, field)
  }
  return types
}

function validDescription(description: string | null | undefined, field = 'description'): string | null {
  if (description && description.length > 500) throw badInput('description is longer than 500 characters', field)
  return description || null
}

const notFound = (id: string) => userError('NOT_FOUND', `no webhook endpoint "${id}"`, 'id')

export async function createEndpoint(
  { db, clock, allowPrivateTargets }: EndpointDeps,
  tenant: Tenant,
  input: { url: string; eventTypes: readonly string[]; description?: string | null },
): Promise<{ endpoint: WebhookEndpointRow; secret: string }> {
  const url = validUrl(input.url.trim(), allowPrivateTargets)
  const types = validEventTypes(input.eventTypes)
  validDescription(input.description)
  if ((await repo.countEnabledEndpoints(db, tenant.id, null)) >= MAX_ENDPOINTS_PER_TENANT)
    throw badInput(`a tenant has at most ${MAX_ENDPOINTS_PER_TENANT} enabled endpoints`, 'url')
  const secret = newEndpointSecret()
  const endpoint = await repo.insertEndpoint(db, {
    id: newId('we_'),
    tenant_id: tenant.id,
    url,
    event_types: JSON.stringify(types),
    secret,
    description: input.description ?? null,
    enabled: true,
    created_at: clock.now(),
  })
  return { endpoint, secret }
}

export async function disableEndpoint(
  { db, clock }: EndpointDeps,
  tenant: Tenant,
  id: string,
): Promise<WebhookEndpointRow> {
  const row = await repo.disableEndpointRow(db, tenant.id, id, clock.now())
  if (!row) throw notFound(id)
  await repo.killPendingDeliveries(db, id)
  return row
}

/** Partial update, validated like creation; all or nothing. */
export async function updateEndpoint(
  { db, clock, allowPrivateTargets }: EndpointDeps,
  tenant: Tenant,
  id: string,
  input: WebhookEndpointUpdate,
): Promise<WebhookEndpointRow> {
  // Everything is checked before anything is written.
  const patch: repo.EndpointPatch = {}
  if (input.url != null) patch.url = validUrl(input.url.trim(), allowPrivateTargets, 'input.url')
  if (input.eventTypes != null) patch.eventTypes = validEventTypes(input.eventTypes, 'input.eventTypes')
  if (input.description !== undefined) patch.description = validDescription(input.description, 'input.description')
  if (input.enabled != null) patch.enabled = input.enabled
  return db.transaction().execute(async (trx) => {
    const current = await repo.lockEndpoint(trx, tenant.id, id)
    if (!current) throw notFound(id)
    const enabling = patch.enabled === true && !current.enabled
    const disabling = patch.enabled === false && current.enabled
    if (patch.enabled === current.enabled) delete patch.enabled
    if (enabling && (await repo.countEnabledEndpoints(trx, tenant.id, id)) >= MAX_ENDPOINTS_PER_TENANT) {
      throw badInput(`a tenant has at most ${MAX_ENDPOINTS_PER_TENANT} enabled endpoints`, 'input.enabled')
    }
    if (Object.keys(patch).length === 0) return current
    const row = await repo.updateEndpointRow(trx, tenant.id, id, patch, clock.now())
    if (disabling) await repo.killPendingDeliveries(trx, id)
    return row
  })
}

/**
 * A new signing secret (returned once); the replaced one keeps signing beside it for
 * `expiresPreviousInSeconds` (default 24 h, at most 7 days, 0: stops at once).
 */
export async function rotateSecret(
  { db, clock }: EndpointDeps,
  tenant: Tenant,
  id: string,
  expiresPreviousInSeconds?: number | null,
): Promise<{ endpoint: WebhookEndpointRow; secret: string; previousSecretExpiresAt: Date | null }> {
  const grace = rotationGraceSeconds(expiresPreviousInSeconds)
  const now = clock.now()
  const previousSecretExpiresAt = grace > 0 ? new Date(now.getTime() + grace * 1000) : null
  const secret = newEndpointSecret()
  const endpoint = await repo.rotateEndpointSecret(db, tenant.id, id, secret, previousSecretExpiresAt, now)
  if (!endpoint) throw notFound(id)
  return { endpoint, secret, previousSecretExpiresAt }
}

export function listEndpoints(db: Db, tenant: Tenant): Promise<WebhookEndpointRow[]> {
  return repo.listEndpoints(db, tenant.id)
}
