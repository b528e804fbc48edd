import type { ColumnType, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

/** BIGINT minor units; both drivers read them back as bigint (db/database.ts). */
type Minor = ColumnType<bigint, bigint | undefined, bigint>;

export interface WalletsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  currency: string;
  balance: Minor;
  held: Minor;
  promotional: Minor;
  bonus: Minor;
  cash: Minor;
  entry_count: Minor;
  auto_top_up_enabled: ColumnType<boolean, boolean | undefined, boolean>;
  auto_top_up_threshold: bigint | null;
  auto_top_up_amount: bigint | null;
  auto_top_up_bucket: string | null;
  auto_top_up_armed: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface WalletEntriesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  wallet_id: string;
  sequence: bigint;
  type: string;
  bucket: string;
  amount: bigint;
  balance_after: bigint;
  bucket_balance_after: bigint;
  idempotency_key: string | null;
  hold_id: string | null;
  lot_id: string | null;
  debit_id: string | null;
  expires_at: Timestamp | null;
  created_at: Timestamp;
}

export interface WalletLotsTable {
  id: string;
  wallet_id: string;
  bucket: string;
  amount: bigint;
  remaining: bigint;
  expires_at: Timestamp | null;
  created_at: Timestamp;
}

export interface WalletDebitsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  wallet_id: string;
  customer_id: string;
  currency: string;
  amount: bigint;
  idempotency_key: string;
  created_at: Timestamp;
}

export interface HoldAllocationRow {
  lot_id: string;
  bucket: string;
  /** Minor units as a decimal string: JSON has no bigint. */
  amount: string;
}

export interface WalletHoldsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  wallet_id: string;
  amount: bigint;
  committed_amount: bigint | null;
  status: string;
  idempotency_key: string;
  allocations: JSONColumnType<HoldAllocationRow[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TopUpRequestsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  wallet_id: string;
  amount: bigint;
  bucket: string;
  status: string;
  balance_at_trigger: bigint;
  created_at: Timestamp;
}

/** Prepaid and hybrid usage debited as metered, per subscription period (ADR 0015). */
export interface PrepaidUsageTable {
  tenant_id: string;
  mode: Mode;
  subscription_id: string;
  period_start: Timestamp;
  period_end: Timestamp;
  customer_id: string;
  currency: string;
  wallet_id: string | null;
  usage_minor: Minor;
  debited_minor: Minor;
  debited_promotional: Minor;
  debited_bonus: Minor;
  debited_cash: Minor;
  invoice_id: string | null;
  settled_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

// Wallets' tables, joined into the Database type (db/schema.ts).
export interface WalletTables {
  wallets: WalletsTable;
  wallet_entries: WalletEntriesTable;
  wallet_lots: WalletLotsTable;
  wallet_debits: WalletDebitsTable;
  wallet_holds: WalletHoldsTable;
  top_up_requests: TopUpRequestsTable;
  prepaid_usage: PrepaidUsageTable;
}
