import { readFileSync } from 'node:fs'

/** A provider documentation example from test/fixtures. */
export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as T
}

export async function* asStream<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item
}
