/**
 * Background polling of the configured public sources: each due source is claimed (one syncer at a
 * time across processes), synced and recorded; then listeners catch up with changes made elsewhere.
 */
import type { PublicSourceName } from '@burnrate/catalog-sync'
import { withJobId } from '../logger.ts'
import { claimSource } from './repository.ts'
import { recordedSync, type SyncDeps } from './sync.ts'

const POLL_LEASE_MS = 10 * 60_000

/** One poll: every configured source that is due and not being synced by another process. */
export async function pollOnce(deps: SyncDeps): Promise<void> {
  const sources = (deps.config?.CATALOG_SOURCES ?? ['genai-prices']) as PublicSourceName[]
  for (const name of sources) {
    const now = deps.clock.now()
    if (!(await claimSource(deps.db, name, now, POLL_LEASE_MS))) continue
    // Failures are recorded (and logged) by the run itself; the next source is tried regardless.
    await withJobId(deps.logger, 'catalog-sync', () => recordedSync(deps, name, now, { attempts: 1 })).catch(() => {})
  }
  // A sync by another process (or the CLI) changed the catalog: let listeners catch up too.
  await deps.writer.catchUp()
}

export interface Poller {
  start(): void
  stop(): Promise<void>
}

/** Runs `poll` every interval (at most a minute apart, so a due source waits little), one run at a time. */
export function createPoller(deps: SyncDeps, poll: () => Promise<void>): Poller {
  let pollTimer: NodeJS.Timeout | null = null
  let polling: Promise<void> | null = null
  return {
    start() {
      const intervalMs = deps.config?.CATALOG_SYNC_INTERVAL ?? 0
      if (intervalMs <= 0 || pollTimer) return
      const tick = () => {
        polling ??= poll()
          .catch((error) =>
            deps.logger.error('catalog poll failed', {
              error: error instanceof Error ? error.message : String(error),
            }),
          )
          .finally(() => {
            polling = null
          })
      }
      pollTimer = setInterval(tick, Math.min(intervalMs, 60_000))
      pollTimer.unref()
      tick()
    },
    async stop() {
      if (pollTimer) clearInterval(pollTimer)
      pollTimer = null
      await polling
    },
  }
}
