import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExactDecimal, formatDecimal, parseDecimal } from "../money/index.ts";
import { marginalItemAmount } from "./marginal.ts";
import { exactItemAmount, rateItem } from "./rate-item.ts";
import type { PlanItem, PriceTier, UsageItem } from "./types.ts";

// fast-check prints the seed and the shrunk counterexample when a property fails; rerun with
// fc.assert(..., { seed, path }) to reproduce it.

/** A non-negative decimal string with up to `scale` fractional digits, built from integers only. */
function decimalString(maxWhole: number, scale: number): fc.Arbitrary<string> {
  const factor = 10n ** BigInt(scale);
  return fc
    .bigInt({ min: 0n, max: BigInt(maxWhole) * factor })
    .map((scaled) => formatDecimal(new ExactDecimal(scaled.toString()).dividedBy(factor.toString())));
}

const price = decimalString(10, 6);
const quantity = decimalString(50_000, 3);

/** Tiers with strictly increasing integer bounds and an unbounded last tier. */
const tiers: fc.Arbitrary<PriceTier[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 40_000 }), { minLength: 0, maxLength: 4 })
  .chain((bounds) => {
    const sorted = [...bounds].sort((left, right) => left - right);
    const upTos: (number | null)[] = [...sorted, null];
    return fc.tuple(
      ...upTos.map((upTo) =>
        fc.record(
          { up_to: fc.constant(upTo), unit_price: price, flat_price: decimalString(20, 2) },
          { requiredKeys: ["up_to", "unit_price"] },
        ),
      ),
    );
  });

const modifiers = fc.record(
  { included_free: decimalString(1_000, 2), cap: decimalString(60_000, 0) },
  { requiredKeys: [] },
);

const usageItem: fc.Arbitrary<UsageItem> = fc.oneof(
  fc.record({ unit_price: price, modifiers }).map(
    ({ unit_price, modifiers }): UsageItem => ({
      model: "PER_UNIT",
      billable_unit: "u",
      unit_price,
      ...modifiers,
    }),
  ),
  fc
    .record({
      percent: decimalString(100, 2),
      min_fee: fc.option(decimalString(50, 2), { nil: undefined }),
      modifiers,
    })
    .map(({ percent, min_fee, modifiers }): UsageItem => {
      const item: UsageItem = { model: "PERCENTAGE", billable_unit: "u", percent, ...modifiers };
      return min_fee === undefined ? item : { ...item, min_fee };
    }),
  fc
    .record({
      included: decimalString(20_000, 0),
      overage_price: price,
      block_size: fc.option(fc.integer({ min: 1, max: 5_000 }), { nil: undefined }),
      modifiers,
    })
    .map(({ included, overage_price, block_size, modifiers }): UsageItem => {
      const item: UsageItem = {
        model: "INCLUDED_QUOTA",
        billable_unit: "u",
        included,
        overage_price,
        ...modifiers,
      };
      return block_size === undefined ? item : { ...item, block_size };
    }),
  fc
    .record({ tiers, modifiers })
    .map(
      ({ tiers, modifiers }): UsageItem => ({ model: "GRADUATED", billable_unit: "u", tiers, ...modifiers }),
    ),
);

const volumeItem: fc.Arbitrary<UsageItem> = tiers.map((tiers) => ({
  model: "VOLUME",
  billable_unit: "u",
  tiers,
}));

const anyItem: fc.Arbitrary<PlanItem> = fc.oneof(
  usageItem,
  volumeItem,
  fc
    .record({
      flat_amount: decimalString(1_000, 2),
      timing: fc.constantFrom("in_advance" as const, "in_arrears" as const),
    })
    .map(({ flat_amount, timing }): PlanItem => ({ model: "FLAT_RATE", flat_amount, timing })),
);

/** Items whose allowance, cap and bounds are whole numbers, so marginalItemAmount's fast path applies. */
const wholeItem: fc.Arbitrary<PlanItem> = fc
  .record({ item: anyItem, free: fc.option(fc.integer({ min: 0, max: 1_000 }), { nil: undefined }) })
  .map(({ item, free }): PlanItem => {
    if (item.model === "FLAT_RATE") return item;
    const { included_free: _fractional, ...rest } = item;
    return free === undefined ? rest : { ...rest, included_free: free };
  });

const usd = { currency: "USD" };

function ascending(left: string, right: string): [string, string] {
  return parseDecimal(left).lessThanOrEqualTo(parseDecimal(right)) ? [left, right] : [right, left];
}

/**
 * GRADUATED computed the slow way: walk whole units one at a time, find each unit's tier by its
 * bound, and add that tier's price; add each touched tier's flat price once.
 */
function graduatedUnitByUnit(priceTiers: PriceTier[], units: number): ExactDecimal {
  let amount = new ExactDecimal(0);
  const touched = new Set<number>();
  for (let unit = 1; unit <= units; unit += 1) {
    const index = priceTiers.findIndex((tier) => tier.up_to === null || unit <= Number(tier.up_to));
    const tier = priceTiers[index];
    if (tier === undefined) throw new Error("no tier for unit");
    amount = amount.plus(parseDecimal(tier.unit_price));
    touched.add(index);
  }
  for (const index of touched) amount = amount.plus(parseDecimal(priceTiers[index]?.flat_price ?? "0"));
  return amount;
}

describe("rating properties", () => {
  it("gives the same exact amount through exactItemAmount as rateItem's amount_decimal", () => {
    fc.assert(
      fc.property(anyItem, decimalString(60_000, 3), (item, quantity) => {
        expect(formatDecimal(exactItemAmount(item, quantity))).toBe(
          rateItem(item, quantity, usd).amount_decimal,
        );
      }),
    );
  });

  it("prices an increment as the difference of the exact amounts with and without it", () => {
    const wholeQuantity = fc.oneof(fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 3 }));
    const wholeIncrement = fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.constant(1));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(wholeItem, wholeQuantity.map(String), wholeIncrement.map(String)),
          fc.tuple(wholeItem, wholeQuantity, wholeIncrement),
          fc.tuple(anyItem, decimalString(60_000, 3), decimalString(5_000, 3)),
        ),
        ([item, before, increment]) => {
          const after = parseDecimal(before).plus(parseDecimal(increment)).toString();
          const difference = exactItemAmount(item, after).minus(exactItemAmount(item, before));
          expect(formatDecimal(marginalItemAmount(item, before, increment))).toBe(formatDecimal(difference));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("rates GRADUATED as the sum of per-tier charges computed unit by unit", () => {
    fc.assert(
      fc.property(tiers, fc.integer({ min: 0, max: 3_000 }), (priceTiers, units) => {
        const line = rateItem({ model: "GRADUATED", billable_unit: "u", tiers: priceTiers }, units, usd);
        expect(line.amount_decimal).toBe(formatDecimal(graduatedUnitByUnit(priceTiers, units)));
        const tierSum = (line.tiers ?? []).reduce(
          (sum, tier) => sum.plus(parseDecimal(tier.amount_decimal)),
          new ExactDecimal(0),
        );
        expect(formatDecimal(tierSum)).toBe(line.amount_decimal);
        const tierQuantity = (line.tiers ?? []).reduce(
          (sum, tier) => sum.plus(parseDecimal(tier.quantity)),
          new ExactDecimal(0),
        );
        expect(formatDecimal(tierQuantity)).toBe(String(units));
      }),
      { numRuns: 200 },
    );
  });

  it("never lowers the amount when the quantity grows, for every model but VOLUME", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          usageItem,
          anyItem.filter((item) => item.model === "FLAT_RATE"),
        ),
        quantity,
        quantity,
        (item, first, second) => {
          const [smaller, larger] = ascending(first, second);
          const low = rateItem(item, smaller, usd);
          const high = rateItem(item, larger, usd);
          expect(parseDecimal(low.amount_decimal).lessThanOrEqualTo(parseDecimal(high.amount_decimal))).toBe(
            true,
          );
          expect(low.amount <= high.amount).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never lowers a VOLUME amount when the quantity grows within one tier", () => {
    fc.assert(
      fc.property(volumeItem, quantity, quantity, (item, first, second) => {
        const [smaller, larger] = ascending(first, second);
        const low = rateItem(item, smaller, usd);
        const high = rateItem(item, larger, usd);
        const tierOf = (line: typeof low) => line.tiers?.findIndex((tier) => tier.quantity !== "0") ?? -1;
        fc.pre(tierOf(low) === tierOf(high) && tierOf(low) !== -1);
        expect(parseDecimal(low.amount_decimal).lessThanOrEqualTo(parseDecimal(high.amount_decimal))).toBe(
          true,
        );
        expect(low.amount <= high.amount).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("never produces a negative amount", () => {
    fc.assert(
      fc.property(
        anyItem,
        quantity,
        fc.constantFrom("half_up" as const, "half_even" as const, "down" as const, "up" as const),
        fc.constantFrom("USD", "JPY", "KWD", "CLF"),
        (item, used, rounding, currency) => {
          const line = rateItem(item, used, { currency, rounding });
          expect(parseDecimal(line.amount_decimal).isNegative() && line.amount_decimal !== "0").toBe(false);
          expect(line.amount >= 0n).toBe(true);
          expect(parseDecimal(line.billable_quantity).isNegative()).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rates a set of events the same whatever order their quantities are summed in", () => {
    const events = fc.array(decimalString(500, 4), { minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(
        anyItem,
        events.chain((list) =>
          fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length })),
        ),
        (item, [inOrder, shuffled]) => {
          const total = (list: string[]) =>
            formatDecimal(list.reduce((sum, value) => sum.plus(parseDecimal(value)), new ExactDecimal(0)));
          const first = rateItem(item, total(inOrder), usd);
          const second = rateItem(item, total(shuffled), usd);
          expect(second.amount_decimal).toBe(first.amount_decimal);
          expect(second.amount).toBe(first.amount);
        },
      ),
      { numRuns: 200 },
    );
  });
});
