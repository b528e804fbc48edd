import { describe, expect, it } from "vitest";
import { formatDecimal } from "../money/index.ts";
import { marginalItemAmount } from "./marginal.ts";
import { exactItemAmount } from "./rate-item.ts";
import type { PlanItem } from "./types.ts";

const graduated: PlanItem = {
  model: "GRADUATED",
  billable_unit: "u",
  included_free: 100,
  tiers: [
    { up_to: 1_000, unit_price: "0.010" },
    { up_to: 10_000, unit_price: "0.008", flat_price: "5" },
    { up_to: null, unit_price: "0.005" },
  ],
};

const marginal = (item: PlanItem, before: string | number, quantity: string | number) =>
  formatDecimal(marginalItemAmount(item, before, quantity));

describe("marginalItemAmount", () => {
  it("earns nothing inside the free allowance and prices only the part beyond it", () => {
    expect(marginal(graduated, 0, 100)).toBe("0");
    expect(marginal(graduated, 90, 20)).toBe("0.1");
  });

  it("prices an event that crosses a tier bound at both tiers' prices, with the flat price of the tier it enters", () => {
    // billable 990 → 1,010: 10 × 0.010 + 10 × 0.008 + 5
    expect(marginal(graduated, 1_090, 20)).toBe("5.18");
  });

  it("charges the next tier's flat price only when an event goes past the bound, not when it ends on it", () => {
    expect(marginal(graduated, 1_000, 100)).toBe("1");
    expect(marginal(graduated, 1_100, 1)).toBe("5.008");
    expect(marginal(graduated, 1_101, 1)).toBe("0.008");
  });

  it("stops at the cap", () => {
    const capped: PlanItem = { model: "PER_UNIT", billable_unit: "u", unit_price: "0.25", cap: 10 };
    expect(marginal(capped, 8, 5)).toBe("0.5");
    expect(marginal(capped, 10, 5)).toBe("0");
  });

  it("reprices every unit when a VOLUME total reaches a cheaper tier", () => {
    const volume: PlanItem = {
      model: "VOLUME",
      billable_unit: "u",
      tiers: [
        { up_to: 10, unit_price: "1" },
        { up_to: null, unit_price: "0.5" },
      ],
    };
    expect(marginal(volume, 9, 1)).toBe("1");
    expect(marginal(volume, 10, 1)).toBe("-4.5");
    expect(marginal(volume, 11, 1)).toBe("0.5");
  });

  it("is exact for fractional quantities too", () => {
    // billable 899.9 → 1,100.1: 100.1 × 0.010 + 100.1 × 0.008 + 5
    expect(marginal(graduated, "999.9", "200.2")).toBe("6.8018");
  });

  it("stays exact for a price with as many digits as a decimal holds", () => {
    const longPrice: PlanItem = {
      model: "PER_UNIT",
      billable_unit: "u",
      unit_price: "0.9999999999999999999999999999999999999999",
    };
    const difference = exactItemAmount(longPrice, 123_456_789 + 987_654_321).minus(
      exactItemAmount(longPrice, 123_456_789),
    );
    expect(marginal(longPrice, 123_456_789, 987_654_321)).toBe(formatDecimal(difference));
  });

  it("refuses a negative quantity as rating does", () => {
    expect(() => marginalItemAmount(graduated, 10, -1)).toThrow(/must not be negative/);
  });
});
