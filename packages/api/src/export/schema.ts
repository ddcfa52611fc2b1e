import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import { EXPORT_JOB_PAGE, type ExportJob } from './jobs.ts'
import type { ManifestFile } from './files.ts'
import { RETENTION_RUN_PAGE, type RetentionRun } from './retention-schedule.ts'
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

const UsageExportLineItems = builder.objectRef<ServerExport['lineItems']>('UsageExportLineItems').implement({
  description:
    'The billed lines of the exported events (one row per line: usage type, quantity, unit price, cost, amount), one Parquet and one CSV file per UTC day.',
  fields: (t) => ({
    files: t.field({ type: [UsageExportFile], resolve: (l) => l.files }),
    rows: t.int({ resolve: (l) => l.totals.rows }),
    amount: t.field({ type: 'Decimal', resolve: (l) => l.totals.amount }),
    cost: t.field({ type: 'Decimal', resolve: (l) => l.totals.cost }),
  }),
})

const ExportTarget = builder.enumType('ExportTarget', {
  description: 'Where a server-side export is written.',
  values: {
    SERVER: { description: 'EXPORT_DIR on the server (default <DATA_DIR>/exports).' },
    S3: { description: 'The S3-compatible bucket configured with EXPORT_S3_BUCKET (and EXPORT_S3_ENDPOINT, …).' },
  } as const,
})

const UsageExport = builder.objectRef<ServerExport>('UsageExport').implement({
  description:
    "A finished export of the tenant's usage events in [from, to) and their line items: one Parquet and one CSV file per UTC day plus manifest.json, in a new folder on the server or in the bucket.",
  fields: (t) => ({
    directory: t.exposeString('directory', {
      description: 'The folder on the server, or s3://bucket/prefix/, holding the files and manifest.json.',
    }),
    lineItems: t.field({ type: UsageExportLineItems, resolve: (m) => m.lineItems }),
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
    target: t.field({ type: ExportTarget, required: false, description: 'Default SERVER.' }),
    from: t.field({ type: 'DateTime', required: true }),
    to: t.field({ type: 'DateTime', required: true, description: 'Exclusive; at most 366 days after from.' }),
  }),
})

builder.mutationFields((t) => ({
  exportUsage: t.withAuth({ tenant: true }).field({
    type: UsageExport,
    description:
      "Writes the tenant's usage events in [from, to) and their line items as Parquet and CSV per UTC day with a manifest into EXPORT_DIR on the server or the S3 bucket, and waits for it. For long ranges use startUsageExport (a job).",
    args: { input: t.arg({ type: UsageExportInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.exports.exportToServer(ctx.principal.tenant.id, { ...input, target: input.target ?? 'SERVER' }),
  }),
}))

const ExportJobStatus = builder.enumType('ExportJobStatus', {
  values: {
    QUEUED: { description: 'Waiting for an API process to run it.' },
    RUNNING: { description: 'Being written; rowsDone of rowsTotal events so far.' },
    SUCCEEDED: { description: 'Done: result holds the manifest and where the files are.' },
    FAILED: { description: 'Stopped: error says why. Nothing of it is in use; start a new export.' },
  } as const,
})

const ExportJobRef = builder.objectRef<ExportJob>('ExportJob').implement({
  description:
    'An export started with startUsageExport, run in the background by an API process. Durable: a job whose process stopped is run again by another (or the restarted) process from the start, into a new folder, up to EXPORT_JOB_MAX_ATTEMPTS times, then FAILED with the reason.',
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: ExportJobStatus, resolve: (j) => j.status }),
    target: t.field({ type: ExportTarget, resolve: (j) => j.target }),
    from: t.field({ type: 'DateTime', resolve: (j) => j.from }),
    to: t.field({ type: 'DateTime', resolve: (j) => j.to }),
    rowsTotal: t.int({
      nullable: true,
      description: 'Usage events in the range, counted when the running attempt began.',
      resolve: (j) => j.rowsTotal,
    }),
    rowsDone: t.int({ description: 'Usage events written so far.', resolve: (j) => j.rowsDone }),
    progress: t.float({
      nullable: true,
      description: 'rowsDone / rowsTotal, from 0 to 1 (1 once SUCCEEDED); null before the count.',
      resolve: (j) =>
        j.status === 'SUCCEEDED' ? 1 : j.rowsTotal === null ? null : j.rowsTotal === 0 ? 0 : j.rowsDone / j.rowsTotal,
    }),
    attempts: t.exposeInt('attempts'),
    createdAt: t.field({ type: 'DateTime', resolve: (j) => j.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.finishedAt }),
    result: t.field({
      type: UsageExport,
      nullable: true,
      description: 'The manifest and the files, once SUCCEEDED.',
      resolve: (j) => j.result,
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why it FAILED.' }),
  }),
})

const ExportJobConnection = connection('ExportJob', ExportJobRef)

builder.mutationFields((t) => ({
  startUsageExport: t.withAuth({ tenant: true }).field({
    type: ExportJobRef,
    description:
      "Queues an export of the tenant's usage events in [from, to) and their line items (as exportUsage writes them) and returns the job at once; follow it with exportJob(id). A bad range or target is BAD_USER_INPUT here, before anything is queued.",
    args: { input: t.arg({ type: UsageExportInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.exportJobs.start(ctx.principal.tenant.id, { ...input, target: input.target ?? 'SERVER' }),
  }),
}))

builder.queryFields((t) => ({
  exportJob: t.withAuth({ tenant: true }).field({
    type: ExportJobRef,
    nullable: true,
    description: "One of the tenant's export jobs; null for an unknown id (or another tenant's).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.exportJobs.get(tenantOf(ctx).id, String(id)),
  }),
  exportJobs: t.withAuth({ tenant: true }).field({
    type: ExportJobConnection,
    description: "The tenant's export jobs, newest first.",
    args: { ...pageArgs(t.arg, EXPORT_JOB_PAGE) },
    resolve: (_root, args, ctx) =>
      ctx.services.exportJobs.page(tenantOf(ctx).id, { first: args.first ?? null, after: args.after ?? null }),
  }),
}))

const RetentionRunStatus = builder.enumType('RetentionRunStatus', {
  values: {
    RUNNING: { description: 'Exporting, verifying and dropping old months now.' },
    SUCCEEDED: { description: 'Done: droppedMonths were archived, verified and dropped; keptMonths stayed.' },
    FAILED: {
      description: 'Stopped: error says why. A month is only dropped once its files matched, so nothing is lost.',
    },
  } as const,
})

const RetentionKeptMonth = builder.objectRef<RetentionRun['keptMonths'][number]>('RetentionKeptMonth').implement({
  description: 'A month a run exported but kept: its files did not match the partition, which was put back.',
  fields: (t) => ({
    month: t.exposeString('month', { description: 'YYYY-MM (UTC).' }),
    reason: t.exposeString('reason'),
  }),
})

const RetentionRunRef = builder.objectRef<RetentionRun>('RetentionRun').implement({
  description:
    "A scheduled retention run (RETENTION_RAW_EVENTS_MONTHS): raw usage events of whole UTC months older than keepMonths exported to the archive, read back, and dropped once row count and sums matched. Runs cover the whole ledger, so every tenant sees the same runs; row counts, amounts and the archive location are every tenant's together and are not shown here (they are in the server's logs). Summaries, invoices and the audit trail are not affected: usage events of a dropped month no longer appear in usageEvents or exports.",
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: RetentionRunStatus, resolve: (r) => r.status }),
    keepMonths: t.exposeInt('keepMonths', { description: 'Whole months of raw events kept before this month.' }),
    startedAt: t.field({ type: 'DateTime', resolve: (r) => r.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.finishedAt }),
    droppedMonths: t.exposeStringList('droppedMonths', {
      description: 'YYYY-MM of each month whose raw events were archived, verified and dropped, oldest first.',
    }),
    keptMonths: t.field({ type: [RetentionKeptMonth], resolve: (r) => r.keptMonths }),
    error: t.exposeString('error', { nullable: true, description: 'Why it FAILED.' }),
  }),
})

const RetentionRunConnection = connection('RetentionRun', RetentionRunRef)

builder.queryFields((t) => ({
  retentionRuns: t.withAuth({ tenant: true }).field({
    type: RetentionRunConnection,
    description:
      'Scheduled retention runs of raw usage events, newest first: empty while RETENTION_RAW_EVENTS_MONTHS is unset. A tenant key sees every run (they span all tenants) but no cross-tenant figures.',
    args: { ...pageArgs(t.arg, RETENTION_RUN_PAGE) },
    resolve: (_root, args, ctx) =>
      ctx.services.retentionSchedule.page({ first: args.first ?? null, after: args.after ?? null }),
  }),
}))
