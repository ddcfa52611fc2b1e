/** The Stripe tables' names for domain code: aliases of the generated types (db/generated.ts). */
import type { Selectable } from '../db/types.ts'
import type * as G from '../db/generated.ts'

export type { StripePushStatus, StripeReportingMode } from '../db/column-types.ts'

type StripeAccountTable = G.StripeAccounts
export type StripeOutboxTable = G.StripeOutbox
export type StripePushStateTable = G.StripePushState
export type StripePushTable = G.StripePushes
type StripeInvoiceTable = G.StripeInvoices
export type StripeAccountRow = Selectable<StripeAccountTable>
export type StripePushRow = Selectable<StripePushTable>
export type StripeInvoiceRow = Selectable<StripeInvoiceTable>
