import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { printSchemaSDL } from '../src/schema/index.ts'

const target = fileURLToPath(new URL('../schema.graphql', import.meta.url))
writeFileSync(target, printSchemaSDL())
console.log(`wrote ${target}`)
