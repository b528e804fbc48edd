import type { EntitlementDefinition } from "../../pricing/domain/rate-plan.ts";

export type OveragePolicy = "block" | "throttle" | "allow";
export type QuotaReset = "billing_period" | "day" | "hour" | "minute";

export type FeatureGrant =
  | { feature: string; type: "boolean" }
  | {
      feature: string;
      type: "metered";
      billableUnitId: string;
      billableUnitKey: string;
      /** Summed over the customer's entitled subscriptions that grant the feature. */
      limit: number;
      reset: QuotaReset;
      overage: OveragePolicy;
    }
  | { feature: string; type: "rate_limit"; limit: number; perSeconds: number; burst: number };

/** The plans an entitled subscription pins, as the snapshot needs them. */
export interface EntitledPlan {
  subscriptionId: string;
  planName: string;
  periodStartMs: number;
  periodEndMs: number;
  entitlements: readonly EntitlementDefinition[];
}

/** Everything canAccess needs to know about one customer, built from memory and kept until it changes. */
export interface EntitlementSnapshot {
  customerId: string;
  /** No entitled subscription: every feature is refused with subscription-inactive. */
  active: boolean;
  planNames: string[];
  subscriptionIds: string[];
  /** The billing period of the (first) entitled subscription, for quotas that reset with it. */
  periodStartMs: number | null;
  periodEndMs: number | null;
  features: Map<string, FeatureGrant>;
  /** Prepaid with BLOCK escrow and an empty wallet (set by wallets). */
  walletEmpty: boolean;
}

const OVERAGE_LENIENCY: Record<OveragePolicy, number> = { block: 0, throttle: 1, allow: 2 };

/**
 * Combines what several subscriptions grant: a boolean is granted if any grants it; metered limits
 * add up (two add-on packs of 1,000 calls give 2,000) and the most lenient overage policy wins; a
 * rate limit takes the most generous one.
 */
export function buildSnapshot(customerId: string, plans: readonly EntitledPlan[]): EntitlementSnapshot {
  const features = new Map<string, FeatureGrant>();
  for (const plan of plans) {
    for (const definition of plan.entitlements) {
      const grant = toGrant(definition);
      const existing = features.get(grant.feature);
      features.set(grant.feature, existing ? combine(existing, grant) : grant);
    }
  }
  const first = plans[0];
  return {
    customerId,
    active: plans.length > 0,
    planNames: plans.map((plan) => plan.planName),
    subscriptionIds: plans.map((plan) => plan.subscriptionId),
    periodStartMs: first?.periodStartMs ?? null,
    periodEndMs: first?.periodEndMs ?? null,
    features,
    walletEmpty: false,
  };
}

function toGrant(definition: EntitlementDefinition): FeatureGrant {
  switch (definition.type) {
    case "boolean":
      return { feature: definition.feature, type: "boolean" };
    case "metered":
      return {
        feature: definition.feature,
        type: "metered",
        billableUnitId: definition.billable_unit_id,
        billableUnitKey: definition.billable_unit,
        limit: Number(definition.limit),
        reset: definition.reset,
        overage: definition.overage,
      };
    case "rate_limit":
      return {
        feature: definition.feature,
        type: "rate_limit",
        limit: definition.limit,
        perSeconds: definition.per_seconds,
        burst: definition.burst,
      };
  }
}

function combine(a: FeatureGrant, b: FeatureGrant): FeatureGrant {
  if (a.type === "metered" && b.type === "metered") {
    return {
      ...a,
      limit: a.limit + b.limit,
      overage: OVERAGE_LENIENCY[b.overage] > OVERAGE_LENIENCY[a.overage] ? b.overage : a.overage,
    };
  }
  if (a.type === "rate_limit" && b.type === "rate_limit") {
    return a.limit / a.perSeconds >= b.limit / b.perSeconds ? a : b;
  }
  // Different kinds for one feature: the richer grant (metered or rate-limited) governs.
  return a.type === "boolean" ? b : a;
}
