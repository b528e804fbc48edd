import type { Mode } from "../../../db/schema.ts";

/** The nine states of API.md; EXPIRED and CANCELLED are terminal. */
export const subscriptionStatuses = [
  "CREATED",
  "TRIALING",
  "ACTIVE",
  "PAST_DUE",
  "PAUSED",
  "EXPIRING_SOON",
  "SUSPENDED",
  "EXPIRED",
  "CANCELLED",
] as const;
export type SubscriptionStatus = (typeof subscriptionStatuses)[number];

export const terminalStatuses: readonly SubscriptionStatus[] = ["EXPIRED", "CANCELLED"];

/** States in which the customer may use what the plan entitles (PAST_DUE is the dunning grace). */
export const entitledStatuses: readonly SubscriptionStatus[] = [
  "TRIALING",
  "ACTIVE",
  "PAST_DUE",
  "EXPIRING_SOON",
];

export interface BillingPeriodSpec {
  interval: "day" | "week" | "month" | "year";
  count: number;
}

/** A rate plan version the subscription is pinned to. */
export interface PinnedPlan {
  ratePlanId: string;
  version: number;
}

export interface Subscription {
  id: string;
  tenantId: string;
  mode: Mode;
  customerId: string;
  offeringId: string;
  status: SubscriptionStatus;
  items: PinnedPlan[];
  billingPeriod: BillingPeriodSpec;
  currency: string;
  startAt: Date;
  trialEndAt: Date | null;
  /** [currentPeriodStart, currentPeriodEnd): the period that contains "now" (or the first one). */
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  /** Day of month (1-31) periods start on, clamped to short months; null for day/week periods. */
  billingAnchorDay: number | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  pausedAt: Date | null;
  endedAt: Date | null;
  promotionCode: string | null;
  priceOverrides: Record<string, unknown> | null;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  /** Bumped on every write, so a stale reload never overwrites a newer copy in memory. */
  version: number;
  /**
   * EXPIRING_SOON after `cancel` with `at_period_end`: the instant it becomes EXPIRED (the end of
   * the period the cancellation was scheduled in). Null otherwise.
   */
  cancelAt?: Date | null;
  /** The promotion `promotionCode` redeemed (redemptions are counted by it). */
  promotionId?: string | null;
  /**
   * IANA zone whose midnights cut the periods: the default billing entity's when the subscription
   * was created, kept so that later entity edits never move boundaries already billed. Absent: UTC.
   */
  timezone?: string;
}
