/**
 * Yoga plugins that refuse a bad GraphQL-over-HTTP request before anything runs: an Accept header
 * no response can satisfy (yoga would execute a mutation, then answer 406), GET parameters that are
 * not JSON, form or multipart bodies, and documents too long or too deeply nested to parse safely
 * (graphql-js parses recursively: 3,000 levels overflowed the stack and answered 500).
 */
import { GraphQLError, Lexer, parse, Source, TokenKind, type ParseOptions } from 'graphql'
import type { Plugin } from 'graphql-yoga'

/** Most tokens a document may have (graphql-armor's default is 1,000; a 1,000-event batch mutation stays far below). */
export const GRAPHQL_MAX_TOKENS = 50_000
/**
 * Most brackets ({ [ () open at once in a document: selection sets, argument lists and literal
 * lists and objects together. Above GRAPHQL_MAX_DEPTH (at most 100) with room for arguments,
 * far below what overflows the parser's and the validators' recursion.
 */
export const GRAPHQL_MAX_NESTING = 200

/** POST bodies /graphql takes: JSON (GraphQL over HTTP) or a GraphQL document as the whole body. */
export const GRAPHQL_BODY_TYPES = /^application\/(json|graphql\+json|graphql-response\+json|graphql)\s*(;|$)/i

/** What yoga can answer with: single results, subscriptions over SSE, incremental delivery. */
const RESPONSE_TYPES = ['application/graphql-response+json', 'application/json', 'text/event-stream', 'multipart/mixed']

/** A GraphQLError answered with `status`; yoga reads `extensions.http` and leaves it out of the body. */
function requestError(message: string, code: string, status: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status } } })
}

/** Why a POST body of this content type is refused. */
export const unsupportedBodyType = (type: string) =>
  `POST /graphql takes a JSON body ({"query": …, "variables": …}) with Content-Type: application/json${type ? `, not ${type.split(';')[0]}` : ''}.`

const jsonResponse = (status: number, message: string, code: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
  })

/** True when some media range of an Accept header (q > 0) covers one of `types`. */
function accepts(header: string | null, types: readonly string[]): boolean {
  if (header === null || header.trim() === '') return true
  for (const range of header.split(',')) {
    const [mediaRange = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase())
    const q = params.find((p) => p.startsWith('q='))
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue
    const [type, subtype] = mediaRange.split('/')
    if (!type || !subtype) continue
    for (const candidate of types) {
      const [ct, cs] = candidate.split('/')
      if ((type === '*' || type === ct) && (subtype === '*' || subtype === cs)) return true
    }
  }
  return false
}

/**
 * Counts tokens and open brackets with graphql-js's own lexer (iterative, so it cannot overflow),
 * throwing a 400 with what was exceeded before the recursive parser sees the document.
 */
function checkDocumentSize(source: string | Source, limits: { maxTokens: number; maxNesting: number }): void {
  const lexer = new Lexer(typeof source === 'string' ? new Source(source) : source)
  let tokens = 0
  let nesting = 0
  const next = () => {
    try {
      return lexer.advance()
    } catch (error) {
      // A syntax error: the parser meets it at the same token (no deeper than counted so far) and reports it with its code.
      if (error instanceof GraphQLError) return null
      throw error
    }
  }
  for (let token = next(); token && token.kind !== TokenKind.EOF; token = next()) {
    if (++tokens > limits.maxTokens) {
      throw requestError(
        `The query has more than ${limits.maxTokens} tokens; split it into smaller operations.`,
        'QUERY_TOO_COMPLEX',
        400,
      )
    }
    if (token.kind === TokenKind.BRACE_L || token.kind === TokenKind.BRACKET_L || token.kind === TokenKind.PAREN_L) {
      if (++nesting > limits.maxNesting) {
        throw requestError(
          `The query nests brackets more than ${limits.maxNesting} levels deep (line ${token.line}); selections deeper than the depth limit are refused anyway.`,
          'QUERY_TOO_COMPLEX',
          400,
        )
      }
    } else if (
      token.kind === TokenKind.BRACE_R ||
      token.kind === TokenKind.BRACKET_R ||
      token.kind === TokenKind.PAREN_R
    ) {
      nesting = Math.max(0, nesting - 1)
    }
  }
}

export function graphqlRequestGuards(options: { maxTokens?: number; maxNesting?: number } = {}): Plugin {
  const limits = {
    maxTokens: options.maxTokens ?? GRAPHQL_MAX_TOKENS,
    maxNesting: options.maxNesting ?? GRAPHQL_MAX_NESTING,
  }
  return {
    onRequestParse({ request, requestParser, setRequestParser, endResponse }) {
      const accept = request.headers.get('accept')
      // GraphiQL's page is rendered before this hook for browsers; with GraphiQL off an HTML-only GET is refused like any other.
      if (!accepts(accept, RESPONSE_TYPES)) {
        return endResponse(
          jsonResponse(
            406,
            `Cannot answer with ${accept}: accept application/graphql-response+json, application/json, text/event-stream or multipart/mixed.`,
            'NOT_ACCEPTABLE',
          ),
        )
      }
      if (request.method === 'POST') {
        const type = request.headers.get('content-type') ?? ''
        if (!GRAPHQL_BODY_TYPES.test(type)) {
          return endResponse(jsonResponse(415, unsupportedBodyType(type), 'UNSUPPORTED_MEDIA_TYPE'))
        }
      }
      if (!requestParser) return
      // Yoga's GET parser lets JSON.parse's SyntaxError for `variables` or `extensions` through (a 500).
      setRequestParser(async (req) => {
        try {
          return await requestParser(req)
        } catch (error) {
          if (error instanceof GraphQLError) throw error
          throw requestError(
            `The request's GraphQL parameters could not be read: ${error instanceof Error ? error.message : String(error)}. variables and extensions must be JSON objects.`,
            'BAD_REQUEST',
            400,
          )
        }
      })
    },
    // Checked on the HTTP parameters, so the error keeps its 400 (yoga marks parse errors as the
    // spec's, answered 200 to application/json); the parser checks again for GraphQL over WebSocket.
    onParams({ params }) {
      if (typeof params.query === 'string') checkDocumentSize(params.query, limits)
    },
    onParse({ setParseFn }) {
      setParseFn((source: string | Source, parseOptions?: ParseOptions) => {
        checkDocumentSize(source, limits)
        return parse(source, { ...parseOptions, maxTokens: limits.maxTokens })
      })
    },
  }
}
