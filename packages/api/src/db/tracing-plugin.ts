import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely'

const tracer = () => trace.getTracer('burnrate-api')

const STATEMENT: Record<string, string> = {
  SelectQueryNode: 'SELECT',
  InsertQueryNode: 'INSERT',
  UpdateQueryNode: 'UPDATE',
  DeleteQueryNode: 'DELETE',
  MergeQueryNode: 'MERGE',
  RawNode: 'SQL',
}

function tableOf(node: RootOperationNode): string | undefined {
  const n = node as {
    from?: { froms?: { table?: { identifier?: { name?: string } } }[] }
    into?: { table?: { identifier?: { name?: string } } }
    table?: { table?: { identifier?: { name?: string } } }
  }
  return (
    n.from?.froms?.[0]?.table?.identifier?.name ?? n.into?.table?.identifier?.name ?? n.table?.table?.identifier?.name
  )
}

/**
 * A span per database statement (child of the active span: the GraphQL operation, a background job): its
 * operation and table. Kysely calls transformQuery where the query is made and transformResult once it
 * succeeded; a failed statement's span is ended by the next statement's sweep as an error is not seen here.
 */
export class TracingPlugin implements KyselyPlugin {
  private readonly spans = new Map<unknown, Span>()

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const operation = STATEMENT[args.node.kind] ?? args.node.kind
    const table = tableOf(args.node)
    const span = tracer().startSpan(
      table ? `${operation} ${table}` : operation,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'postgresql',
          'db.operation.name': operation,
          ...(table ? { 'db.collection.name': table } : {}),
        },
      },
      context.active(),
    )
    this.spans.set(args.queryId, span)
    // A statement that failed never reaches transformResult: bound the map.
    if (this.spans.size > 10_000) {
      for (const [id, open] of this.spans) {
        open.setStatus({ code: SpanStatusCode.ERROR, message: 'no result' })
        open.end()
        this.spans.delete(id)
        if (this.spans.size <= 5_000) break
      }
    }
    return args.node
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const span = this.spans.get(args.queryId)
    if (span) {
      this.spans.delete(args.queryId)
      span.setAttribute('db.response.returned_rows', args.result.rows.length)
      span.end()
    }
    return args.result
  }
}
