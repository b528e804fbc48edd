import type { ColumnType, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

/** BIGINT minor units; both drivers read them back as bigint (db/database.ts). */
export type Money = ColumnType<bigint, bigint, bigint>;
type Numeric = ColumnType<string, string, string>;

export interface TraceRow {
  stage: string;
  note: string;
  amounts: Record<string, string>;
}

export interface TaxBreakdownRow {
  name: string;
  jurisdiction: string;
  rate_percent: string;
  inclusive: boolean;
  taxable_amount: string;
  amount: string;
}

export interface RatedTierRow {
  up_to: string | null;
  quantity: string;
  unit_price: string;
  flat_price?: string;
  amount_decimal: string;
}

export interface InvoicesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  number: string | null;
  status: string;
  customer_id: string;
  subscription_id: string;
  billing_entity_id: string | null;
  currency: string;
  period_start: Timestamp;
  period_end: Timestamp;
  subtotal: Money;
  discount_total: Money;
  tax_total: Money;
  tax_included: Money;
  tax_breakdown: JSONColumnType<TaxBreakdownRow[]>;
  credits_applied: Money;
  credit_notes_total: Money;
  total: Money;
  amount_due: Money;
  amount_paid: Money;
  payment_method: string | null;
  promotion_id: string | null;
  trace: JSONColumnType<TraceRow[]>;
  issued_at: Timestamp | null;
  due_at: Timestamp | null;
  finalized_at: Timestamp | null;
  paid_at: Timestamp | null;
  voided_at: Timestamp | null;
  marked_uncollectible_at: Timestamp | null;
  bill_run_id: string | null;
  created_at: CreatedAt;
}

export interface InvoiceLinesTable {
  tenant_id: string;
  mode: Mode;
  invoice_id: string;
  position: number;
  type: string;
  description: string;
  billable_unit: string | null;
  rate_plan_id: string | null;
  model: string | null;
  quantity: Numeric;
  unit_price: Numeric | null;
  amount_decimal: Numeric;
  amount: Money;
  tax_amount: Money;
  tiers: JSONColumnType<RatedTierRow[]> | null;
  period_start: Timestamp;
  period_end: Timestamp;
}

export interface CreditNotesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  invoice_id: string;
  customer_id: string;
  currency: string;
  amount: Money;
  reason: string;
  description: string | null;
  status: string;
  created_at: CreatedAt;
}

export interface SubscriptionRolloversTable {
  tenant_id: string;
  mode: Mode;
  subscription_id: string;
  billable_unit: string;
  period_start: Timestamp;
  quantity: Numeric;
  invoice_id: string;
}

// Billing's tables, joined into the Database type (db/schema.ts).
export interface BillingTables {
  invoices: InvoicesTable;
  invoice_lines: InvoiceLinesTable;
  credit_notes: CreditNotesTable;
  subscription_rollovers: SubscriptionRolloversTable;
}
