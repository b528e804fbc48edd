import type { RatedTier } from "@aforo/core";
import { AforoError } from "@aforo/core";
import type { Mode } from "../../../db/schema.ts";

/** API.md's invoice states. PAID and VOID are final; UNCOLLECTIBLE still takes a late payment. */
export const invoiceStatuses = ["DRAFT", "OPEN", "PAID", "OVERDUE", "UNCOLLECTIBLE", "VOID"] as const;
export type InvoiceStatus = (typeof invoiceStatuses)[number];

export const lineTypes = [
  "CHARGE",
  "USAGE_FEE",
  "SETUP_FEE",
  "DISCOUNT",
  "TAX_ADJUSTMENT",
  "CREDIT",
  "PRORATION",
] as const;
export type LineType = (typeof lineTypes)[number];

/**
 * Every move an invoice may make. A number is given only by DRAFT → OPEN, so a voided draft never
 * consumes one; a paid invoice cannot be voided (a credit note corrects it instead).
 */
export const invoiceTransitions: Readonly<Record<InvoiceStatus, readonly InvoiceStatus[]>> = {
  DRAFT: ["OPEN", "VOID"],
  OPEN: ["PAID", "OVERDUE", "UNCOLLECTIBLE", "VOID"],
  OVERDUE: ["PAID", "UNCOLLECTIBLE", "VOID"],
  UNCOLLECTIBLE: ["PAID"],
  PAID: [],
  VOID: [],
};

export function canTransition(from: InvoiceStatus, to: InvoiceStatus): boolean {
  return invoiceTransitions[from].includes(to);
}

export function assertTransition(id: string, from: InvoiceStatus, to: InvoiceStatus, action: string): void {
  if (!canTransition(from, to)) {
    throw new AforoError(
      "invalid-transition",
      `Invoice '${id}' is ${from} and cannot be ${action} (it would move to ${to}).`,
    );
  }
}

/** One invoice line. Amounts are whole minor units of the invoice currency. */
export interface InvoiceLine {
  type: LineType;
  description: string;
  /** The billable unit's key, for usage lines. */
  billableUnit: string | null;
  ratePlanId: string | null;
  /** The pricing model that produced the line (or MINIMUM_COMMITMENT, MAXIMUM_SPEND, PROMOTION). */
  model: string | null;
  quantity: string;
  unitPrice: string | null;
  /** The exact amount before the one rounding (equals amountMinor for adjustments). */
  amountDecimal: string;
  amountMinor: bigint;
  tiers: RatedTier[] | null;
  /** The service period the line charges (an in-advance fee charges the next period). */
  periodStart: Date;
  periodEnd: Date;
  /** Tax on this line (exclusive or contained), filled by the tax stage. */
  taxMinor: bigint;
}

export interface TaxBreakdownEntry {
  name: string;
  jurisdiction: string;
  ratePercent: string;
  inclusive: boolean;
  taxableMinor: bigint;
  taxMinor: bigint;
}

export interface TraceEntry {
  stage: StageName;
  note: string;
  /** Quantities as exact decimals and money in minor units, both as strings, by what they measure. */
  amounts: Record<string, string>;
}

export const stageNames = [
  "quota_check",
  "rollover",
  "aggregate",
  "allowance",
  "rate",
  "commit",
  "discount",
  "tax",
  "route",
  "settle",
] as const;
export type StageName = (typeof stageNames)[number];

/**
 * The money of an invoice. subtotal = Σ non-discount lines; discountTotal = −Σ DISCOUNT lines;
 * taxTotal = tax added on top (exclusive); taxIncluded = tax contained in the lines (inclusive
 * prices, shown only); total = subtotal − discountTotal + taxTotal.
 */
export interface InvoiceTotals {
  subtotal: bigint;
  discountTotal: bigint;
  taxTotal: bigint;
  taxIncluded: bigint;
  total: bigint;
  creditsApplied: bigint;
  amountDue: bigint;
}

export interface Invoice extends InvoiceTotals {
  id: string;
  tenantId: string;
  mode: Mode;
  number: string | null;
  status: InvoiceStatus;
  customerId: string;
  subscriptionId: string;
  billingEntityId: string | null;
  currency: string;
  periodStart: Date;
  periodEnd: Date;
  lines: InvoiceLine[];
  taxBreakdown: TaxBreakdownEntry[];
  trace: TraceEntry[];
  promotionId: string | null;
  creditNotesTotal: bigint;
  amountPaid: bigint;
  paymentMethod: string | null;
  billRunId: string | null;
  issuedAt: Date | null;
  dueAt: Date | null;
  finalizedAt: Date | null;
  paidAt: Date | null;
  voidedAt: Date | null;
  markedUncollectibleAt: Date | null;
  createdAt: Date;
}

/** Invoices are due this long after finalisation unless the tenant says otherwise (later issue). */
export const DEFAULT_PAYMENT_TERMS_DAYS = 30;

export function dueDate(finalizedAt: Date, days = DEFAULT_PAYMENT_TERMS_DAYS): Date {
  return new Date(finalizedAt.getTime() + days * 86_400_000);
}

/** Σ line amounts; equals subtotal − discountTotal for every invoice the pipeline makes. */
export function sumOfLines(lines: readonly Pick<InvoiceLine, "amountMinor">[]): bigint {
  return lines.reduce((sum, line) => sum + line.amountMinor, 0n);
}

/**
 * How much a new credit note may still credit: the total less the credit notes issued before.
 * Only an invoice that was sent (OPEN, OVERDUE or PAID) can be credited.
 */
export function creditNoteRefusal(
  invoice: Pick<Invoice, "status" | "total" | "creditNotesTotal">,
  amountMinor: bigint,
): { field: string; message: string } | undefined {
  if (!["OPEN", "OVERDUE", "PAID"].includes(invoice.status)) {
    return {
      field: "invoice_id",
      message: `the invoice is ${invoice.status}; only OPEN, OVERDUE or PAID invoices can be credited`,
    };
  }
  const creditable = invoice.total - invoice.creditNotesTotal;
  if (amountMinor > creditable) {
    return {
      field: "amount",
      message: `must not exceed ${creditable} (the total less earlier credit notes)`,
    };
  }
  return undefined;
}

/**
 * What an unpaid invoice still asks for after a credit note: the amount due falls by the credit,
 * never below zero. Paid invoices keep their amount due (the credit is owed back to the customer).
 */
export function amountDueAfterCredit(
  invoice: Pick<Invoice, "status" | "amountDue">,
  amountMinor: bigint,
): bigint {
  if (invoice.status === "PAID") return invoice.amountDue;
  const rest = invoice.amountDue - amountMinor;
  return rest < 0n ? 0n : rest;
}
