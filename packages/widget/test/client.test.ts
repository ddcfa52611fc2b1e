import { describe, expect, it } from 'vitest'
import { createClient, isExpired } from '../src/client.ts'

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } })
const expired = {
  errors: [
    {
      message: 'This widget session expired',
      extensions: { code: 'UNAUTHENTICATED', reason: 'WIDGET_SESSION_EXPIRED' },
    },
  ],
}

describe('widget client token lifecycle', () => {
  it('calls fetchToken again on UNAUTHENTICATED and retries the request once with the new token', async () => {
    let minted = 0
    const seen: string[] = []
    const client = createClient({
      endpoint: 'http://api/graphql',
      fetchToken: async () => ({ token: `br_ws_${++minted}`, customerId: 'acme' }),
      fetch: async (_url, init) => {
        const auth = new Headers(init?.headers).get('authorization')!
        seen.push(auth)
        return auth === 'Bearer br_ws_1' ? json(expired) : json({ data: { ok: true } })
      },
    })
    await expect(client.request('{ ok }')).resolves.toEqual({ ok: true })
    expect(seen).toEqual(['Bearer br_ws_1', 'Bearer br_ws_2'])
    expect(minted).toBe(2)
  })

  it('fetches a new token shortly before the announced expiry, once for concurrent requests', async () => {
    let now = Date.parse('2026-11-23T10:00:00Z')
    let minted = 0
    const client = createClient({
      endpoint: 'http://api/graphql',
      now: () => now,
      fetchToken: async () => ({
        token: `t${++minted}`,
        customerId: 'acme',
        expiresAt: new Date(now + 60_000).toISOString(),
      }),
      fetch: async () => json({ data: { ok: 1 } }),
    })
    await client.request('{ ok }')
    now += 30_000
    await client.request('{ ok }')
    expect(minted).toBe(1)
    now += 26_000
    await Promise.all([client.request('{ ok }'), client.request('{ ok }'), client.request('{ ok }')])
    expect(minted).toBe(2)
  })

  it('reports a session that stays expired as expired, and other errors with their code', async () => {
    const client = createClient({
      endpoint: 'x',
      fetchToken: async () => ({ token: 't', customerId: 'c' }),
      fetch: async () => json(expired),
    })
    const error = await client.request('{ ok }').catch((e: unknown) => e)
    expect(isExpired(error)).toBe(true)
    const forbidden = createClient({
      endpoint: 'x',
      fetchToken: async () => ({ token: 't', customerId: 'c' }),
      fetch: async () => json({ errors: [{ message: 'no', extensions: { code: 'FORBIDDEN' } }] }),
    })
    await expect(forbidden.request('{ ok }')).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'no' })
  })

  it('retries fetchToken after it failed', async () => {
    let calls = 0
    const client = createClient({
      endpoint: 'x',
      fetchToken: async () => {
        if (++calls === 1) throw new Error('backend down')
        return { token: 't', customerId: 'c' }
      },
      fetch: async () => json({ data: { ok: 1 } }),
    })
    await expect(client.request('{ ok }')).rejects.toThrow('backend down')
    await expect(client.request('{ ok }')).resolves.toEqual({ ok: 1 })
  })
})

describe('SSE reader', () => {
  it('parses next events split across chunks and reconnects with a new token when the stream says expired', async () => {
    let minted = 0
    let connections = 0
    const encoder = new TextEncoder()
    const client = createClient({
      endpoint: 'x',
      fetchToken: async () => ({ token: `t${++minted}`, customerId: 'c' }),
      fetch: async () => {
        connections++
        const chunks =
          connections === 1
            ? [`event: next\r\ndata: ${JSON.stringify(expired)}\r\n\r\n`]
            : [
                'event: next\ndata: {"data":{"budgetAlerts":',
                '{"id":"1"}}}\n\n:\n\nevent: next\ndata: {"data":{"budgetAlerts":{"id":"2"}}}\n\n',
              ]
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            for (const c of chunks) controller.enqueue(encoder.encode(c))
            if (connections === 1) controller.close()
          },
        })
        return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
      },
    })
    const got: string[] = []
    let connected = 0
    const stop = client.subscribe<{ budgetAlerts: { id: string } }>(
      'subscription { x }',
      {},
      {
        next: (d) => got.push(d.budgetAlerts.id),
        connected: () => connected++,
      },
    )
    await expect.poll(() => got, { timeout: 10_000 }).toEqual(['1', '2'])
    stop()
    expect(minted).toBe(2)
    expect(connected).toBe(2)
  })
})

describe('widget client priceDetails', () => {
  it('asks widgetSession once per token, again after a renewal, and again after a failure', async () => {
    let now = Date.parse('2026-11-23T10:00:00Z')
    let minted = 0
    let fail = false
    const asked: string[] = []
    const client = createClient({
      endpoint: 'x',
      now: () => now,
      fetchToken: async () => ({
        token: `t${++minted}`,
        customerId: 'acme',
        expiresAt: new Date(now + 60_000).toISOString(),
      }),
      fetch: async (_url, init) => {
        asked.push(new Headers(init?.headers).get('authorization')!)
        if (fail) return json({ errors: [{ message: 'down', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] })
        expect(JSON.parse(String(init?.body)).query).toContain('widgetSession { priceDetails }')
        return json({ data: { widgetSession: { priceDetails: minted === 1 } } })
      },
    })
    expect(await Promise.all([client.priceDetails(), client.priceDetails()])).toEqual([true, true])
    expect(await client.priceDetails()).toBe(true)
    expect(asked).toEqual(['Bearer t1'])
    now += 56_000
    expect(await client.priceDetails()).toBe(false)
    expect(asked).toEqual(['Bearer t1', 'Bearer t2'])
    now += 56_000
    fail = true
    await expect(client.priceDetails()).rejects.toMatchObject({ code: 'INTERNAL_SERVER_ERROR' })
    fail = false
    expect(await client.priceDetails()).toBe(false)
    expect(asked).toEqual(['Bearer t1', 'Bearer t2', 'Bearer t3', 'Bearer t3'])
  })
})
