import type { ColumnType, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

export interface BillingEntitiesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  code: string;
  name: string;
  legal_name: string;
  base_currency: string;
  timezone: string;
  invoice_prefix: string;
  is_default: boolean;
  address: JSONColumnType<Record<string, string>> | null;
  tax_id: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface InvoiceSequencesTable {
  billing_entity_id: string;
  year: number;
  tenant_id: string;
  mode: Mode;
  last_number: ColumnType<bigint, number, number>;
}

// Billing entities' tables, joined into the Database type (db/schema.ts).
export interface BillingEntityTables {
  billing_entities: BillingEntitiesTable;
  invoice_sequences: InvoiceSequencesTable;
}
