import { describe, expect, it } from "vitest";
import { validatePlanItem, validatePlanItems } from "./validate.ts";

const documentedTiers = [
  { up_to: "1000", unit_price: "0.010" },
  { up_to: "10000", unit_price: "0.008" },
  { up_to: null, unit_price: "0.005" },
];

function fields(item: unknown, prefix?: string): string[] {
  return validatePlanItem(item, prefix).map((issue) => issue.field);
}

describe("validatePlanItem", () => {
  it.each([
    { model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.01", included_free: "100", cap: 5000 },
    { model: "FLAT_RATE", flat_amount: "49.00", timing: "in_advance" },
    { model: "PERCENTAGE", billable_unit: "volume", percent: "2.9", min_fee: "5" },
    {
      model: "INCLUDED_QUOTA",
      billable_unit: "tokens",
      included: "10000",
      overage_price: "0.05",
      block_size: 1000,
    },
    { model: "GRADUATED", billable_unit: "tokens", tiers: documentedTiers, rollover: { max: "500" } },
    { model: "VOLUME", billable_unit: "tokens", tiers: documentedTiers },
    { model: "GRADUATED", billable_unit: "tokens", tiers: [{ up_to: null, unit_price: 0, flat_price: 10 }] },
  ])("accepts a valid $model item", (item) => {
    expect(validatePlanItem(item)).toEqual([]);
  });

  it("rejects a value that is not an object", () => {
    expect(validatePlanItem("PER_UNIT", "items[3]")).toEqual([
      { field: "items[3]", message: "must be an object" },
    ]);
    expect(fields(null)).toEqual(["item"]);
  });

  it("rejects an unknown or missing model", () => {
    expect(fields({ model: "TIERED", billable_unit: "x" })).toEqual(["model"]);
    expect(fields({ billable_unit: "x" })).toEqual(["model"]);
  });

  it("reports missing parameters of each model", () => {
    expect(fields({ model: "PER_UNIT" })).toEqual(["unit_price", "billable_unit"]);
    expect(fields({ model: "FLAT_RATE" })).toEqual(["flat_amount", "timing"]);
    expect(fields({ model: "PERCENTAGE", billable_unit: "v" })).toEqual(["percent"]);
    expect(fields({ model: "INCLUDED_QUOTA", billable_unit: "t" })).toEqual(["included", "overage_price"]);
    expect(fields({ model: "GRADUATED", billable_unit: "t" })).toEqual(["tiers"]);
    expect(fields({ model: "VOLUME", billable_unit: "t", tiers: [{ up_to: null }] })).toEqual([
      "tiers[0].unit_price",
    ]);
  });

  it("rejects negative prices, amounts and allowances", () => {
    expect(fields({ model: "PER_UNIT", billable_unit: "a", unit_price: "-0.01" })).toEqual(["unit_price"]);
    expect(fields({ model: "FLAT_RATE", flat_amount: -5, timing: "in_arrears" })).toEqual(["flat_amount"]);
    expect(fields({ model: "PERCENTAGE", billable_unit: "v", percent: "1", min_fee: "-1" })).toEqual([
      "min_fee",
    ]);
    expect(
      fields({
        model: "PER_UNIT",
        billable_unit: "a",
        unit_price: "1",
        included_free: "-1",
        cap: "-2",
        rollover: { max: "-3" },
      }),
    ).toEqual(["included_free", "cap", "rollover.max"]);
    expect(
      fields({
        model: "GRADUATED",
        billable_unit: "t",
        tiers: [{ up_to: null, unit_price: "-1", flat_price: "-2" }],
      }),
    ).toEqual(["tiers[0].unit_price", "tiers[0].flat_price"]);
  });

  it("rejects decimals that are not numbers", () => {
    expect(validatePlanItem({ model: "PER_UNIT", billable_unit: "a", unit_price: "0,01" })).toEqual([
      { field: "unit_price", message: 'must be a decimal number (e.g. "0.05")' },
    ]);
    expect(fields({ model: "PER_UNIT", billable_unit: "a", unit_price: Number.NaN })).toEqual(["unit_price"]);
  });

  it("rejects an empty tier list", () => {
    expect(validatePlanItem({ model: "GRADUATED", billable_unit: "t", tiers: [] })).toEqual([
      { field: "tiers", message: "must contain at least one tier" },
    ]);
  });

  it("rejects overlapping tiers with the offending tier's path under the prefix", () => {
    const tiers = [
      { up_to: "1000", unit_price: "0.01" },
      { up_to: "1000", unit_price: "0.008" },
      { up_to: null, unit_price: "0.005" },
    ];
    const issues = validatePlanItem({ model: "GRADUATED", billable_unit: "t", tiers }, "items[0]");
    expect(issues.map((issue) => issue.field)).toEqual(["items[0].tiers[1].up_to"]);
    expect(issues[0]?.message).toMatch(/overlap or are out of order/);
  });

  it("rejects tiers out of order", () => {
    const tiers = [
      { up_to: "10000", unit_price: "0.008" },
      { up_to: "1000", unit_price: "0.01" },
      { up_to: null, unit_price: "0.005" },
    ];
    expect(fields({ model: "VOLUME", billable_unit: "t", tiers })).toEqual(["tiers[1].up_to"]);
  });

  it("rejects an unbounded tier anywhere but last, and a bounded last tier", () => {
    const nullInMiddle = [
      { up_to: "1000", unit_price: "0.01" },
      { up_to: null, unit_price: "0.008" },
      { up_to: null, unit_price: "0.005" },
    ];
    expect(fields({ model: "GRADUATED", billable_unit: "t", tiers: nullInMiddle })).toEqual([
      "tiers[1].up_to",
    ]);
    const boundedLast = [
      { up_to: "1000", unit_price: "0.01" },
      { up_to: "5000", unit_price: "0.008" },
    ];
    expect(fields({ model: "GRADUATED", billable_unit: "t", tiers: boundedLast })).toEqual([
      "tiers[1].up_to",
    ]);
  });

  it("rejects a zero or negative tier bound", () => {
    const tiers = [
      { up_to: "0", unit_price: "0.01" },
      { up_to: null, unit_price: "0.005" },
    ];
    expect(fields({ model: "GRADUATED", billable_unit: "t", tiers })).toEqual(["tiers[0].up_to"]);
  });

  it.each([
    ["0", "must be greater than 0"],
    ["-1000", "must not be negative"],
    ["2.5", "must be a whole number"],
  ])("rejects block_size %s", (blockSize, message) => {
    const item = {
      model: "INCLUDED_QUOTA",
      billable_unit: "t",
      included: "0",
      overage_price: "1",
      block_size: blockSize,
    };
    expect(validatePlanItem(item)).toEqual([{ field: "block_size", message }]);
  });

  it.each(["-1", "100.01", "250"])("rejects percent %s outside 0..100", (percent) => {
    expect(fields({ model: "PERCENTAGE", billable_unit: "v", percent })).toEqual(["percent"]);
  });

  it("accepts percent at both ends of 0..100", () => {
    expect(validatePlanItem({ model: "PERCENTAGE", billable_unit: "v", percent: "0" })).toEqual([]);
    expect(validatePlanItem({ model: "PERCENTAGE", billable_unit: "v", percent: 100 })).toEqual([]);
  });

  it("rejects usage modifiers and a billable unit on FLAT_RATE", () => {
    const item = { model: "FLAT_RATE", flat_amount: "1", timing: "monthly", billable_unit: "x", cap: "3" };
    expect(fields(item)).toEqual(["timing", "billable_unit", "cap"]);
  });

  it("rejects a rollover that is not an object", () => {
    expect(fields({ model: "PER_UNIT", billable_unit: "a", unit_price: "1", rollover: 5 })).toEqual([
      "rollover",
    ]);
  });
});

describe("validatePlanItems", () => {
  it("prefixes each item's issues with its index", () => {
    const items = [
      { model: "FLAT_RATE", flat_amount: "10", timing: "in_advance" },
      { model: "PER_UNIT", billable_unit: "a", unit_price: "-1" },
    ];
    expect(validatePlanItems(items)).toEqual([
      { field: "items[1].unit_price", message: "must not be negative" },
    ]);
  });

  it("rejects items that are not a list", () => {
    expect(validatePlanItems({})).toEqual([{ field: "items", message: "must be a list of items" }]);
  });
});
