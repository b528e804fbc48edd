import { describe, expect, it } from "vitest";
import type { TaxContext } from "../billing/ports.ts";
import { computeTax, matchingRates, newTaxRate, normalizePercent, type TaxRate } from "./domain.ts";

const scope = { tenantId: "ten_1", mode: "test" as const };
const now = new Date("2026-01-01T00:00:00Z");
let sequence = 0;

function rate(country: string, percent: string, options: Partial<TaxRate> = {}): TaxRate {
  sequence += 1;
  return {
    ...newTaxRate(`txr_${sequence}`, scope, { name: `Tax ${sequence}`, country, percent }, now),
    ...options,
  };
}

function buyer(country: string | null, region: string | null = null, exempt = false): TaxContext {
  return { country, region, exempt, taxId: null };
}

describe("tax computation", () => {
  it("adds exclusive tax per line, rounded half up in minor units", () => {
    const nyc = rate("US", "8.875", { region: "NY", name: "NY sales tax" });
    const result = computeTax([nyc], buyer("US", "NY"), [
      { lineId: "0", amountMinor: 1000n },
      { lineId: "1", amountMinor: 400n },
    ]);
    // 10.00 × 8.875 % = 0.8875 → 0.89; 4.00 × 8.875 % = 0.355 → 0.36 (a tie, rounded up).
    expect(result.lines.map((line) => line.taxMinor)).toEqual([89n, 36n]);
    expect(result.lines[0]).toEqual({
      lineId: "0",
      name: "NY sales tax",
      jurisdiction: "US-NY",
      ratePercent: "8.875",
      inclusive: false,
      taxMinor: 89n,
    });
    expect(result.exclusiveTaxMinor).toBe(125n);
    expect(result.inclusiveTaxMinor).toBe(0n);
  });

  it("extracts inclusive tax from the amount", () => {
    const vat = rate("DE", "19", { inclusive: true, name: "MwSt" });
    const result = computeTax([vat], buyer("DE"), [
      { lineId: "a", amountMinor: 11900n },
      { lineId: "b", amountMinor: 1000n },
    ]);
    // 119.00 holds 19.00; 10.00 holds 10 − 10/1.19 = 1.5966… → 1.60.
    expect(result.lines.map((line) => line.taxMinor)).toEqual([1900n, 160n]);
    expect(result.inclusiveTaxMinor).toBe(2060n);
    expect(result.exclusiveTaxMinor).toBe(0n);
  });

  it("rounds an exact half away from zero, also for negative lines", () => {
    const half = rate("FR", "50");
    const result = computeTax([half], buyer("FR"), [
      { lineId: "0", amountMinor: 1n },
      { lineId: "1", amountMinor: -1n },
    ]);
    expect(result.lines.map((line) => line.taxMinor)).toEqual([1n, -1n]);
  });

  it("charges nothing to an exempt buyer, a buyer without country, or where no rate matches", () => {
    const vat = rate("DE", "19");
    const lines = [{ lineId: "0", amountMinor: 10000n }];
    for (const context of [buyer("DE", null, true), buyer(null), buyer("FR")]) {
      expect(computeTax([vat], context, lines)).toEqual({
        lines: [],
        exclusiveTaxMinor: 0n,
        inclusiveTaxMinor: 0n,
      });
    }
  });

  it("lets the buyer's regional rates replace the country-wide ones", () => {
    const federal = rate("CA", "5", { name: "GST" });
    const bcGst = rate("CA", "5", { region: "BC", name: "GST" });
    const bcPst = rate("CA", "7", { region: "BC", name: "PST" });
    const inactive = rate("CA", "3", { region: "BC", active: false });
    const rates = [federal, bcGst, bcPst, inactive];
    expect(matchingRates(rates, buyer("CA", "bc")).map((r) => r.name)).toEqual(["GST", "PST"]);
    expect(matchingRates(rates, buyer("CA", "ON"))).toEqual([federal]);
    expect(matchingRates(rates, buyer("CA"))).toEqual([federal]);
    const result = computeTax(rates, buyer("CA", "BC"), [{ lineId: "0", amountMinor: 10000n }]);
    expect(result.exclusiveTaxMinor).toBe(1200n);
    expect(result.lines.map((line) => line.jurisdiction)).toEqual(["CA-BC", "CA-BC"]);
  });

  it("applies every rate of a level to the net amount, without compounding", () => {
    const inclusiveA = rate("XX", "10", { inclusive: true });
    const inclusiveB = rate("XX", "10", { inclusive: true });
    // 120.00 = net 100.00 + 10.00 + 10.00.
    const result = computeTax([inclusiveA, inclusiveB], buyer("XX"), [{ lineId: "0", amountMinor: 12000n }]);
    expect(result.lines.map((line) => line.taxMinor)).toEqual([1000n, 1000n]);
  });

  it("accepts percents from 0 to 100 with up to six decimals", () => {
    expect(normalizePercent("19.000")).toBe("19");
    expect(normalizePercent(8.875)).toBe("8.875");
    expect(normalizePercent("0")).toBe("0");
    for (const bad of ["-1", "100.01", "1.0000001"]) {
      expect(() => normalizePercent(bad)).toThrow(expect.objectContaining({ status: 422 }));
    }
  });
});
