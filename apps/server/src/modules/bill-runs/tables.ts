import type { Generated, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

export interface BillRunsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  status: "RUNNING" | "COMPLETED" | "FAILED";
  as_of: Timestamp;
  subscriptions_total: number | null;
  subscriptions_processed: Generated<number>;
  periods_invoiced: Generated<number>;
  invoices_created: Generated<number>;
  invoice_ids: JSONColumnType<string[]>;
  error: string | null;
  heartbeat_at: Timestamp;
  created_at: CreatedAt;
  completed_at: Timestamp | null;
}

export interface BilledPeriodsTable {
  tenant_id: string;
  mode: Mode;
  subscription_id: string;
  customer_id: string;
  period_start: Timestamp;
  period_end: Timestamp;
  billable_unit_ids: string[];
  invoice_id: string;
  bill_run_id: string | null;
  created_at: CreatedAt;
}

export interface UsageAdjustmentsTable {
  event_id: string;
  tenant_id: string;
  mode: Mode;
  invoice_id: string;
  created_at: CreatedAt;
}

// Bill runs' tables, joined into the Database type (db/schema.ts).
export interface BillRunTables {
  bill_runs: BillRunsTable;
  billed_periods: BilledPeriodsTable;
  usage_adjustments: UsageAdjustmentsTable;
}
