/**
 * Work that runs one batch at a time per key because it would queue on the same lock anyway (a
 * customer's reservations lock its budgets): callers of one key that arrive while a batch runs wait
 * and go together as the next batch, in arrival order, so N concurrent callers cost one lock wait
 * and one transaction instead of N of each. A caller that finds its key idle is sent at the end of
 * its event-loop turn with whoever arrived in that turn.
 *
 * `runBatch` returns one output per input, in input order. If it throws for a batch of several,
 * each input is run again alone, in order, so one caller's failure never fails another's (the batch
 * must have left nothing behind: a transaction that rolled back).
 */
export interface SerialBatches<I, O> {
  run(key: string, input: I): Promise<O>
}

interface Waiter<I, O> {
  input: I
  resolve: (output: O) => void
  reject: (error: unknown) => void
}

export function serialBatches<I, O>(
  runBatch: (key: string, inputs: I[]) => Promise<O[]>,
  { maxBatch = 256 }: { maxBatch?: number } = {},
): SerialBatches<I, O> {
  const lanes = new Map<string, Waiter<I, O>[]>()

  async function settle(key: string, batch: Waiter<I, O>[]): Promise<void> {
    let outputs: O[]
    try {
      outputs = await runBatch(
        key,
        batch.map((w) => w.input),
      )
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error)
      for (const waiter of batch) await settle(key, [waiter])
      return
    }
    for (const [i, waiter] of batch.entries()) {
      if (i < outputs.length) waiter.resolve(outputs[i]!)
      else waiter.reject(new Error('a batch returned fewer outputs than it was given inputs'))
    }
  }

  async function drain(key: string): Promise<void> {
    const lane = lanes.get(key)!
    while (lane.length > 0) await settle(key, lane.splice(0, maxBatch))
    lanes.delete(key)
  }

  return {
    run(key, input) {
      return new Promise<O>((resolve, reject) => {
        const lane = lanes.get(key)
        if (lane) return void lane.push({ input, resolve, reject })
        lanes.set(key, [{ input, resolve, reject }])
        setImmediate(() => void drain(key))
      })
    },
  }
}
