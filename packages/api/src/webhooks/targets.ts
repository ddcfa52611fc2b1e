import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/**
 * Webhook URLs are chosen by tenants, and the API calls them: without a check, a tenant could make
 * it reach loopback, the cloud metadata service (169.254.169.254) or the private network (SSRF).
 * Refused unless WEBHOOK_ALLOW_PRIVATE_TARGETS (local development, tests).
 */
const blocked = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  blocked.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, prefix, 'ipv6')

export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return blocked.check(mapped[1]!, 'ipv4')
  const family = isIP(address)
  if (family === 0) return true
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

/** The reason a URL may not be called, or null. Resolves the host (every address must be public). */
export async function privateTargetReason(url: string): Promise<string | null> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is a loopback host`
  const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true, verbatim: true }).catch(() => [])
  if (addresses.length === 0) return `${host} does not resolve`
  const inner = addresses.find((a) => isPrivateAddress(a.address))
  return inner ? `${host} resolves to a private address (${inner.address})` : null
}
