import { describe, expect, it } from "vitest";
import { InvalidQuantityError } from "./errors.ts";
import { computeRollover, includedAllowance } from "./rollover.ts";

describe("computeRollover", () => {
  it("carries this period's unused included allowance, up to the max", () => {
    expect(computeRollover({ included: "1000", used: "400", max: "1000" })).toBe("600");
    expect(computeRollover({ included: "1000", used: "400", max: "250" })).toBe("250");
  });

  it("carries nothing when the allowance was used up or exceeded", () => {
    expect(computeRollover({ included: "1000", used: "1000", max: "500" })).toBe("0");
    expect(computeRollover({ included: "1000", used: "5000", max: "500" })).toBe("0");
  });

  it("uses carried-over allowance first and lets it expire instead of rolling it again", () => {
    expect(computeRollover({ included: "1000", used: "500", previous_carry_over: "300", max: "5000" })).toBe(
      "800",
    );
    expect(computeRollover({ included: "1000", used: "0", previous_carry_over: "300", max: "5000" })).toBe(
      "1000",
    );
    expect(computeRollover({ included: "1000", used: "200", previous_carry_over: "300", max: "5000" })).toBe(
      "1000",
    );
  });

  it("rejects negative inputs", () => {
    expect(() => computeRollover({ included: "1000", used: "-1", max: "5" })).toThrow(InvalidQuantityError);
  });
});

describe("includedAllowance", () => {
  it("adds included_free and an included quota", () => {
    expect(
      includedAllowance({
        model: "INCLUDED_QUOTA",
        billable_unit: "t",
        included: "1000",
        overage_price: "1",
        included_free: "5",
      }),
    ).toBe("1005");
    expect(includedAllowance({ model: "PER_UNIT", billable_unit: "t", unit_price: "1" })).toBe("0");
    expect(includedAllowance({ model: "FLAT_RATE", flat_amount: "1", timing: "in_advance" })).toBe("0");
  });
});
