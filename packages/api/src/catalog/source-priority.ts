/**
 * Which public source prices a model when several know it: sources are never merged, so the first
 * of this list that has rows for the model prices all of it (a disagreement shows up in
 * catalogConflicts). OpenRouter's own API is the authority on what routing through it costs; it
 * only ever writes rows for provider `openrouter`. Unknown sources come last, by name.
 */
export const SOURCE_PRIORITY = ['openrouter', 'genai-prices', 'litellm'] as const

export function sourceRank(source: string): number {
  const i = (SOURCE_PRIORITY as readonly string[]).indexOf(source)
  return i === -1 ? SOURCE_PRIORITY.length : i
}
