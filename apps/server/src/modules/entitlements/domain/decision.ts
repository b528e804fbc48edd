import type { EntitlementSnapshot, FeatureGrant } from "./snapshot.ts";

export type DecisionReason =
  | "allowed"
  | "subscription_inactive"
  | "feature_not_in_plan"
  | "quota_exceeded"
  | "quota_exceeded_throttled"
  | "quota_exceeded_overage_allowed"
  | "rate_limited"
  | "wallet_empty";

export interface Decision {
  allowed: boolean;
  decision: "allow" | "throttle" | "block";
  reason: DecisionReason;
  grant: FeatureGrant | undefined;
  /** Metered: what remains after this request (after consumption when consumed). */
  remaining: number | null;
  used: number | null;
  /** When the quota or rate window renews. */
  resetAtMs: number | null;
  /** True when the request's quantity is to be added to the counter. */
  consume: boolean;
}

export interface MeteredUsage {
  used: number;
  windowEndMs: number;
}

/**
 * The whole decision, pure: the snapshot, the feature, the quantity asked for, and (for metered
 * features) what is used in the current window. Rate limits are decided by the caller's bucket.
 */
export function decide(
  snapshot: EntitlementSnapshot | undefined,
  feature: string,
  quantity: number,
  consume: boolean,
  usage: MeteredUsage | undefined,
): Decision {
  const base = { grant: undefined, remaining: null, used: null, resetAtMs: null, consume: false };
  if (!snapshot?.active)
    return { ...base, allowed: false, decision: "block", reason: "subscription_inactive" };
  if (snapshot.walletEmpty) return { ...base, allowed: false, decision: "block", reason: "wallet_empty" };
  const grant = snapshot.features.get(feature);
  if (!grant) return { ...base, allowed: false, decision: "block", reason: "feature_not_in_plan" };
  if (grant.type !== "metered" || !usage)
    return { ...base, grant, allowed: true, decision: "allow", reason: "allowed" };

  const after = usage.used + quantity;
  const within = after <= grant.limit;
  const metered = { grant, used: usage.used, resetAtMs: usage.windowEndMs };
  if (within) {
    return {
      ...metered,
      allowed: true,
      decision: "allow",
      reason: "allowed",
      remaining: grant.limit - (consume ? after : usage.used),
      consume,
    };
  }
  const remaining = Math.max(0, grant.limit - usage.used);
  switch (grant.overage) {
    case "block":
      return {
        ...metered,
        allowed: false,
        decision: "block",
        reason: "quota_exceeded",
        remaining,
        consume: false,
      };
    case "throttle":
      return {
        ...metered,
        allowed: true,
        decision: "throttle",
        reason: "quota_exceeded_throttled",
        remaining: 0,
        consume,
      };
    case "allow":
      return {
        ...metered,
        allowed: true,
        decision: "allow",
        reason: "quota_exceeded_overage_allowed",
        remaining: 0,
        consume,
      };
  }
}
