import type { RatedTier } from "@aforo/core";
import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type {
  Invoice,
  InvoiceLine,
  InvoiceStatus,
  LineType,
  StageName,
  TaxBreakdownEntry,
} from "../domain/invoice.ts";
import type { InvoiceLinesTable, InvoicesTable } from "../tables.ts";

export interface InvoiceFilter {
  customerId?: string | undefined;
  subscriptionId?: string | undefined;
  status?: InvoiceStatus | undefined;
}

function toBreakdownRow(entry: TaxBreakdownEntry) {
  return {
    name: entry.name,
    jurisdiction: entry.jurisdiction,
    rate_percent: entry.ratePercent,
    inclusive: entry.inclusive,
    taxable_amount: String(entry.taxableMinor),
    amount: String(entry.taxMinor),
  };
}

function fromLineRow(row: Selectable<InvoiceLinesTable>): InvoiceLine {
  return {
    type: row.type as LineType,
    description: row.description,
    billableUnit: row.billable_unit,
    ratePlanId: row.rate_plan_id,
    model: row.model,
    quantity: row.quantity,
    unitPrice: row.unit_price,
    amountDecimal: row.amount_decimal,
    amountMinor: BigInt(row.amount),
    tiers: (row.tiers as RatedTier[] | null) ?? null,
    periodStart: new Date(row.period_start),
    periodEnd: new Date(row.period_end),
    taxMinor: BigInt(row.tax_amount),
  };
}

export function fromDb(row: Selectable<InvoicesTable>, lines: InvoiceLine[]): Invoice {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    number: row.number,
    status: row.status as InvoiceStatus,
    customerId: row.customer_id,
    subscriptionId: row.subscription_id,
    billingEntityId: row.billing_entity_id,
    currency: row.currency,
    periodStart: new Date(row.period_start),
    periodEnd: new Date(row.period_end),
    lines,
    subtotal: BigInt(row.subtotal),
    discountTotal: BigInt(row.discount_total),
    taxTotal: BigInt(row.tax_total),
    taxIncluded: BigInt(row.tax_included),
    taxBreakdown: row.tax_breakdown.map((entry) => ({
      name: entry.name,
      jurisdiction: entry.jurisdiction,
      ratePercent: entry.rate_percent,
      inclusive: entry.inclusive,
      taxableMinor: BigInt(entry.taxable_amount),
      taxMinor: BigInt(entry.amount),
    })),
    creditsApplied: BigInt(row.credits_applied),
    creditNotesTotal: BigInt(row.credit_notes_total),
    total: BigInt(row.total),
    amountDue: BigInt(row.amount_due),
    amountPaid: BigInt(row.amount_paid),
    paymentMethod: row.payment_method,
    promotionId: row.promotion_id,
    trace: row.trace.map((entry) => ({ ...entry, stage: entry.stage as StageName })),
    billRunId: row.bill_run_id,
    issuedAt: row.issued_at && new Date(row.issued_at),
    dueAt: row.due_at && new Date(row.due_at),
    finalizedAt: row.finalized_at && new Date(row.finalized_at),
    paidAt: row.paid_at && new Date(row.paid_at),
    voidedAt: row.voided_at && new Date(row.voided_at),
    markedUncollectibleAt: row.marked_uncollectible_at && new Date(row.marked_uncollectible_at),
    createdAt: new Date(row.created_at),
  };
}

/** The invoices row of a new draft (insertDraft; bulk.ts inserts many at once). */
export function draftRow(invoice: Invoice) {
  return {
    id: invoice.id,
    tenant_id: invoice.tenantId,
    mode: invoice.mode,
    number: null,
    status: "DRAFT",
    customer_id: invoice.customerId,
    subscription_id: invoice.subscriptionId,
    billing_entity_id: invoice.billingEntityId,
    currency: invoice.currency,
    period_start: invoice.periodStart,
    period_end: invoice.periodEnd,
    subtotal: invoice.subtotal,
    discount_total: invoice.discountTotal,
    tax_total: invoice.taxTotal,
    tax_included: invoice.taxIncluded,
    tax_breakdown: JSON.stringify(invoice.taxBreakdown.map(toBreakdownRow)),
    credits_applied: invoice.creditsApplied,
    credit_notes_total: 0n,
    total: invoice.total,
    amount_due: invoice.amountDue,
    amount_paid: 0n,
    promotion_id: invoice.promotionId,
    trace: JSON.stringify(invoice.trace),
    bill_run_id: invoice.billRunId,
    created_at: invoice.createdAt,
  };
}

/** The invoice_lines rows of an invoice, in order. */
export function lineRows(invoice: Invoice) {
  return invoice.lines.map((line, position) => ({
    tenant_id: invoice.tenantId,
    mode: invoice.mode,
    invoice_id: invoice.id,
    position,
    type: line.type,
    description: line.description,
    billable_unit: line.billableUnit,
    rate_plan_id: line.ratePlanId,
    model: line.model,
    quantity: line.quantity,
    unit_price: line.unitPrice,
    amount_decimal: line.amountDecimal,
    amount: line.amountMinor,
    tax_amount: line.taxMinor,
    tiers: line.tiers === null ? null : JSON.stringify(line.tiers),
    period_start: line.periodStart,
    period_end: line.periodEnd,
  }));
}

/** Inserts a draft unless its period is already invoiced; true when this call inserted it. */
export async function insertDraft(db: Kysely<Database>, invoice: Invoice): Promise<boolean> {
  const inserted = await db
    .insertInto("invoices")
    .values(draftRow(invoice))
    .onConflict((conflict) =>
      conflict.columns(["tenant_id", "mode", "subscription_id", "period_start"]).doNothing(),
    )
    .returning("id")
    .executeTakeFirst();
  if (!inserted) return false;
  if (invoice.lines.length > 0) await db.insertInto("invoice_lines").values(lineRows(invoice)).execute();
  return true;
}

export async function findInvoiceIdForPeriod(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
  periodStart: Date,
): Promise<string | undefined> {
  const row = await db
    .selectFrom("invoices")
    .select("id")
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .where("period_start", "=", periodStart)
    .executeTakeFirst();
  return row?.id;
}

async function linesOf(
  db: Kysely<Database>,
  scope: TenantScope,
  ids: string[],
): Promise<Map<string, InvoiceLine[]>> {
  const byInvoice = new Map<string, InvoiceLine[]>();
  if (ids.length === 0) return byInvoice;
  const rows = await db
    .selectFrom("invoice_lines")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("invoice_id", "in", ids)
    .orderBy("invoice_id")
    .orderBy("position")
    .execute();
  for (const row of rows) {
    const list = byInvoice.get(row.invoice_id) ?? [];
    list.push(fromLineRow(row));
    byInvoice.set(row.invoice_id, list);
  }
  return byInvoice;
}

export async function findInvoice(
  db: Kysely<Database>,
  scope: TenantScope,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<Invoice | undefined> {
  let query = db
    .selectFrom("invoices")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("id", "=", id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  const lines = await linesOf(db, scope, [row.id]);
  return fromDb(row, lines.get(row.id) ?? []);
}

export async function listInvoices(
  db: Kysely<Database>,
  scope: TenantScope,
  filter: InvoiceFilter,
  page: PageRequest,
): Promise<Page<Invoice>> {
  let query = db
    .selectFrom("invoices")
    .selectAll()
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode);
  if (filter.customerId) query = query.where("customer_id", "=", filter.customerId);
  if (filter.subscriptionId) query = query.where("subscription_id", "=", filter.subscriptionId);
  if (filter.status) query = query.where("status", "=", filter.status);
  const rows = await fetchPage(query, "id", page);
  const lines = await linesOf(
    db,
    scope,
    rows.data.map((row) => row.id),
  );
  return { data: rows.data.map((row) => fromDb(row, lines.get(row.id) ?? [])), has_more: rows.has_more };
}

/** Writes the state fields an action changed (status, number, dates, payment, amounts due). */
export async function updateInvoiceState(db: Kysely<Database>, invoice: Invoice): Promise<void> {
  await db
    .updateTable("invoices")
    .set({
      status: invoice.status,
      number: invoice.number,
      billing_entity_id: invoice.billingEntityId,
      issued_at: invoice.issuedAt,
      due_at: invoice.dueAt,
      finalized_at: invoice.finalizedAt,
      paid_at: invoice.paidAt,
      voided_at: invoice.voidedAt,
      marked_uncollectible_at: invoice.markedUncollectibleAt,
      amount_due: invoice.amountDue,
      amount_paid: invoice.amountPaid,
      payment_method: invoice.paymentMethod,
      credit_notes_total: invoice.creditNotesTotal,
    })
    .where("tenant_id", "=", invoice.tenantId)
    .where("mode", "=", invoice.mode)
    .where("id", "=", invoice.id)
    .execute();
}

/** Earlier periods of the subscription that the promotion discounted (void invoices do not count). */
export async function countDiscountedPeriods(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
  promotionId: string,
  before: Date,
): Promise<number> {
  const row = await db
    .selectFrom("invoices")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .where("promotion_id", "=", promotionId)
    .where("status", "!=", "VOID")
    .where("period_start", "<", before)
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

/** OPEN invoices whose due date has passed move to OVERDUE, in every tenant; returns their ids. */
export async function markOverdue(db: Kysely<Database>, now: Date): Promise<string[]> {
  const rows = await db
    .updateTable("invoices")
    .set({ status: "OVERDUE" })
    .where("status", "=", "OPEN")
    .where("due_at", "<=", now)
    .returning("id")
    .execute();
  return rows.map((row) => row.id);
}

export async function carryIn(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
  periodStart: Date,
): Promise<Record<string, string>> {
  const rows = await db
    .selectFrom("subscription_rollovers")
    .select(["billable_unit", "quantity"])
    .where("tenant_id", "=", scope.tenantId)
    .where("mode", "=", scope.mode)
    .where("subscription_id", "=", subscriptionId)
    .where("period_start", "=", periodStart)
    .execute();
  return Object.fromEntries(rows.map((row) => [row.billable_unit, row.quantity]));
}

export async function saveCarryOut(
  db: Kysely<Database>,
  scope: TenantScope,
  subscriptionId: string,
  nextPeriodStart: Date,
  invoiceId: string,
  carryOut: Record<string, string>,
): Promise<void> {
  const entries = Object.entries(carryOut);
  if (entries.length === 0) return;
  await db
    .insertInto("subscription_rollovers")
    .values(
      entries.map(([unit, quantity]) => ({
        tenant_id: scope.tenantId,
        mode: scope.mode,
        subscription_id: subscriptionId,
        billable_unit: unit,
        period_start: nextPeriodStart,
        quantity,
        invoice_id: invoiceId,
      })),
    )
    .onConflict((conflict) =>
      conflict.columns(["tenant_id", "mode", "subscription_id", "billable_unit", "period_start"]).doNothing(),
    )
    .execute();
}
