/**
 * How deeply a JSON text nests arrays and objects, found by scanning its characters (no parse, no
 * recursion), so a body can be refused before JSON.parse, JSON.stringify or a recursive walk of
 * it overflows the stack.
 */

/** True when `text` opens more than `max` arrays or objects at once (strings are skipped). */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}
