import { Type } from "typebox";
import { DecimalOutput, Timestamp } from "../../../http/schemas.ts";
import { minorUnitsToJson } from "../../pricing/domain/preview.ts";
import { type Invoice, invoiceStatuses, lineTypes, stageNames } from "../domain/invoice.ts";
import type { CreditNote } from "../store/credit-notes.ts";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const Money = Type.Integer({ description: "minor units of the invoice currency" });

export const InvoiceStatusSchema = Type.Union(invoiceStatuses.map((status) => Type.Literal(status)));

const TierSchema = Type.Object({
  up_to: Nullable(DecimalOutput),
  quantity: DecimalOutput,
  unit_price: DecimalOutput,
  flat_price: Type.Optional(DecimalOutput),
  amount_decimal: DecimalOutput,
});

const LineSchema = Type.Object({
  type: Type.Union(lineTypes.map((type) => Type.Literal(type))),
  description: Type.String(),
  billable_unit: Nullable(Type.String()),
  rate_plan_id: Nullable(Type.String()),
  model: Nullable(Type.String()),
  quantity: DecimalOutput,
  unit_price: Nullable(DecimalOutput),
  amount: Money,
  amount_decimal: DecimalOutput,
  tax_amount: Money,
  tiers: Type.Optional(Type.Array(TierSchema)),
  period_start: Timestamp,
  period_end: Timestamp,
});

const TraceEntrySchema = Type.Object({
  stage: Type.Union(stageNames.map((stage) => Type.Literal(stage))),
  note: Type.String(),
  amounts: Type.Record(Type.String(), Type.String()),
});

const TaxBreakdownSchema = Type.Object({
  name: Type.String(),
  jurisdiction: Type.String(),
  rate_percent: DecimalOutput,
  inclusive: Type.Boolean(),
  taxable_amount: Money,
  amount: Money,
});

export const InvoiceSchema = Type.Object(
  {
    id: Nullable(Type.String({ description: "null on a preview" })),
    object: Type.Literal("invoice"),
    number: Nullable(Type.String({ description: "from the billing entity when finalised" })),
    status: InvoiceStatusSchema,
    customer_id: Type.String(),
    subscription_id: Type.String(),
    billing_entity_id: Nullable(Type.String()),
    bill_run_id: Nullable(Type.String()),
    currency: Type.String(),
    period_start: Timestamp,
    period_end: Timestamp,
    lines: Type.Array(LineSchema),
    subtotal: Money,
    discount_total: Money,
    tax_total: Type.Integer({ description: "tax added to the invoice (exclusive prices)" }),
    tax_included: Type.Integer({ description: "tax contained in tax-inclusive prices (shown, not added)" }),
    tax_breakdown: Type.Array(TaxBreakdownSchema),
    credits_applied: Money,
    credit_notes_total: Money,
    total: Type.Integer({ description: "subtotal − discount_total + tax_total" }),
    amount_due: Type.Integer({ description: "total − credits_applied − credit notes issued before payment" }),
    amount_paid: Money,
    amount_remaining: Money,
    payment_method: Nullable(Type.String()),
    promotion_id: Nullable(Type.String()),
    trace: Type.Array(TraceEntrySchema, { description: "how every amount was reached, stage by stage" }),
    issued_at: Nullable(Timestamp),
    due_at: Nullable(Timestamp),
    finalized_at: Nullable(Timestamp),
    paid_at: Nullable(Timestamp),
    voided_at: Nullable(Timestamp),
    marked_uncollectible_at: Nullable(Timestamp),
    created_at: Timestamp,
  },
  { $id: "Invoice" },
);

export const CreditNoteSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("credit_note"),
    invoice_id: Type.String(),
    customer_id: Type.String(),
    currency: Type.String(),
    amount: Money,
    reason: Type.String(),
    description: Nullable(Type.String()),
    status: Type.Literal("ISSUED"),
    created_at: Timestamp,
  },
  { $id: "CreditNote" },
);

const iso = (at: Date | null) => (at === null ? null : at.toISOString());

export function toApi(invoice: Invoice, options: { preview?: boolean } = {}) {
  return {
    id: options.preview ? null : invoice.id,
    object: "invoice" as const,
    number: invoice.number,
    status: invoice.status,
    customer_id: invoice.customerId,
    subscription_id: invoice.subscriptionId,
    billing_entity_id: invoice.billingEntityId,
    bill_run_id: invoice.billRunId,
    currency: invoice.currency,
    period_start: invoice.periodStart.toISOString(),
    period_end: invoice.periodEnd.toISOString(),
    lines: invoice.lines.map((line) => ({
      type: line.type,
      description: line.description,
      billable_unit: line.billableUnit,
      rate_plan_id: line.ratePlanId,
      model: line.model,
      quantity: line.quantity,
      unit_price: line.unitPrice,
      amount: minorUnitsToJson(line.amountMinor),
      amount_decimal: line.amountDecimal,
      tax_amount: minorUnitsToJson(line.taxMinor),
      ...(line.tiers === null ? {} : { tiers: line.tiers }),
      period_start: line.periodStart.toISOString(),
      period_end: line.periodEnd.toISOString(),
    })),
    subtotal: minorUnitsToJson(invoice.subtotal),
    discount_total: minorUnitsToJson(invoice.discountTotal),
    tax_total: minorUnitsToJson(invoice.taxTotal),
    tax_included: minorUnitsToJson(invoice.taxIncluded),
    tax_breakdown: invoice.taxBreakdown.map((entry) => ({
      name: entry.name,
      jurisdiction: entry.jurisdiction,
      rate_percent: entry.ratePercent,
      inclusive: entry.inclusive,
      taxable_amount: minorUnitsToJson(entry.taxableMinor),
      amount: minorUnitsToJson(entry.taxMinor),
    })),
    credits_applied: minorUnitsToJson(invoice.creditsApplied),
    credit_notes_total: minorUnitsToJson(invoice.creditNotesTotal),
    total: minorUnitsToJson(invoice.total),
    amount_due: minorUnitsToJson(invoice.amountDue),
    amount_paid: minorUnitsToJson(invoice.amountPaid),
    amount_remaining: minorUnitsToJson(invoice.amountDue - invoice.amountPaid),
    payment_method: invoice.paymentMethod,
    promotion_id: invoice.promotionId,
    trace: invoice.trace,
    issued_at: iso(invoice.issuedAt),
    due_at: iso(invoice.dueAt),
    finalized_at: iso(invoice.finalizedAt),
    paid_at: iso(invoice.paidAt),
    voided_at: iso(invoice.voidedAt),
    marked_uncollectible_at: iso(invoice.markedUncollectibleAt),
    created_at: invoice.createdAt.toISOString(),
  };
}

export function creditNoteToApi(note: CreditNote) {
  return {
    id: note.id,
    object: "credit_note" as const,
    invoice_id: note.invoiceId,
    customer_id: note.customerId,
    currency: note.currency,
    amount: minorUnitsToJson(note.amountMinor),
    reason: note.reason,
    description: note.description,
    status: note.status,
    created_at: note.createdAt.toISOString(),
  };
}
