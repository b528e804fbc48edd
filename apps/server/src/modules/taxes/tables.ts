import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

export interface TaxRatesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  country: string;
  region: string | null;
  /** NUMERIC: read back as its exact decimal string. */
  percent: string;
  inclusive: boolean;
  active: boolean;
  description: string | null;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

// Taxes' tables, joined into the Database type (db/schema.ts).
export interface TaxTables {
  tax_rates: TaxRatesTable;
}
