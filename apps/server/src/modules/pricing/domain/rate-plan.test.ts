import { AforoError } from "@aforo/core";
import { describe, expect, it } from "vitest";
import { previewRatePlan } from "./preview.ts";
import { checkRatePlan, type RatePlanInput, type UnitReference, unitIdsOf } from "./rate-plan.ts";

const units: Record<string, UnitReference> = {
  api_calls: { id: "bu_calls", key: "api_calls", aggregation: "COUNT", status: "ACTIVE" },
  bu_calls: { id: "bu_calls", key: "api_calls", aggregation: "COUNT", status: "ACTIVE" },
  gmv: { id: "bu_gmv", key: "gmv", aggregation: "SUM", status: "ACTIVE" },
  old: { id: "bu_old", key: "old", aggregation: "COUNT", status: "ARCHIVED" },
};
const lookup = (reference: string) => units[reference];

function input(overrides: Partial<RatePlanInput> = {}): RatePlanInput {
  return {
    name: "Plan",
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    items: [{ model: "PER_UNIT", billable_unit: "bu_calls", unit_price: 0.001, stray: "dropped" }],
    ...overrides,
  };
}

describe("checkRatePlan", () => {
  it("stores items by unit key and id, with decimals as strings and unknown fields dropped", () => {
    const checked = checkRatePlan(input(), lookup);
    expect(checked).toMatchObject({ ok: true });
    if (!checked.ok) return;
    expect(checked.definition.items).toEqual([
      { model: "PER_UNIT", billable_unit: "api_calls", billable_unit_id: "bu_calls", unit_price: "0.001" },
    ]);
    expect(checked.definition).toMatchObject({
      rounding: "half_up",
      minimum_commitment: null,
      entitlements: [],
    });
    expect(unitIdsOf(checked.definition)).toEqual(["bu_calls"]);
  });

  it("refuses archived units and PERCENTAGE on anything but SUM", () => {
    const checked = checkRatePlan(
      input({
        items: [
          { model: "PER_UNIT", billable_unit: "old", unit_price: "1" },
          { model: "PERCENTAGE", billable_unit: "api_calls", percent: "3" },
          { model: "PERCENTAGE", billable_unit: "gmv", percent: "3" },
        ],
      }),
      lookup,
    );
    expect(checked.ok ? [] : checked.issues.map((issue) => issue.field)).toEqual([
      "items[0].billable_unit",
      "items[1].billable_unit",
    ]);
  });
});

describe("previewRatePlan", () => {
  const tiers = [
    { up_to: "1000", unit_price: "0.010" },
    { up_to: "10000", unit_price: "0.008" },
    { up_to: null, unit_price: "0.005" },
  ];
  const plan = {
    currency: "USD",
    rounding: "half_up" as const,
    minimum_commitment: null,
    maximum_spend: null,
    items: [
      { model: "GRADUATED" as const, billable_unit: "api_calls", billable_unit_id: "bu_calls", tiers },
      { model: "VOLUME" as const, billable_unit: "seats", tiers },
    ],
  };

  it("rates the documented example: 107.00 graduated, 75.00 volume, amounts as JSON integers", () => {
    const preview = previewRatePlan(plan, { bu_calls: "15000", seats: 15000 });
    expect(preview.lines.map((line) => [line.model, line.amount, line.amount_decimal])).toEqual([
      ["GRADUATED", 10700, "107"],
      ["VOLUME", 7500, "75"],
    ]);
    expect(preview.total).toBe(18200);
    expect(preview.lines[0]?.billable_unit_id).toBe("bu_calls");
  });

  it("lifts the total to the minimum commitment and caps it at the maximum spend", () => {
    const low = previewRatePlan({ ...plan, minimum_commitment: "200" }, { api_calls: "1" });
    expect(low.lines.at(-1)).toMatchObject({
      model: "MINIMUM_COMMITMENT",
      amount: 19999,
      amount_decimal: "199.99",
    });
    expect(low.total).toBe(20000);
    const high = previewRatePlan({ ...plan, maximum_spend: "100" }, { api_calls: "15000", seats: "15000" });
    expect(high.lines.at(-1)).toMatchObject({ model: "MAXIMUM_SPEND", amount: -8200 });
    expect(high.total).toBe(10000);
  });

  it("names the quantity at fault when it is unknown or negative", () => {
    try {
      previewRatePlan(plan, { storage: "1", api_calls: "-2" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AforoError);
      expect((error as AforoError).errors?.map((issue) => issue.field)).toEqual([
        "quantities.storage",
        "quantities.api_calls",
      ]);
    }
  });
});
