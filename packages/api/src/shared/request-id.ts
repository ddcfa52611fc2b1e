import { randomUUID } from 'node:crypto'

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/

/** The caller's x-request-id when it is sane (1-100 of [A-Za-z0-9._-]), else a new one. */
export function requestIdFrom(given: string | null | undefined): string {
  return given && REQUEST_ID.test(given) ? given : randomUUID()
}
