/**
 * The root README's SDK example, type-checked against the real `openai` client (v6) so the
 * documented calls keep compiling: `tsc -p packages/sdk` includes this folder. Not run by tests.
 */
import OpenAI from 'openai'
import { createMeter, meterStream, openai } from '@burnrate/sdk'

const client = new OpenAI()
const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Say hello' }]

export async function example(): Promise<string> {
  const meter = createMeter({ url: 'http://127.0.0.1:4000', apiKey: process.env.BURNRATE_KEY! })
  const completion = await client.chat.completions.create({ model: 'gpt-4o', messages })
  meter.record({ ...openai.chatCompletion(completion), customerId: 'acme', feature: 'chat' }) // returns at once

  // Streams: OpenAI only reports usage with stream_options.include_usage — withStreamUsage sets it.
  const stream = await client.chat.completions.create(
    openai.withStreamUsage({ model: 'gpt-4o', messages, stream: true }),
  )
  let text = ''
  for await (const chunk of meterStream(
    stream,
    openai.chatCompletionStream(),
    (u) => u && meter.record({ ...u, customerId: 'acme' }),
  )) {
    text += chunk.choices[0]?.delta.content ?? ''
  }

  // The Responses API, metered the same way.
  const response = await client.responses.create({ model: 'gpt-4o', input: 'Say hello' })
  meter.record({ ...openai.response(response), customerId: 'acme' })

  process.on('SIGTERM', async () => {
    await meter.close() // flushes (up to 10 s)
    process.exit(0)
  })
  return text
}
