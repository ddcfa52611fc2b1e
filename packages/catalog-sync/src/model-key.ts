/**
 * "provider/model" as messages, logs and rejection records name a model. OpenRouter's ids already
 * carry a namespace, and its own models live in `openrouter/…` (openrouter/auto): such an id is not
 * prefixed a second time, so no key reads `openrouter/openrouter/auto`.
 */
export function modelKey(provider: string, model: string): string {
  return model.toLowerCase().startsWith(`${provider.toLowerCase()}/`) ? model : `${provider}/${model}`
}
