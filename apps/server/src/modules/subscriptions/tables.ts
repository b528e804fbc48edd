import type { Generated, JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";
import type { BillingPeriodSpec } from "./domain/subscription.ts";

export interface PinnedPlanRow {
  rate_plan_id: string;
  version: number;
}

export interface SubscriptionsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  customer_id: string;
  offering_id: string;
  status: string;
  items: JSONColumnType<PinnedPlanRow[]>;
  billing_period: JSONColumnType<BillingPeriodSpec>;
  currency: string;
  start_at: Timestamp;
  trial_end_at: Timestamp | null;
  current_period_start: Timestamp;
  current_period_end: Timestamp;
  billing_anchor_day: number | null;
  cancel_at_period_end: boolean;
  cancel_at: Timestamp | null;
  canceled_at: Timestamp | null;
  paused_at: Timestamp | null;
  ended_at: Timestamp | null;
  promotion_id: string | null;
  promotion_code: string | null;
  price_overrides: JSONColumnType<Record<string, unknown>> | null;
  metadata: JSONColumnType<Record<string, string>>;
  /** IANA zone of the period grid (migration 0018; 'UTC' for rows created before it). */
  timezone: string;
  due_at: Timestamp | null;
  version: number;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface SubscriptionPhasesTable {
  seq: Generated<bigint>;
  tenant_id: string;
  mode: Mode;
  subscription_id: string;
  status: string;
  offering_id: string;
  items: JSONColumnType<PinnedPlanRow[]>;
  reason: string;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  previous_offering_id: string | null;
  previous_items: JSONColumnType<PinnedPlanRow[]> | null;
  period_start: Timestamp | null;
  period_end: Timestamp | null;
  fraction_remaining: string | null;
  created_at: CreatedAt;
}

// Subscriptions' tables, joined into the Database type (db/schema.ts).
export interface SubscriptionTables {
  subscriptions: SubscriptionsTable;
  subscription_phases: SubscriptionPhasesTable;
}
