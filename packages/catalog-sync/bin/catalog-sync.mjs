#!/usr/bin/env node
/* global process, console, AbortController */
// The CLI is TypeScript run through tsx, like the rest of the workspace's commands.
import { register } from 'tsx/esm/api'

register()
const { runCli } = await import('../src/cli.ts')
const controller = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => controller.abort())
process.exitCode = await runCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => process.stderr.write(line.startsWith('\r') ? line : `${line}\n`),
  isTty: Boolean(process.stderr.isTTY),
  env: process.env,
  signal: controller.signal,
})
