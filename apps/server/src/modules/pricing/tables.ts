import type { JSONColumnType } from "kysely";
import type { CreatedAt, Mode, Timestamp } from "../../db/schema.ts";
import type { EscrowConfig } from "./domain/offering.ts";
import type { RatePlanDefinition } from "./domain/rate-plan.ts";

/** A rate plan's identity; its definitions live in rate_plan_versions, one immutable row each. */
export interface RatePlansTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  latest_version: number;
  status: string;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

/** One version of a rate plan, written once and never updated (subscriptions pin these rows). */
export interface RatePlanVersionsTable {
  tenant_id: string;
  mode: Mode;
  rate_plan_id: string;
  version: number;
  name: string;
  currency: string;
  definition: JSONColumnType<RatePlanDefinition>;
  billable_unit_ids: string[];
  created_at: CreatedAt;
}

export interface OfferingsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  name: string;
  description: string | null;
  rate_plan_ids: string[];
  billing_mode: string;
  trial_days: number;
  escrow: JSONColumnType<EscrowConfig> | null;
  initial_credits: string | null;
  currency: string | null;
  status: string;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface PromotionsTable {
  id: string;
  tenant_id: string;
  mode: Mode;
  code: string;
  /** Upper-cased code: codes are unique per tenant and mode regardless of case. */
  code_normalized: string;
  percent_off: string | null;
  amount_off: string | null;
  currency: string | null;
  duration: string;
  duration_in_periods: number | null;
  expires_at: Timestamp | null;
  max_redemptions: number | null;
  offering_ids: string[];
  status: string;
  created_at: CreatedAt;
  archived_at: Timestamp | null;
}

// Pricing's tables, joined into the Database type (db/schema.ts).
export interface PricingTables {
  rate_plans: RatePlansTable;
  rate_plan_versions: RatePlanVersionsTable;
  offerings: OfferingsTable;
  promotions: PromotionsTable;
}
