import type { ColumnType, Generated, JSONColumnType } from "kysely";
import type { BillRunTables } from "../modules/bill-runs/tables.ts";
import type { BillingTables } from "../modules/billing/tables.ts";
import type { BillingEntityTables } from "../modules/billing-entities/tables.ts";
import type { CustomerTables } from "../modules/customers/tables.ts";
import type { EntitlementTables } from "../modules/entitlements/tables.ts";
import type { MeteringTables } from "../modules/metering/tables.ts";
import type { PaymentTables } from "../modules/payments/tables.ts";
import type { PricingTables } from "../modules/pricing/tables.ts";
import type { SubscriptionTables } from "../modules/subscriptions/tables.ts";
import type { TaxTables } from "../modules/taxes/tables.ts";
import type { WalletTables } from "../modules/wallets/tables.ts";
import type { WebhookTables } from "../modules/webhooks/tables.ts";

/** Timestamps are written as Date (or ISO strings) and read back as Date. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
export type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export type Mode = "live" | "test";

export interface SystemStateTable {
  key: string;
  value: JSONColumnType<Record<string, unknown>>;
  updated_at: Generated<Date>;
}

export interface TenantsTable {
  id: string;
  slug: string;
  name: string;
  settings: JSONColumnType<Record<string, unknown>>;
  created_at: CreatedAt;
}

export type ApiKeyKind = "operator" | "secret" | "consumer";

export interface ApiKeysTable {
  id: string;
  tenant_id: string | null;
  kind: ApiKeyKind;
  mode: Mode | null;
  name: string | null;
  prefix: string;
  last4: string;
  key_hash: string;
  scopes: string[];
  rate_limits: JSONColumnType<Record<string, { limit: number; burst: number }>> | null;
  subscription_id: string | null;
  customer_id: string | null;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
  rotated_to: string | null;
  created_at: CreatedAt;
  /** Set while the key's subscription is SUSPENDED (dunning); cleared when it is paid up. */
  suspended_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface IdempotencyRequestsTable {
  tenant_id: string;
  mode: Mode;
  key: string;
  method: string;
  path: string;
  body_hash: string;
  status_code: number | null;
  response_body: string | null;
  response_headers: JSONColumnType<Record<string, string>> | null;
  created_at: CreatedAt;
}

export interface ProductsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  type: string;
  description: string | null;
  audience: string;
  lifecycle: string;
  status: string;
  metadata: JSONColumnType<Record<string, unknown>>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface BillableUnitFilterRow {
  field: string;
  operator: string;
  value: unknown;
}

export interface BillableUnitsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  key: string;
  name: string;
  unit_label: string;
  aggregation: string;
  field: string | null;
  filters: JSONColumnType<BillableUnitFilterRow[]>;
  status: string;
  /** Set when a rate plan or an accepted event first uses the unit: its aggregation is frozen. */
  first_used_at: Timestamp | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface ProductBillableUnitsTable {
  tenant_id: string;
  mode: Mode;
  product_id: string;
  billable_unit_id: string;
}

/**
 * Every table. Modules declare their own tables beside their code (modules/<name>/tables.ts) and
 * are joined here, so that each capability owns its storage.
 */
export interface Database
  extends MeteringTables,
    PricingTables,
    CustomerTables,
    SubscriptionTables,
    EntitlementTables,
    BillRunTables,
    BillingEntityTables,
    TaxTables,
    BillingTables,
    WalletTables,
    WebhookTables,
    PaymentTables {
  system_state: SystemStateTable;
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  idempotency_requests: IdempotencyRequestsTable;
  products: ProductsTable;
  billable_units: BillableUnitsTable;
  product_billable_units: ProductBillableUnitsTable;
}
