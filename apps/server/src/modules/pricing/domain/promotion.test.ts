import { describe, expect, it } from "vitest";
import { checkPromotionRules, normalizeCode, promotionIsRedeemable, redemptionRefusal } from "./promotion.ts";

const now = new Date("2026-11-28T10:00:00Z");
const active = { status: "ACTIVE" as const, expiresAt: null, maxRedemptions: null, offeringIds: [] };

describe("promotionIsRedeemable", () => {
  it("redeems an active code without limits", () => {
    expect(promotionIsRedeemable(active, now, 1_000_000)).toBe(true);
  });

  it("stops at expires_at: the instant itself is already too late", () => {
    const expiring = { ...active, expiresAt: new Date("2026-11-28T10:00:01Z") };
    expect(promotionIsRedeemable(expiring, now, 0)).toBe(true);
    expect(promotionIsRedeemable(expiring, new Date("2026-11-28T10:00:01Z"), 0)).toBe(false);
    expect(redemptionRefusal(expiring, new Date("2026-12-01T00:00:00Z"), 0)).toBe("expired");
  });

  it("is exhausted once max_redemptions have been made", () => {
    const limited = { ...active, maxRedemptions: 3 };
    expect(promotionIsRedeemable(limited, now, 2)).toBe(true);
    expect(promotionIsRedeemable(limited, now, 3)).toBe(false);
    expect(redemptionRefusal(limited, now, 4)).toBe("exhausted");
  });

  it("never redeems an archived code", () => {
    expect(redemptionRefusal({ ...active, status: "ARCHIVED" }, now, 0)).toBe("archived");
  });

  it("limits a code scoped to offerings to those offerings", () => {
    const scoped = { ...active, offeringIds: ["off_a"] };
    expect(promotionIsRedeemable(scoped, now, 0, "off_a")).toBe(true);
    expect(redemptionRefusal(scoped, now, 0, "off_b")).toBe("offering_not_eligible");
    expect(promotionIsRedeemable(active, now, 0, "off_b")).toBe(true);
  });
});

describe("promotion rules", () => {
  it("compares codes without regard to case or surrounding spaces", () => {
    expect(normalizeCode(" Save10 ")).toBe(normalizeCode("SAVE10"));
  });

  it("accepts exactly one of percent_off and amount_off", () => {
    expect(checkPromotionRules({ percent_off: "100", duration: "once" }, now)).toEqual([]);
    expect(checkPromotionRules({ amount_off: "5.50", currency: "USD", duration: "forever" }, now)).toEqual(
      [],
    );
    expect(
      checkPromotionRules({ percent_off: 5, amount_off: 5, currency: "USD", duration: "once" }, now),
    ).toHaveLength(1);
    expect(checkPromotionRules({ duration: "once" }, now)).toHaveLength(1);
  });

  it("refuses amounts finer than the currency's minor unit", () => {
    expect(checkPromotionRules({ amount_off: "5.5", currency: "JPY", duration: "once" }, now)).toEqual([
      { field: "amount_off", message: "has more decimals than JPY has minor units" },
    ]);
  });

  it("needs duration_in_periods exactly when the duration repeats", () => {
    expect(
      checkPromotionRules({ percent_off: 5, duration: "repeating", duration_in_periods: 2 }, now),
    ).toEqual([]);
    expect(checkPromotionRules({ percent_off: 5, duration: "repeating" }, now)[0]?.field).toBe(
      "duration_in_periods",
    );
    expect(
      checkPromotionRules({ percent_off: 5, duration: "once", duration_in_periods: 2 }, now)[0]?.field,
    ).toBe("duration_in_periods");
  });
});
