import { badInput } from '../shared/errors.ts'

const MAX_WIDGET_ORIGINS = 50

/**
 * Checks and normalizes the origins a tenant allows for widget tokens: scheme, host and port only
 * (what browsers send in the Origin header), http or https, no path, no wildcard.
 */
export function normalizeWidgetOrigins(origins: readonly string[], field = 'input.widgetOrigins'): string[] {
  if (origins.length > MAX_WIDGET_ORIGINS) throw badInput(`at most ${MAX_WIDGET_ORIGINS} widget origins`, field)
  const normalized = new Set<string>()
  for (const [i, origin] of origins.entries()) {
    let url: URL | null = null
    try {
      url = new URL(origin)
    } catch {
      url = null
    }
    if (
      !url ||
      origin.includes('*') ||
      (url.protocol !== 'https:' && url.protocol !== 'http:') ||
      url.origin === 'null'
    ) {
      throw badInput(`"${origin}" is not an origin such as https://app.example.com`, `${field}[${i}]`)
    }
    if (
      (url.pathname !== '/' && url.pathname !== '') ||
      url.search ||
      url.hash ||
      url.username ||
      url.password ||
      origin.endsWith('/')
    ) {
      throw badInput(
        `"${origin}" must be an origin only (scheme, host and optional port), without path, query or trailing slash`,
        `${field}[${i}]`,
      )
    }
    normalized.add(url.origin)
  }
  return [...normalized]
}

/** null: the tenant never restricted origins, so any origin may use its widget tokens. */
export function isWidgetOriginAllowed(allowed: readonly string[] | null, origin: string): boolean {
  if (allowed === null) return true
  let normalized: string
  try {
    normalized = new URL(origin).origin
  } catch {
    return false
  }
  return allowed.includes(normalized)
}
