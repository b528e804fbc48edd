import type { ColumnType, Generated, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";

/** Decimals travel as exact strings in both directions (NUMERIC). */
type Numeric = ColumnType<string, string, string>;

export interface UsageEventsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  idempotency_key: string;
  customer_id: string;
  billable_unit_id: string;
  metric_key: string;
  event_type: string | null;
  quantity: Numeric;
  /** What the unit aggregates: properties[field] or quantity; null for COUNT and UNIQUE. */
  value: Numeric | null;
  /** UNIQUE units: the distinct value as text. */
  unique_value: string | null;
  properties: JSONColumnType<Record<string, unknown>>;
  occurred_at: Timestamp;
  received_at: Timestamp;
  source: string;
  /** Passed the unit's filters and lies in an open period: included in usage and rollups. */
  counted: boolean;
  flags: string[];
  /** The event's row in event_enrichments; null when nothing enriched it. */
  enrichment_id: string | null;
  estimated_revenue: Numeric | null;
  estimated_cost: Numeric | null;
}

export interface UsageRollupsTable {
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  billable_unit_id: string;
  hour: Timestamp;
  /** The writer lane that folded these events: an hour may span several rows (reads sum them). */
  shard: ColumnType<number, number | undefined, number>;
  event_count: ColumnType<bigint, bigint | number | string, bigint | number | string>;
  value_sum: Numeric;
  value_max: Numeric | null;
  value_min: Numeric | null;
  latest_value: Numeric | null;
  latest_at: Timestamp | null;
}

export interface DeadLettersTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  source: string;
  reason_code: string;
  reason: string;
  payload: JSONColumnType<Record<string, unknown> | unknown[] | null>;
  status: "PENDING" | "REPLAYED";
  replayed_event_id: string | null;
  replayed_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface ImportJobsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  status: "QUEUED" | "PROCESSING" | "COMPLETED" | "PARTIAL" | "FAILED";
  format: "ndjson" | "csv";
  filename: string | null;
  content: ColumnType<Uint8Array | Buffer, Uint8Array | Buffer, never>;
  total_rows: number;
  processed_rows: number;
  accepted_rows: number;
  duplicate_rows: number;
  failed_rows: number;
  errors: JSONColumnType<{ row: number; code: string; message: string }[]>;
  created_at: CreatedAt;
  updated_at: Timestamp;
  completed_at: Timestamp | null;
  attempt: Generated<number>;
}

/** Each distinct enrichment once, under the hash of its JSON: many events share one. */
export interface EventEnrichmentsTable {
  tenant_id: string;
  mode: Mode;
  id: string;
  enrichment: JSONColumnType<Record<string, unknown>>;
}

export interface MeteringTables {
  usage_events: UsageEventsTable;
  event_enrichments: EventEnrichmentsTable;
  usage_rollups: UsageRollupsTable;
  dead_letters: DeadLettersTable;
  import_jobs: ImportJobsTable;
}
