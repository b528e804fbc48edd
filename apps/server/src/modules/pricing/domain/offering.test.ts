import { describe, expect, it } from "vitest";
import { canTransition, checkOfferingRules, defaultEscrow, guardedChanges } from "./offering.ts";

describe("offering rules", () => {
  it("moves DRAFT → PUBLISHED → ARCHIVED and never back", () => {
    expect(canTransition("DRAFT", "PUBLISHED")).toBe(true);
    expect(canTransition("DRAFT", "ARCHIVED")).toBe(true);
    expect(canTransition("PUBLISHED", "ARCHIVED")).toBe(true);
    expect(canTransition("PUBLISHED", "DRAFT")).toBe(false);
    expect(canTransition("ARCHIVED", "PUBLISHED")).toBe(false);
    expect(canTransition("ARCHIVED", "ARCHIVED")).toBe(true);
  });

  it("blocks prepaid usage on an empty wallet unless told otherwise", () => {
    expect(defaultEscrow("PREPAID")).toEqual({ low_balance_threshold: "0", on_empty: "BLOCK" });
    expect(defaultEscrow("POSTPAID")).toBeNull();
    expect(defaultEscrow("HYBRID")).toBeNull();
  });

  it("sells in the plans' one currency", () => {
    const base = { billingMode: "POSTPAID" as const, escrow: null, initialCredits: null };
    expect(checkOfferingRules({ ...base, currency: null, ratePlanCurrencies: ["EUR", "EUR"] })).toEqual({
      ok: true,
      currency: "EUR",
    });
    const mixed = checkOfferingRules({ ...base, currency: null, ratePlanCurrencies: ["EUR", "USD"] });
    expect(mixed.ok).toBe(false);
    const credits = checkOfferingRules({
      ...base,
      billingMode: "PREPAID",
      initialCredits: "1.005",
      currency: "USD",
      ratePlanCurrencies: ["USD"],
    });
    expect(credits).toEqual({
      ok: false,
      issues: [{ field: "initial_credits", message: "has more decimals than USD has minor units" }],
    });
  });

  it("names the changes subscribers would notice", () => {
    const before = { ratePlanIds: ["rp_a", "rp_b"], currency: "USD", billingMode: "POSTPAID" as const };
    expect(guardedChanges(before, { ...before, ratePlanIds: ["rp_a", "rp_b", "rp_c"] })).toEqual([]);
    expect(guardedChanges(before, { ...before, ratePlanIds: ["rp_b"] }).map((issue) => issue.field)).toEqual([
      "rate_plan_ids",
    ]);
    expect(
      guardedChanges(before, { ...before, currency: "EUR", billingMode: "PREPAID" }).map(
        (issue) => issue.field,
      ),
    ).toEqual(["currency", "billing_mode"]);
  });
});
