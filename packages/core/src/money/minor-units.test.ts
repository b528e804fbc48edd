import { describe, expect, it } from "vitest";
import { UnknownCurrencyError } from "./currencies.ts";
import { parseDecimal } from "./decimal.ts";
import { fromMinorUnits, isRoundingMode, type RoundingMode, toMinorUnits } from "./minor-units.ts";

describe("toMinorUnits", () => {
  it("rounds a tiny unit price times a large quantity to whole cents", () => {
    const amount = parseDecimal("0.000002").times("1234567");
    expect(amount.toString()).toBe("2.469134");
    expect(toMinorUnits(amount, "USD")).toBe(247n);
  });

  it("rounds to whole yen for JPY, which has no minor unit", () => {
    expect(toMinorUnits("1234.5", "JPY")).toBe(1235n);
    expect(toMinorUnits("1234.4999", "JPY")).toBe(1234n);
  });

  it("rounds to fils for KWD, which has three decimals", () => {
    expect(toMinorUnits("1.2345", "KWD")).toBe(1235n);
    expect(toMinorUnits("1.2344", "KWD")).toBe(1234n);
  });

  it("rounds to four decimals for CLF", () => {
    expect(toMinorUnits("0.00005", "CLF")).toBe(1n);
  });

  it.each<[string, RoundingMode, bigint]>([
    ["2.345", "half_up", 235n],
    ["2.345", "half_even", 234n],
    ["2.355", "half_even", 236n],
    ["2.345", "down", 234n],
    ["2.341", "up", 235n],
    ["2.3450000001", "half_even", 235n],
    ["-2.345", "half_up", -235n],
    ["-2.345", "half_even", -234n],
    ["-2.349", "down", -234n],
    ["-2.341", "up", -235n],
  ])("rounds %s with %s to %s cents", (amount, mode, expected) => {
    expect(toMinorUnits(amount, "USD", mode)).toBe(expected);
  });

  it("defaults to half-up at exactly .5 of a minor unit", () => {
    expect(toMinorUnits("0.005", "USD")).toBe(1n);
    expect(toMinorUnits("0.5", "JPY")).toBe(1n);
    expect(toMinorUnits("0.5", "JPY", "half_even")).toBe(0n);
    expect(toMinorUnits("1.5", "JPY", "half_even")).toBe(2n);
  });

  it("handles amounts beyond the safe integer range exactly", () => {
    expect(toMinorUnits("123456789012345678.99", "USD")).toBe(12345678901234567899n);
  });

  it("accepts numbers through their shortest string form", () => {
    expect(toMinorUnits(1.005, "USD")).toBe(101n);
  });

  it("rejects unknown currencies", () => {
    expect(() => toMinorUnits("1", "ABC")).toThrow(UnknownCurrencyError);
  });

  it("rejects unknown rounding modes", () => {
    expect(() => toMinorUnits("1", "USD", "nearest" as RoundingMode)).toThrow(TypeError);
    expect(isRoundingMode("half_even")).toBe(true);
    expect(isRoundingMode("nearest")).toBe(false);
  });
});

describe("fromMinorUnits", () => {
  it.each<[bigint, string, string]>([
    [10700n, "USD", "107.00"],
    [5n, "USD", "0.05"],
    [0n, "USD", "0.00"],
    [-1234n, "KWD", "-1.234"],
    [5n, "JPY", "5"],
    [1n, "CLF", "0.0001"],
    [12345678901234567899n, "USD", "123456789012345678.99"],
  ])("prints %s minor units of %s as %s", (minor, currency, expected) => {
    expect(fromMinorUnits(minor, currency)).toBe(expected);
  });

  it("round-trips with toMinorUnits", () => {
    expect(toMinorUnits(fromMinorUnits(-98765n, "BHD"), "BHD")).toBe(-98765n);
  });
});
