import { describe, expect, it } from "vitest";
import { checkAggregationField, frozenFieldsChanged, isValidUnitKey } from "./billable-unit.ts";

describe("billable unit keys", () => {
  it("accepts lower-case keys with digits, '_', '.' and '-'", () => {
    for (const key of ["api_calls", "tokens.input", "a", "x-1", `a${"b".repeat(63)}`]) {
      expect(isValidUnitKey(key), key).toBe(true);
    }
  });

  it("refuses upper case, a leading digit, spaces, over 64 characters and the bu_ id prefix", () => {
    for (const key of ["Api", "1calls", "api calls", "", `a${"b".repeat(64)}`, "bu_01abc"]) {
      expect(isValidUnitKey(key), key).toBe(false);
    }
  });
});

describe("aggregation and field", () => {
  it("requires a field for UNIQUE only", () => {
    expect(checkAggregationField("UNIQUE", null)).toEqual([{ field: "field", message: expect.any(String) }]);
    expect(checkAggregationField("UNIQUE", "agent_id")).toEqual([]);
    for (const aggregation of ["COUNT", "SUM", "MAX", "AVG", "LATEST", "PERCENTILE_95"] as const) {
      expect(checkAggregationField(aggregation, null)).toEqual([]);
    }
  });
});

describe("frozen definition", () => {
  const used = { aggregation: "SUM" as const, field: "bytes", firstUsedAt: new Date("2025-01-01T00:00:00Z") };

  it("lets an unused unit change anything", () => {
    expect(frozenFieldsChanged({ ...used, firstUsedAt: null }, { aggregation: "MAX", field: null })).toEqual(
      [],
    );
  });

  it("names the aggregation and the field when a used unit would change them", () => {
    expect(frozenFieldsChanged(used, { aggregation: "MAX" })).toEqual(["aggregation"]);
    expect(frozenFieldsChanged(used, { field: null })).toEqual(["field"]);
    expect(frozenFieldsChanged(used, { aggregation: "COUNT", field: "other" })).toEqual([
      "aggregation",
      "field",
    ]);
  });

  it("accepts a used unit's current values repeated", () => {
    expect(frozenFieldsChanged(used, { aggregation: "SUM", field: "bytes" })).toEqual([]);
    expect(frozenFieldsChanged(used, {})).toEqual([]);
  });
});
