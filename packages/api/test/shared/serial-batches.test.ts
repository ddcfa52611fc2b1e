import { describe, expect, it } from 'vitest'
import { serialBatches } from '../../src/shared/serial-batches.ts'

/** A batch runner that records what it was given and answers each input with input × 10, once released. */
function recorder(fail: (input: number) => boolean = () => false) {
  const batches: { key: string; inputs: number[] }[] = []
  const gates: (() => void)[] = []
  let running = 0
  let maxRunning = 0
  const run = async (key: string, inputs: number[]) => {
    batches.push({ key, inputs: [...inputs] })
    running += 1
    maxRunning = Math.max(maxRunning, running)
    await new Promise<void>((resolve) => gates.push(resolve))
    running -= 1
    if (inputs.some(fail)) throw new Error(`refused ${inputs.join(',')}`)
    return inputs.map((i) => i * 10)
  }
  /** Lets every batch there is, and every batch they lead to, finish. */
  const releaseAll = async () => {
    for (let idle = 0; idle < 3;) {
      await new Promise((resolve) => setImmediate(resolve))
      if (gates.length === 0) idle += 1
      else {
        idle = 0
        gates.shift()!()
      }
    }
  }
  return { run, batches, releaseAll, maxRunning: () => maxRunning }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('serialBatches', () => {
  it('sends the callers of one turn as one batch, and those arriving while it runs as the next, in order', async () => {
    const r = recorder()
    const batches = serialBatches(r.run)
    const first = [1, 2, 3].map((i) => batches.run('a', i))
    await turn()
    expect(r.batches).toEqual([{ key: 'a', inputs: [1, 2, 3] }])
    const second = [4, 5].map((i) => batches.run('a', i))
    await turn()
    // Still one batch: the key's next batch waits for the running one.
    expect(r.batches).toHaveLength(1)
    await r.releaseAll()
    expect(await Promise.all([...first, ...second])).toEqual([10, 20, 30, 40, 50])
    expect(r.batches).toEqual([
      { key: 'a', inputs: [1, 2, 3] },
      { key: 'a', inputs: [4, 5] },
    ])
    expect(r.maxRunning()).toBe(1)
  })

  it('runs different keys side by side', async () => {
    const r = recorder()
    const batches = serialBatches(r.run)
    const all = [batches.run('a', 1), batches.run('b', 2), batches.run('a', 3)]
    await turn()
    expect(r.batches).toEqual([
      { key: 'a', inputs: [1, 3] },
      { key: 'b', inputs: [2] },
    ])
    expect(r.maxRunning()).toBe(2)
    await r.releaseAll()
    expect(await Promise.all(all)).toEqual([10, 20, 30])
  })

  it('caps a batch at maxBatch and sends the rest next', async () => {
    const r = recorder()
    const batches = serialBatches(r.run, { maxBatch: 2 })
    const all = [1, 2, 3, 4, 5].map((i) => batches.run('a', i))
    await r.releaseAll()
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50])
    expect(r.batches.map((b) => b.inputs)).toEqual([[1, 2], [3, 4], [5]])
  })

  it('runs a failed batch again one caller at a time, in order: only the failing caller sees the error', async () => {
    const r = recorder((i) => i === 2)
    const batches = serialBatches(r.run)
    const all = [1, 2, 3].map((i) => batches.run('a', i).catch((e: Error) => e.message))
    await r.releaseAll()
    expect(await Promise.all(all)).toEqual([10, 'refused 2', 30])
    expect(r.batches.map((b) => b.inputs)).toEqual([[1, 2, 3], [1], [2], [3]])
    expect(r.maxRunning()).toBe(1)
  })

  it('starts a fresh batch for a key once its lane emptied', async () => {
    const r = recorder()
    const batches = serialBatches(r.run)
    const first = batches.run('a', 1)
    await r.releaseAll()
    expect(await first).toBe(10)
    const second = batches.run('a', 2)
    await r.releaseAll()
    expect(await second).toBe(20)
    expect(r.batches.map((b) => b.inputs)).toEqual([[1], [2]])
  })
})
