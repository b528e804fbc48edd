import type { ColumnType } from "kysely";
import type { Mode, Timestamp } from "../../db/schema.ts";

type Counter = ColumnType<number, number | undefined, number>;

export interface WebhookEndpointsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  url: string;
  description: string | null;
  events: string[];
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookEventsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  type: string;
  payload: string;
  created_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: string;
  attempt_count: Counter;
  automatic_attempt_count: Counter;
  next_attempt_at: Timestamp | null;
  locked_until: Timestamp | null;
  lease_id: string | null;
  last_attempt_at: Timestamp | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookAttemptsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  delivery_id: string;
  trigger: string;
  succeeded: boolean;
  status_code: number | null;
  response_body: string | null;
  duration_ms: number;
  error: string | null;
  attempted_at: Timestamp;
}

export interface WebhookUsageThresholdsTable {
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  feature: string;
  period_end: Timestamp;
  threshold_percent: number;
  created_at: Timestamp;
}

export interface WebhookTables {
  webhook_endpoints: WebhookEndpointsTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  webhook_usage_thresholds: WebhookUsageThresholdsTable;
}
