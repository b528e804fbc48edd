import { describe, expect, it } from "vitest";
import { UnknownCurrencyError } from "../money/index.ts";
import { InvalidPlanItemError } from "./errors.ts";
import { ratePlan } from "./rate-plan.ts";
import type { PlanItem, PriceTier } from "./types.ts";

const documentedTiers: PriceTier[] = [
  { up_to: "1000", unit_price: "0.010" },
  { up_to: "10000", unit_price: "0.008" },
  { up_to: null, unit_price: "0.005" },
];

describe("ratePlan", () => {
  it("rates every item and totals the rounded lines", () => {
    const items: PlanItem[] = [
      { model: "FLAT_RATE", flat_amount: "20", timing: "in_advance" },
      { model: "GRADUATED", billable_unit: "tokens", tiers: documentedTiers },
      { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.000002" },
    ];
    const plan = ratePlan(items, { tokens: "15000", calls: "1234567" }, { currency: "USD" });
    expect(plan.currency).toBe("USD");
    expect(plan.lines.map((line) => line.amount)).toEqual([2000n, 10700n, 247n]);
    expect(plan.total).toBe(12947n);
    expect(plan.total_decimal).toBe("129.469134");
  });

  it("rounds each line once before summing, so the total matches the invoice lines", () => {
    const items: PlanItem[] = [
      { model: "PER_UNIT", billable_unit: "a", unit_price: "0.005" },
      { model: "PER_UNIT", billable_unit: "b", unit_price: "0.005" },
    ];
    const plan = ratePlan(items, { a: "1", b: "1" }, { currency: "USD" });
    expect(plan.total).toBe(2n);
    expect(plan.total_decimal).toBe("0.01");
    expect(ratePlan(items, { a: "1", b: "1" }, { currency: "USD", rounding: "half_even" }).total).toBe(0n);
  });

  it("rates a unit without a quantity as zero and ignores quantities for other units", () => {
    const items: PlanItem[] = [{ model: "PERCENTAGE", billable_unit: "volume", percent: "3", min_fee: "1" }];
    const plan = ratePlan(items, { other: "100", constructor: "5" }, { currency: "EUR" });
    expect(plan.lines[0]?.quantity).toBe("0");
    expect(plan.total).toBe(100n);
  });

  it("does not read a unit named like an Object prototype property from the prototype", () => {
    const items: PlanItem[] = [{ model: "PER_UNIT", billable_unit: "toString", unit_price: "1" }];
    expect(ratePlan(items, {}, { currency: "USD" }).total).toBe(0n);
  });

  it("passes carried-over allowance to the item of that unit", () => {
    const items: PlanItem[] = [
      {
        model: "PER_UNIT",
        billable_unit: "calls",
        unit_price: "1",
        included_free: "10",
        rollover: { max: "10" },
      },
    ];
    const plan = ratePlan(items, { calls: "25" }, { currency: "USD", rollover_in: { calls: "5" } });
    expect(plan.lines[0]?.billable_quantity).toBe("10");
    expect(plan.total).toBe(1000n);
  });

  it("rejects the whole plan with every issue and its item path", () => {
    const items = [
      { model: "PER_UNIT", billable_unit: "a", unit_price: "1" },
      {
        model: "GRADUATED",
        billable_unit: "b",
        tiers: [
          { up_to: "10", unit_price: "1" },
          { up_to: "5", unit_price: "1" },
          { up_to: null, unit_price: "-1" },
        ],
      },
    ] as PlanItem[];
    try {
      ratePlan(items, {}, { currency: "USD" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidPlanItemError);
      expect((error as InvalidPlanItemError).issues.map((issue) => issue.field)).toEqual([
        "items[1].tiers[1].up_to",
        "items[1].tiers[2].unit_price",
      ]);
    }
  });

  it("rejects an unknown currency", () => {
    expect(() => ratePlan([], {}, { currency: "usd" })).toThrow(UnknownCurrencyError);
  });

  it("rates an empty plan at zero", () => {
    expect(ratePlan([], {}, { currency: "JPY" })).toEqual({
      currency: "JPY",
      lines: [],
      total: 0n,
      total_decimal: "0",
    });
  });
});
