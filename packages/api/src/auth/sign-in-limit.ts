/**
 * Console sign-in throttling: failed sign-ins are counted per client IP and per key prefix (the
 * key's displayed prefix, so guesses at one tenant's keys from many addresses are caught too) in
 * fixed windows; once either count reaches its limit, POST /console/api/session answers 429 with
 * Retry-After until that window ends, without checking the key. A successful sign-in does not
 * count. In memory, per process (README: Console access).
 */
export interface SignInLimits {
  perIp: number
  perKeyPrefix: number
  windowMs: number
}

export interface SignInLimiter {
  /** Seconds until a sign-in from `ip` with a key of `prefix` may be tried again; null: now. */
  retryAfter(ip: string, prefix: string, now: number): number | null
  /** Counts one failed sign-in. */
  failed(ip: string, prefix: string, now: number): void
}

/** Bounds the memory a flood of distinct addresses or prefixes can take. */
const MAX_ENTRIES = 50_000

export function createSignInLimiter(limits: SignInLimits): SignInLimiter {
  const windows = new Map<string, { count: number; resetAt: number }>()
  const live = (key: string, now: number) => {
    const w = windows.get(key)
    if (w && w.resetAt <= now) {
      windows.delete(key)
      return undefined
    }
    return w
  }
  const wait = (key: string, limit: number, now: number): number | null => {
    const w = live(key, now)
    return w && w.count >= limit ? Math.max(1, Math.ceil((w.resetAt - now) / 1000)) : null
  }
  const bump = (key: string, now: number) => {
    const w = live(key, now)
    if (w) w.count += 1
    else {
      if (windows.size >= MAX_ENTRIES)
        for (const [k, v] of windows) if (v.resetAt <= now || windows.size >= MAX_ENTRIES) windows.delete(k)
      windows.set(key, { count: 1, resetAt: now + limits.windowMs })
    }
  }
  return {
    retryAfter(ip, prefix, now) {
      const a = wait('ip\u0001' + ip, limits.perIp, now)
      const b = wait('key\u0001' + prefix, limits.perKeyPrefix, now)
      return a === null && b === null ? null : Math.max(a ?? 0, b ?? 0)
    },
    failed(ip, prefix, now) {
      bump('ip\u0001' + ip, now)
      bump('key\u0001' + prefix, now)
    },
  }
}
