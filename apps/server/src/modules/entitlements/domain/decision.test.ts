import { describe, expect, it } from "vitest";
import { decide } from "./decision.ts";
import { buildSnapshot } from "./snapshot.ts";

const plan = (entitlements: Parameters<typeof buildSnapshot>[1][number]["entitlements"]) => ({
  subscriptionId: "sub_1",
  planName: "Pro",
  periodStartMs: 0,
  periodEndMs: 1_000,
  entitlements,
});
const metered = (overage: "block" | "throttle" | "allow", limit = "10") => ({
  feature: "search",
  type: "metered" as const,
  billable_unit: "api_calls",
  billable_unit_id: "bu_1",
  limit,
  reset: "billing_period" as const,
  overage,
});

describe("entitlement decisions", () => {
  it("blocks a customer without an entitled subscription", () => {
    expect(decide(buildSnapshot("cus", []), "search", 1, false, undefined)).toMatchObject({
      allowed: false,
      reason: "subscription_inactive",
    });
    expect(decide(undefined, "search", 1, false, undefined).decision).toBe("block");
  });

  it("blocks a feature the plan does not grant and allows a boolean one", () => {
    const snapshot = buildSnapshot("cus", [plan([{ feature: "sso", type: "boolean" }])]);
    expect(decide(snapshot, "export", 1, false, undefined)).toMatchObject({
      allowed: false,
      reason: "feature_not_in_plan",
    });
    expect(decide(snapshot, "sso", 1, false, undefined)).toMatchObject({ allowed: true, decision: "allow" });
  });

  it("allows up to the limit and reports what remains after consumption", () => {
    const snapshot = buildSnapshot("cus", [plan([metered("block")])]);
    expect(decide(snapshot, "search", 1, true, { used: 8, windowEndMs: 1_000 })).toMatchObject({
      allowed: true,
      remaining: 1,
      consume: true,
    });
    expect(decide(snapshot, "search", 1, false, { used: 8, windowEndMs: 1_000 })).toMatchObject({
      allowed: true,
      remaining: 2,
      consume: false,
    });
    expect(decide(snapshot, "search", 2, true, { used: 8, windowEndMs: 1_000 })).toMatchObject({
      allowed: true,
      remaining: 0,
    });
    expect(decide(snapshot, "search", 3, true, { used: 8, windowEndMs: 1_000 })).toMatchObject({
      allowed: false,
      reason: "quota_exceeded",
      remaining: 2,
      consume: false,
      resetAtMs: 1_000,
    });
  });

  it("applies the overage policy past the limit", () => {
    const usage = { used: 10, windowEndMs: 1_000 };
    expect(decide(buildSnapshot("c", [plan([metered("throttle")])]), "search", 1, true, usage)).toMatchObject(
      { allowed: true, decision: "throttle", consume: true },
    );
    expect(decide(buildSnapshot("c", [plan([metered("allow")])]), "search", 1, true, usage)).toMatchObject({
      allowed: true,
      decision: "allow",
      reason: "quota_exceeded_overage_allowed",
    });
  });

  it("adds up metered limits granted by several subscriptions", () => {
    const snapshot = buildSnapshot("cus", [
      plan([metered("block", "10")]),
      { ...plan([metered("block", "5")]), subscriptionId: "sub_2" },
    ]);
    const grant = snapshot.features.get("search");
    expect(grant?.type === "metered" && grant.limit).toBe(15);
  });
});
