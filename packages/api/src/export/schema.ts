import { builder } from '../schema/builder.ts'
import type { ManifestFile } from './files.ts'
import type { ServerExport } from './service.ts'

const UsageExportFile = builder.objectRef<ManifestFile>('UsageExportFile').implement({
  description: 'One UTC day of usage events: a Parquet and a CSV file, with what DuckDB read back from the Parquet.',
  fields: (t) => ({
    day: t.exposeString('day', { description: 'YYYY-MM-DD (UTC).' }),
    parquet: t.exposeString('parquet', { description: 'Path relative to the export directory.' }),
    csv: t.exposeString('csv', { description: 'Path relative to the export directory.' }),
    rows: t.exposeInt('rows'),
    amount: t.field({ type: 'Decimal', resolve: (f) => f.amount }),
    cost: t.field({ type: 'Decimal', resolve: (f) => f.cost }),
  }),
})

const UsageExport = builder.objectRef<ServerExport>('UsageExport').implement({
  description:
    "A finished export of the tenant's usage events in [from, to): one Parquet and one CSV file per UTC day plus manifest.json, in a new folder on the server.",
  fields: (t) => ({
    directory: t.exposeString('directory', {
      description: 'The folder on the server holding the files and manifest.json.',
    }),
    from: t.field({ type: 'DateTime', resolve: (m) => m.from }),
    to: t.field({ type: 'DateTime', resolve: (m) => m.to }),
    createdAt: t.field({ type: 'DateTime', resolve: (m) => m.createdAt }),
    days: t.field({ type: ['String'], resolve: (m) => m.files.map((f) => f.day) }),
    files: t.field({ type: [UsageExportFile], resolve: (m) => m.files }),
    rows: t.int({ resolve: (m) => m.totals.rows }),
    amount: t.field({ type: 'Decimal', resolve: (m) => m.totals.amount }),
    cost: t.field({ type: 'Decimal', resolve: (m) => m.totals.cost }),
  }),
})

const UsageExportInput = builder.inputType('UsageExportInput', {
  fields: (t) => ({
    from: t.field({ type: 'DateTime', required: true }),
    to: t.field({ type: 'DateTime', required: true, description: 'Exclusive; at most 366 days after from.' }),
  }),
})

builder.mutationFields((t) => ({
  exportUsage: t.withAuth({ tenant: true }).field({
    type: UsageExport,
    description:
      "Writes the tenant's usage events in [from, to) as Parquet and CSV per UTC day with a manifest into EXPORT_DIR on the server.",
    args: { input: t.arg({ type: UsageExportInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.exports.exportToServer(ctx.principal.tenant.id, input),
  }),
}))
