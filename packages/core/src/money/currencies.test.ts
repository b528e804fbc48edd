import { describe, expect, it } from "vitest";
import { currencyExponent, isKnownCurrency, knownCurrencies, UnknownCurrencyError } from "./currencies.ts";

describe("currencies", () => {
  it.each([
    ["USD", 2],
    ["EUR", 2],
    ["GBP", 2],
    ["JPY", 0],
    ["KRW", 0],
    ["CLP", 0],
    ["VND", 0],
    ["ISK", 0],
    ["KWD", 3],
    ["BHD", 3],
    ["OMR", 3],
    ["JOD", 3],
    ["TND", 3],
    ["LYD", 3],
    ["IQD", 3],
    ["CLF", 4],
    ["UYW", 4],
  ])("knows %s has %i minor-unit digits", (code, exponent) => {
    expect(isKnownCurrency(code)).toBe(true);
    expect(currencyExponent(code)).toBe(exponent);
  });

  it.each(["usd", "XXX", "XAU", "ABC", "", "toString", "__proto__"])("does not know %j", (code) => {
    expect(isKnownCurrency(code)).toBe(false);
    expect(() => currencyExponent(code)).toThrow(UnknownCurrencyError);
  });

  it("rejects non-string codes", () => {
    expect(isKnownCurrency(840)).toBe(false);
    expect(isKnownCurrency(undefined)).toBe(false);
  });

  it("covers the active ISO 4217 list with three-letter upper-case codes", () => {
    const codes = knownCurrencies();
    expect(codes.length).toBeGreaterThanOrEqual(150);
    for (const code of codes) expect(code).toMatch(/^[A-Z]{3}$/);
  });
});
