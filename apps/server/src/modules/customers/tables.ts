import type { JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";
import type { CustomerAddress, CustomerTax } from "./domain.ts";

export interface CustomersTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  email: string;
  external_id: string | null;
  currency: string;
  address: JSONColumnType<CustomerAddress> | null;
  tax: JSONColumnType<CustomerTax> | null;
  metadata: JSONColumnType<Record<string, string>>;
  status: string;
  version: number;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

// Customers' tables, joined into the Database type (db/schema.ts).
export interface CustomerTables {
  customers: CustomersTable;
}
