import type { ColumnType } from "kysely";
import type { Mode, Timestamp } from "../../db/schema.ts";

export interface EntitlementDecisionsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  feature: string;
  quantity: ColumnType<string, string, string>;
  decision: string;
  reason: string;
  remaining: ColumnType<string | null, string | null, string | null>;
  consumed: boolean;
  decided_at: Timestamp;
}

export interface EntitlementAuditSettingsTable {
  tenant_id: string;
  mode: Mode;
  sample_rate: ColumnType<string, string, string>;
  customer_ids: string[];
  updated_at: Timestamp;
}

export interface EntitlementTables {
  entitlement_decisions: EntitlementDecisionsTable;
  entitlement_audit_settings: EntitlementAuditSettingsTable;
}
