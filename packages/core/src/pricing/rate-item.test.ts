import { describe, expect, it } from "vitest";
import { UnknownCurrencyError } from "../money/index.ts";
import { InvalidPlanItemError, InvalidQuantityError } from "./errors.ts";
import { rateItem } from "./rate-item.ts";
import type { PlanItem, PriceTier } from "./types.ts";

const documentedTiers: PriceTier[] = [
  { up_to: "1000", unit_price: "0.010" },
  { up_to: "10000", unit_price: "0.008" },
  { up_to: null, unit_price: "0.005" },
];

const usd = { currency: "USD" };

describe("rateItem: the documented example", () => {
  it("rates a graduated plan across three tiers: 15,000 units → 107.00", () => {
    const line = rateItem(
      { model: "GRADUATED", billable_unit: "tokens", tiers: documentedTiers },
      "15000",
      usd,
    );
    expect(line.amount_decimal).toBe("107");
    expect(line.amount).toBe(10700n);
    expect(line.tiers).toEqual([
      { up_to: "1000", quantity: "1000", unit_price: "0.01", amount_decimal: "10" },
      { up_to: "10000", quantity: "9000", unit_price: "0.008", amount_decimal: "72" },
      { up_to: null, quantity: "5000", unit_price: "0.005", amount_decimal: "25" },
    ]);
  });

  it("rates a volume plan at the reached tier's price: 15,000 units → 75.00", () => {
    const line = rateItem({ model: "VOLUME", billable_unit: "tokens", tiers: documentedTiers }, 15000, usd);
    expect(line.amount_decimal).toBe("75");
    expect(line.amount).toBe(7500n);
    expect(line.tiers?.map((tier) => tier.quantity)).toEqual(["0", "0", "15000"]);
  });

  it("rates included quota overage in blocks rounded up: 12,001 with 10,000 included → 3 blocks → 0.15", () => {
    const item: PlanItem = {
      model: "INCLUDED_QUOTA",
      billable_unit: "tokens",
      included: "10000",
      overage_price: "0.05",
      block_size: "1000",
    };
    const line = rateItem(item, "12001", usd);
    expect(line.billable_quantity).toBe("2001");
    expect(line.amount_decimal).toBe("0.15");
    expect(line.amount).toBe(15n);
    expect(line.explanation).toContain("3 block(s)");
  });
});

type Case = { quantity: string; amountDecimal: string; amount: bigint };

const modelTable: { name: string; item: PlanItem; cases: Case[] }[] = [
  {
    name: "PER_UNIT with 100 free",
    item: { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01", included_free: "100" },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "100", amountDecimal: "0", amount: 0n },
      { quantity: "101", amountDecimal: "0.01", amount: 1n },
    ],
  },
  {
    name: "FLAT_RATE",
    item: { model: "FLAT_RATE", flat_amount: "49.99", timing: "in_advance" },
    cases: [
      { quantity: "0", amountDecimal: "49.99", amount: 4999n },
      { quantity: "1", amountDecimal: "49.99", amount: 4999n },
      { quantity: "2", amountDecimal: "49.99", amount: 4999n },
    ],
  },
  {
    name: "PERCENTAGE 2.5% with a 5.00 minimum fee",
    item: { model: "PERCENTAGE", billable_unit: "volume", percent: "2.5", min_fee: "5" },
    cases: [
      { quantity: "0", amountDecimal: "5", amount: 500n },
      { quantity: "200", amountDecimal: "5", amount: 500n },
      { quantity: "201", amountDecimal: "5.025", amount: 503n },
    ],
  },
  {
    name: "INCLUDED_QUOTA per unit",
    item: { model: "INCLUDED_QUOTA", billable_unit: "tokens", included: "10000", overage_price: "0.002" },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "10000", amountDecimal: "0", amount: 0n },
      { quantity: "10001", amountDecimal: "0.002", amount: 0n },
      { quantity: "10003", amountDecimal: "0.006", amount: 1n },
    ],
  },
  {
    name: "INCLUDED_QUOTA in blocks of 1,000",
    item: {
      model: "INCLUDED_QUOTA",
      billable_unit: "tokens",
      included: "10000",
      overage_price: "0.05",
      block_size: 1000,
    },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "10000", amountDecimal: "0", amount: 0n },
      { quantity: "10001", amountDecimal: "0.05", amount: 5n },
      { quantity: "11000", amountDecimal: "0.05", amount: 5n },
      { quantity: "11001", amountDecimal: "0.1", amount: 10n },
      { quantity: "10000.5", amountDecimal: "0.05", amount: 5n },
    ],
  },
  {
    name: "GRADUATED",
    item: { model: "GRADUATED", billable_unit: "tokens", tiers: documentedTiers },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "1000", amountDecimal: "10", amount: 1000n },
      { quantity: "1001", amountDecimal: "10.008", amount: 1001n },
      { quantity: "10000", amountDecimal: "82", amount: 8200n },
      { quantity: "10001", amountDecimal: "82.005", amount: 8201n },
    ],
  },
  {
    name: "VOLUME",
    item: { model: "VOLUME", billable_unit: "tokens", tiers: documentedTiers },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "1000", amountDecimal: "10", amount: 1000n },
      { quantity: "1001", amountDecimal: "8.008", amount: 801n },
      { quantity: "10000", amountDecimal: "80", amount: 8000n },
      { quantity: "10001", amountDecimal: "50.005", amount: 5001n },
    ],
  },
  {
    name: "GRADUATED with a flat price on the second tier",
    item: {
      model: "GRADUATED",
      billable_unit: "seats",
      tiers: [
        { up_to: 5, unit_price: "0" },
        { up_to: null, unit_price: "8", flat_price: "20" },
      ],
    },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "5", amountDecimal: "0", amount: 0n },
      { quantity: "6", amountDecimal: "28", amount: 2800n },
      { quantity: "7", amountDecimal: "36", amount: 3600n },
    ],
  },
  {
    name: "VOLUME with flat prices",
    item: {
      model: "VOLUME",
      billable_unit: "seats",
      tiers: [
        { up_to: 5, unit_price: "10", flat_price: "1" },
        { up_to: null, unit_price: "8", flat_price: "2" },
      ],
    },
    cases: [
      { quantity: "0", amountDecimal: "0", amount: 0n },
      { quantity: "5", amountDecimal: "51", amount: 5100n },
      { quantity: "6", amountDecimal: "50", amount: 5000n },
    ],
  },
];

describe.each(modelTable)("rateItem: $name", ({ item, cases }) => {
  it.each(cases)("rates $quantity units at $amountDecimal exactly and $amount minor units", (testCase) => {
    const line = rateItem(item, testCase.quantity, usd);
    expect(line.amount_decimal).toBe(testCase.amountDecimal);
    expect(line.amount).toBe(testCase.amount);
    expect(line.model).toBe(item.model);
  });
});

describe("rateItem: amounts and rounding", () => {
  it("keeps a tiny unit price exact and rounds once: 0.000002 × 1,234,567 = 2.469134 → 247 cents", () => {
    const line = rateItem(
      { model: "PER_UNIT", billable_unit: "tokens", unit_price: "0.000002" },
      1234567,
      usd,
    );
    expect(line.unit_price).toBe("0.000002");
    expect(line.amount_decimal).toBe("2.469134");
    expect(line.amount).toBe(247n);
  });

  it("rounds to whole yen for a JPY plan", () => {
    const item: PlanItem = { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.37" };
    const line = rateItem(item, "1234", { currency: "JPY" });
    expect(line.amount_decimal).toBe("456.58");
    expect(line.amount).toBe(457n);
  });

  it("rounds to fils for a KWD plan, half-up or half-even at .5", () => {
    const item: PlanItem = { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.0025" };
    expect(rateItem(item, "1", { currency: "KWD" }).amount).toBe(3n);
    expect(rateItem(item, "1", { currency: "KWD", rounding: "half_even" }).amount).toBe(2n);
    expect(rateItem(item, "3", { currency: "KWD", rounding: "half_even" }).amount).toBe(8n);
  });

  it("rounds half-up by default and half-even on request at exactly half a cent", () => {
    const item: PlanItem = { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.005" };
    expect(rateItem(item, "1", usd).amount).toBe(1n);
    expect(rateItem(item, "1", { currency: "USD", rounding: "half_even" }).amount).toBe(0n);
    expect(rateItem(item, "3", { currency: "USD", rounding: "half_even" }).amount).toBe(2n);
    expect(rateItem(item, "1", { currency: "USD", rounding: "down" }).amount).toBe(0n);
    expect(rateItem(item, "1", { currency: "USD", rounding: "up" }).amount).toBe(1n);
  });

  it("accepts fractional quantities", () => {
    const item: PlanItem = { model: "PER_UNIT", billable_unit: "gb_hours", unit_price: "0.1" };
    expect(rateItem(item, "2.55", usd).amount_decimal).toBe("0.255");
  });
});

describe("rateItem: allowances and caps", () => {
  it("bills nothing above the cap and reports what it left out", () => {
    const item: PlanItem = {
      model: "PER_UNIT",
      billable_unit: "calls",
      unit_price: "0.01",
      included_free: "1000",
      cap: "5000",
    };
    const line = rateItem(item, "7000", usd);
    expect(line.included_quantity).toBe("1000");
    expect(line.billable_quantity).toBe("5000");
    expect(line.over_cap_quantity).toBe("1000");
    expect(line.amount).toBe(5000n);
  });

  it("reports zero over the cap when usage stays under it", () => {
    const item: PlanItem = { model: "PER_UNIT", billable_unit: "calls", unit_price: "1", cap: "10" };
    expect(rateItem(item, "10", usd).over_cap_quantity).toBe("0");
    expect(rateItem(item, "11", usd).over_cap_quantity).toBe("1");
  });

  it("prices graduated tiers on the quantity left after the free allowance", () => {
    const item: PlanItem = {
      model: "GRADUATED",
      billable_unit: "tokens",
      tiers: documentedTiers,
      included_free: "1000",
    };
    const line = rateItem(item, "16000", usd);
    expect(line.billable_quantity).toBe("15000");
    expect(line.amount).toBe(10700n);
  });

  it("adds carried-over allowance to the included quota", () => {
    const item: PlanItem = {
      model: "INCLUDED_QUOTA",
      billable_unit: "tokens",
      included: "10000",
      overage_price: "0.05",
      block_size: "1000",
      rollover: { max: "5000" },
    };
    const line = rateItem(item, "12001", { currency: "USD", rollover_in: "2000" });
    expect(line.included_quantity).toBe("12000");
    expect(line.billable_quantity).toBe("1");
    expect(line.amount).toBe(5n);
  });

  it("charges the percentage on the capped total", () => {
    const item: PlanItem = { model: "PERCENTAGE", billable_unit: "volume", percent: "1", cap: "100000" };
    const line = rateItem(item, "250000", usd);
    expect(line.amount_decimal).toBe("1000");
    expect(line.explanation).toBe("1% of 100000");
  });

  it("marks a flat rate's timing and ignores the quantity", () => {
    const line = rateItem({ model: "FLAT_RATE", flat_amount: 99, timing: "in_arrears" }, "500", usd);
    expect(line).toMatchObject({
      billable_unit: null,
      quantity: "1",
      billable_quantity: "1",
      timing: "in_arrears",
    });
  });
});

describe("rateItem: errors", () => {
  const perUnit: PlanItem = { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" };

  it("rejects a negative quantity", () => {
    expect(() => rateItem(perUnit, "-1", usd)).toThrow(InvalidQuantityError);
    expect(() => rateItem(perUnit, -0.5, usd)).toThrow(InvalidQuantityError);
  });

  it("rejects a quantity that is not a number", () => {
    expect(() => rateItem(perUnit, "lots", usd)).toThrow(InvalidQuantityError);
    expect(() => rateItem(perUnit, Number.POSITIVE_INFINITY, usd)).toThrow(InvalidQuantityError);
  });

  it("rejects a negative carried-over allowance", () => {
    expect(() => rateItem(perUnit, "1", { currency: "USD", rollover_in: "-5" })).toThrow(
      InvalidQuantityError,
    );
  });

  it("rejects an invalid item with its issues", () => {
    const invalid = { model: "PER_UNIT", billable_unit: "calls", unit_price: "-1" } as PlanItem;
    expect(() => rateItem(invalid, "1", usd)).toThrow(InvalidPlanItemError);
  });

  it("rejects an unknown currency", () => {
    expect(() => rateItem(perUnit, "1", { currency: "XYZ" })).toThrow(UnknownCurrencyError);
  });
});
