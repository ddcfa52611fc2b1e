/**
 * What the whole-run log scan looks for: the literal credentials tests handed out, and anything
 * shaped like a credential that the logger's redaction left in place (its own placeholder excepted).
 */
const SHAPES: RegExp[] = [
  /\bbr_(?:sk|whsec|ws)_[A-Za-z0-9_-]{6,}/,
  /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9_-]{6,}/,
  /\bwhsec_[A-Za-z0-9_+/=-]{6,}/,
  /\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{12,}/,
  /\bBearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/i,
]

export function findSecretsInLogs(logs: { file: string; text: string }[], secrets: string[]): string[] {
  const literal = secrets.filter((s) => s.length >= 12)
  const found: string[] = []
  for (const { file, text } of logs) {
    for (const line of text.split('\n')) {
      if (!line) continue
      const hit = literal.find((s) => line.includes(s)) ?? SHAPES.map((p) => p.exec(line)?.[0]).find(Boolean)
      if (hit) found.push(`${file}: ${hit.slice(0, 12)}… in ${line.slice(0, 200)}`)
    }
  }
  return found
}
