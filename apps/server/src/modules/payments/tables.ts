import type { ColumnType, JSONColumnType } from "kysely";
import type { Mode, Timestamp } from "../../db/schema.ts";

/** BIGINT minor units; both drivers read them back as bigint (db/database.ts). */
type Minor = ColumnType<bigint, bigint, bigint>;

export interface PaymentSettingsTable {
  tenant_id: string;
  mode: Mode;
  stripe_secret_sealed: string | null;
  stripe_secret_hint: string | null;
  stripe_updated_at: Timestamp | null;
  automatic_collection: ColumnType<boolean, boolean | undefined, boolean>;
  dunning_schedule_days: JSONColumnType<number[]> | null;
  updated_at: Timestamp;
}

export interface PaymentMethodsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  provider: string;
  provider_payment_method_id: string;
  provider_customer_id: string | null;
  is_default: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Timestamp;
  removed_at: Timestamp | null;
}

export interface PaymentsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  invoice_id: string | null;
  top_up_request_id: string | null;
  dunning_cycle_id: string | null;
  payment_method_id: string | null;
  provider: string;
  amount: Minor;
  currency: string;
  status: string;
  provider_payment_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  attempt: number;
  trigger: string;
  idempotency_key: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DunningCyclesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  invoice_id: string;
  subscription_id: string;
  customer_id: string;
  status: string;
  schedule_days: JSONColumnType<number[]>;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Timestamp | null;
  last_failure_code: string | null;
  last_failure_message: string | null;
  subscription_synced: ColumnType<boolean, boolean | undefined, boolean>;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

// Payments' tables, joined into the Database type (db/schema.ts).
export interface PaymentTables {
  payment_settings: PaymentSettingsTable;
  payment_methods: PaymentMethodsTable;
  payments: PaymentsTable;
  dunning_cycles: DunningCyclesTable;
}
