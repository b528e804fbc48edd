import { describe, expect, it } from "vitest";
import {
  averageOf,
  canonicalDecimal,
  canUseRollups,
  parseGroupBy,
  resolveRange,
  windowsOf,
} from "./usage-query.ts";

const at = (text: string) => new Date(text);
const spans = (from: string, to: string, window: "hour" | "day" | "month" | null) =>
  windowsOf({ from: at(from), to: at(to) }, window).map((s) => [s.start.toISOString(), s.end.toISOString()]);

describe("usage query", () => {
  it("defaults from to the start of the current UTC month and to to now", () => {
    const now = at("2026-11-28T10:15:00Z");
    expect(resolveRange(undefined, undefined, now)).toEqual({ from: at("2026-11-01T00:00:00Z"), to: now });
  });

  it("refuses a range whose from is not before to with 422", () => {
    const now = at("2026-11-28T10:15:00Z");
    expect(() => resolveRange("2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z", now)).toThrow(/must be before/);
  });

  it("cuts windows in UTC and clips the first and last to the range", () => {
    expect(spans("2026-10-30T12:00:00Z", "2026-12-02T00:00:00Z", "month")).toEqual([
      ["2026-10-30T12:00:00.000Z", "2026-11-01T00:00:00.000Z"],
      ["2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z"],
      ["2026-12-01T00:00:00.000Z", "2026-12-02T00:00:00.000Z"],
    ]);
    expect(spans("2026-11-27T22:30:00Z", "2026-11-28T01:00:00Z", "day")).toEqual([
      ["2026-11-27T22:30:00.000Z", "2026-11-28T00:00:00.000Z"],
      ["2026-11-28T00:00:00.000Z", "2026-11-28T01:00:00.000Z"],
    ]);
    expect(spans("2026-11-28T00:30:00Z", "2026-11-28T02:00:00Z", "hour")).toHaveLength(2);
    expect(spans("2026-11-28T00:30:00Z", "2026-11-28T02:00:00Z", null)).toEqual([
      ["2026-11-28T00:30:00.000Z", "2026-11-28T02:00:00.000Z"],
    ]);
  });

  it("refuses more windows than an answer can hold", () => {
    expect(() => spans("2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "hour")).toThrow(/windows/);
  });

  it("reads rollups only for hour-aligned ranges, without group_by, for aggregations they can compose", () => {
    const aligned = { from: at("2026-11-01T00:00:00Z"), to: at("2026-11-28T10:00:00Z") };
    const ragged = { from: at("2026-11-01T00:00:01Z"), to: at("2026-11-28T10:00:00Z") };
    for (const aggregation of ["COUNT", "SUM", "MAX", "AVG", "LATEST"] as const) {
      expect(canUseRollups(aggregation, [], aligned)).toBe(true);
      expect(canUseRollups(aggregation, ["model"], aligned)).toBe(false);
      expect(canUseRollups(aggregation, [], ragged)).toBe(false);
    }
    expect(canUseRollups("UNIQUE", [], aligned)).toBe(false);
    expect(canUseRollups("PERCENTILE_95", [], aligned)).toBe(false);
  });

  it("parses group_by paths and refuses anything else", () => {
    expect(parseGroupBy("model, tokens.kind,model")).toEqual(["model", "tokens.kind"]);
    expect(parseGroupBy(undefined)).toEqual([]);
    for (const bad of ["a b", "a..b", "a,b,c,d,e,f", "x'); drop", ".a"]) {
      expect(() => parseGroupBy(bad), bad).toThrow();
    }
  });

  it("averages exactly, rounding once, half-up to 12 decimal places", () => {
    expect(averageOf("10", "4")).toBe("2.5");
    expect(averageOf("2", "3")).toBe("0.666666666667");
    expect(averageOf("1", "3")).toBe("0.333333333333");
    // 0.0000000000005 is exactly half a unit in the 12th place: half-up.
    expect(averageOf("0.000000000001", "2")).toBe("0.000000000001");
    expect(averageOf("0.000000000000999999999", "2")).toBe("0");
    expect(averageOf("123456789012345678901234567890.5", "1")).toBe("123456789012345678901234567890.5");
    expect(averageOf("0", "0")).toBe("0");
  });

  it("prints NUMERIC text without trailing zeros, and nothing as 0", () => {
    expect(canonicalDecimal("3.00")).toBe("3");
    expect(canonicalDecimal("0.000000100")).toBe("0.0000001");
    expect(canonicalDecimal(null)).toBe("0");
  });
});
