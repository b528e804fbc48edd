import { Decimal } from "decimal.js";
import { afterEach, describe, expect, it } from "vitest";
import { ExactDecimal, formatDecimal, InvalidDecimalError, isDecimalInput, parseDecimal } from "./decimal.ts";

describe("parseDecimal", () => {
  it.each([
    ["0.000002", "0.000002"],
    ["15000", "15000"],
    ["-1.50", "-1.5"],
    [".5", "0.5"],
    ["+3", "3"],
    ["1e-7", "0.0000001"],
    ["2.5E3", "2500"],
  ])("parses the string %s exactly as %s", (input, expected) => {
    expect(formatDecimal(parseDecimal(input))).toBe(expected);
  });

  it.each([
    [0.1, "0.1"],
    [0.000002, "0.000002"],
    [1e-7, "0.0000001"],
    [1e21, "1000000000000000000000"],
    [-0, "0"],
  ])("parses the number %s through its shortest string form as %s", (input, expected) => {
    expect(formatDecimal(parseDecimal(input))).toBe(expected);
  });

  it("keeps 0.1 + 0.2 exact where floats would not", () => {
    expect(formatDecimal(parseDecimal(0.1).plus(parseDecimal(0.2)))).toBe("0.3");
  });

  it.each([
    ["NaN string", "NaN"],
    ["Infinity string", "Infinity"],
    ["hexadecimal", "0x1f"],
    ["binary", "0b101"],
    ["empty", ""],
    ["whitespace", " 1"],
    ["words", "ten"],
    ["thousands separator", "1,000"],
    ["two points", "1.2.3"],
    ["too long", "1".repeat(101)],
    ["huge exponent", "1e5000"],
  ])("rejects a %s input with InvalidDecimalError", (_label, input) => {
    expect(() => parseDecimal(input)).toThrow(InvalidDecimalError);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    "rejects the number %s",
    (input) => {
      expect(() => parseDecimal(input)).toThrow(InvalidDecimalError);
    },
  );

  it("rejects values that are neither strings nor numbers", () => {
    expect(() => parseDecimal(null as unknown as string)).toThrow(InvalidDecimalError);
    expect(isDecimalInput({})).toBe(false);
    expect(isDecimalInput("1.5")).toBe(true);
  });
});

describe("formatDecimal", () => {
  it("prints plain notation without trailing zeros", () => {
    expect(formatDecimal("107.000")).toBe("107");
    expect(formatDecimal("0.000000000000000000001")).toBe("0.000000000000000000001");
    expect(formatDecimal("123456789012345678901234567890")).toBe("123456789012345678901234567890");
    expect(formatDecimal("-0.0")).toBe("0");
  });

  it("prints a Decimal from the global constructor in plain notation too", () => {
    expect(formatDecimal(new Decimal("1e-9"))).toBe("0.000000001");
  });
});

describe("ExactDecimal", () => {
  afterEach(() => {
    Decimal.set({ defaults: true });
  });

  it("ignores changes to the global Decimal configuration", () => {
    Decimal.set({ precision: 3, rounding: Decimal.ROUND_DOWN });
    const product = new ExactDecimal("0.000002").times("1234567");
    expect(formatDecimal(product)).toBe("2.469134");
  });
});
