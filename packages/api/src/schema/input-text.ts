/**
 * One gate for text that PostgreSQL cannot store or would store altered: a NUL character (text and
 * jsonb refuse \u0000, so the write fails deep inside a transaction) and unpaired UTF-16 surrogates
 * (not Unicode; the driver replaces them, so what is stored is not what was sent, and later reads
 * of it fail). Every string of every operation passes here before execution — variables and
 * literals, JSON keys included — so a new argument is covered without anyone remembering to.
 */
import { visit, Kind, type DocumentNode, type ValueNode } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import { badInput } from '../shared/errors.ts'
import { toGraphQLError } from './errors.ts'

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Why a string cannot be accepted, or null. */
function textProblem(value: string): string | null {
  if (value.includes('\u0000')) return 'contains a NUL character (\\u0000), which cannot be stored'
  if (LONE_SURROGATE.test(value)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)'
  return null
}

interface Problem {
  field: string
  message: string
}

/**
 * The first string of a JSON-like value that cannot be stored, keys included, with its path (`events.3.id`).
 * Walks without recursion: its depth is whatever the client sent. Also used by POST /v1/usage/batch.
 */
export function findUnsafeValue(root: unknown, rootPath: string): Problem | null {
  const stack: [unknown, string][] = [[root, rootPath]]
  while (stack.length > 0) {
    const [value, path] = stack.pop()!
    if (typeof value === 'string') {
      const problem = textProblem(value)
      if (problem) return { field: path, message: `${path} ${problem}` }
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], `${path}.${i}`])
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        const problem = textProblem(key)
        if (problem) return { field: path, message: `a key of ${path} ${problem}` }
        stack.push([inner, `${path}.${key}`])
      }
    }
  }
  return null
}

function checkLiteral(root: ValueNode, rootPath: string): Problem | null {
  const stack: [ValueNode, string][] = [[root, rootPath]]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    if (node.kind === Kind.STRING) {
      const problem = textProblem(node.value)
      if (problem) return { field: path, message: `${path} ${problem}` }
    } else if (node.kind === Kind.LIST) {
      node.values.forEach((item, i) => stack.push([item, `${path}.${i}`]))
    } else if (node.kind === Kind.OBJECT) {
      for (const field of node.fields) stack.push([field.value, `${path}.${field.name.value}`])
    }
  }
  return null
}

/** The first string of the request that cannot be stored, with the argument or variable path it sits at. */
function findUnsafeText(document: DocumentNode, variables: Record<string, unknown> | null | undefined): Problem | null {
  for (const [name, value] of Object.entries(variables ?? {})) {
    const problem = findUnsafeValue(value, name)
    if (problem) return problem
  }
  let found: Problem | null = null
  visit(document, {
    Argument(node) {
      found ??= checkLiteral(node.value, node.name.value)
    },
    VariableDefinition(node) {
      if (node.defaultValue) found ??= checkLiteral(node.defaultValue, node.variable.name.value)
    },
  })
  return found
}

const refusal = (problem: Problem) => ({ errors: [toGraphQLError(badInput(problem.message, problem.field))] })

/** Refuses the request before any resolver runs, so nothing is half-written. */
export const unsafeTextPlugin: Plugin = {
  onExecute({ args, setResultAndStopExecution }) {
    const problem = findUnsafeText(args.document, args.variableValues as Record<string, unknown> | undefined)
    if (problem) setResultAndStopExecution(refusal(problem))
  },
  onSubscribe({ args, setResultAndStopExecution }) {
    const problem = findUnsafeText(args.document, args.variableValues as Record<string, unknown> | undefined)
    if (problem) setResultAndStopExecution(refusal(problem))
  },
}
