import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FilterOperator, UnitFilter } from "./billable-unit.ts";
import { eventMatchesFilters, filterMatches, readField, validateFilters } from "./filters.ts";

const f = (field: string, operator: FilterOperator, value: unknown): UnitFilter => ({
  field,
  operator,
  value,
});

describe("readField", () => {
  const properties = {
    status_code: 200,
    tokens: { input: 120, output: 30, nested: { deep: "yes" } },
    items: [{ sku: "a" }, { sku: "b" }],
    "flat.key": "flat",
    nothing: null,
  };

  it("reads top-level and nested dotted paths", () => {
    expect(readField(properties, "status_code")).toBe(200);
    expect(readField(properties, "tokens.input")).toBe(120);
    expect(readField(properties, "tokens.nested.deep")).toBe("yes");
    expect(readField(properties, "tokens")).toEqual(properties.tokens);
  });

  it("reads array elements by index", () => {
    expect(readField(properties, "items.1.sku")).toBe("b");
    expect(readField(properties, "items.2.sku")).toBeUndefined();
    expect(readField(properties, "items.first")).toBeUndefined();
  });

  it("prefers a key that contains the dots itself", () => {
    expect(readField(properties, "flat.key")).toBe("flat");
  });

  it("answers undefined for missing paths, paths through scalars and missing properties", () => {
    expect(readField(properties, "missing")).toBeUndefined();
    expect(readField(properties, "tokens.missing")).toBeUndefined();
    expect(readField(properties, "status_code.x")).toBeUndefined();
    expect(readField(properties, "nothing.x")).toBeUndefined();
    expect(readField(properties, "")).toBeUndefined();
    expect(readField(undefined, "a")).toBeUndefined();
    expect(readField(null, "a")).toBeUndefined();
  });

  it("keeps null as a value", () => {
    expect(readField(properties, "nothing")).toBeNull();
  });

  it("never reads inherited properties", () => {
    expect(readField({}, "constructor")).toBeUndefined();
    expect(readField({}, "toString")).toBeUndefined();
    expect(readField({ a: {} }, "a.__proto__")).toBeUndefined();
  });
});

describe("filter operators", () => {
  const event = {
    status_code: 404,
    code_text: "404",
    model: "gpt-4o-mini",
    region: "eu-west-1",
    tags: ["beta", "vip", 7],
    cached: true,
    ratio: 0.25,
    none: null,
    tokens: { input: 1500 },
  };
  const matches = (filter: UnitFilter) => filterMatches(filter, event);

  it("EQUALS compares strings exactly and is case-sensitive", () => {
    expect(matches(f("model", "EQUALS", "gpt-4o-mini"))).toBe(true);
    expect(matches(f("model", "EQUALS", "GPT-4o-mini"))).toBe(false);
  });

  it("EQUALS compares numbers and numeric strings by value", () => {
    expect(matches(f("status_code", "EQUALS", 404))).toBe(true);
    expect(matches(f("status_code", "EQUALS", "404"))).toBe(true);
    expect(matches(f("code_text", "EQUALS", 404))).toBe(true);
    expect(matches(f("ratio", "EQUALS", "0.250"))).toBe(true);
    expect(matches(f("status_code", "EQUALS", 200))).toBe(false);
  });

  it("EQUALS matches booleans by value or text, and null only with null", () => {
    expect(matches(f("cached", "EQUALS", true))).toBe(true);
    expect(matches(f("cached", "EQUALS", "true"))).toBe(true);
    expect(matches(f("cached", "EQUALS", false))).toBe(false);
    expect(matches(f("none", "EQUALS", null))).toBe(true);
    expect(matches(f("none", "EQUALS", "null"))).toBe(false);
    expect(matches(f("model", "EQUALS", null))).toBe(false);
  });

  it("EQUALS never matches an object or array value", () => {
    expect(matches(f("tokens", "EQUALS", "[object Object]"))).toBe(false);
    expect(matches(f("tags", "EQUALS", "beta"))).toBe(false);
  });

  it("NOT_EQUALS is the negation of EQUALS", () => {
    expect(matches(f("model", "NOT_EQUALS", "gpt-4o"))).toBe(true);
    expect(matches(f("status_code", "NOT_EQUALS", "404"))).toBe(false);
  });

  it("GREATER_THAN and LESS_THAN compare numerically, numeric strings included", () => {
    expect(matches(f("status_code", "GREATER_THAN", 399))).toBe(true);
    expect(matches(f("status_code", "GREATER_THAN", "399"))).toBe(true);
    expect(matches(f("status_code", "GREATER_THAN", 404))).toBe(false);
    expect(matches(f("status_code", "LESS_THAN", "400"))).toBe(false);
    expect(matches(f("code_text", "LESS_THAN", "1000"))).toBe(true);
    expect(matches(f("ratio", "LESS_THAN", 0.3))).toBe(true);
    expect(matches(f("tokens.input", "GREATER_THAN", "1e3"))).toBe(true);
  });

  it("compares numbers as numbers, not as text ('9' < '10')", () => {
    expect(filterMatches(f("n", "LESS_THAN", "10"), { n: "9" })).toBe(true);
  });

  it("compares decimals exactly", () => {
    expect(filterMatches(f("n", "GREATER_THAN", "0.3"), { n: "0.30000000000000000001" })).toBe(true);
  });

  it("GREATER_THAN and LESS_THAN never match a non-numeric value", () => {
    expect(matches(f("model", "GREATER_THAN", 1))).toBe(false);
    expect(matches(f("model", "LESS_THAN", 1))).toBe(false);
    expect(matches(f("cached", "GREATER_THAN", 0))).toBe(false);
    expect(matches(f("none", "LESS_THAN", 1))).toBe(false);
    expect(matches(f("tags", "GREATER_THAN", 0))).toBe(false);
    expect(matches(f("status_code", "GREATER_THAN", "abc"))).toBe(false);
    expect(filterMatches(f("n", "GREATER_THAN", 1), { n: "" })).toBe(false);
  });

  it("CONTAINS tests substrings of strings", () => {
    expect(matches(f("model", "CONTAINS", "4o"))).toBe(true);
    expect(matches(f("model", "CONTAINS", "claude"))).toBe(false);
    expect(matches(f("code_text", "CONTAINS", 40))).toBe(true);
  });

  it("CONTAINS tests membership of arrays", () => {
    expect(matches(f("tags", "CONTAINS", "vip"))).toBe(true);
    expect(matches(f("tags", "CONTAINS", "7"))).toBe(true);
    expect(matches(f("tags", "CONTAINS", "vi"))).toBe(false);
  });

  it("CONTAINS never matches numbers, booleans or objects", () => {
    expect(matches(f("status_code", "CONTAINS", "4"))).toBe(false);
    expect(matches(f("tokens", "CONTAINS", "input"))).toBe(false);
  });

  it("NOT_CONTAINS is the negation of CONTAINS", () => {
    expect(matches(f("model", "NOT_CONTAINS", "claude"))).toBe(true);
    expect(matches(f("tags", "NOT_CONTAINS", "beta"))).toBe(false);
  });

  it("IN matches any listed value, with the same equality as EQUALS", () => {
    expect(matches(f("region", "IN", ["us-east-1", "eu-west-1"]))).toBe(true);
    expect(matches(f("status_code", "IN", ["404", 500]))).toBe(true);
    expect(matches(f("region", "IN", ["us-east-1"]))).toBe(false);
    expect(matches(f("region", "IN", "eu-west-1"))).toBe(false);
  });

  it("NOT_IN is the negation of IN", () => {
    expect(matches(f("region", "NOT_IN", ["us-east-1"]))).toBe(true);
    expect(matches(f("status_code", "NOT_IN", [404]))).toBe(false);
  });

  it("a missing field never matches a positive operator", () => {
    const positive: [FilterOperator, unknown][] = [
      ["EQUALS", "x"],
      ["GREATER_THAN", 0],
      ["LESS_THAN", 0],
      ["CONTAINS", "x"],
      ["IN", ["x"]],
    ];
    for (const [operator, value] of positive) {
      expect(filterMatches(f("absent.path", operator, value), event), operator).toBe(false);
      expect(filterMatches(f("absent", operator, value), undefined), operator).toBe(false);
    }
  });

  it("a missing field matches the NOT_ operators", () => {
    for (const [operator, value] of [
      ["NOT_EQUALS", "x"],
      ["NOT_CONTAINS", "x"],
      ["NOT_IN", ["x"]],
    ] as [FilterOperator, unknown][]) {
      expect(filterMatches(f("absent", operator, value), event), operator).toBe(true);
    }
  });
});

describe("eventMatchesFilters", () => {
  it("matches every event when there are no filters", () => {
    expect(eventMatchesFilters([], {})).toBe(true);
    expect(eventMatchesFilters([], undefined)).toBe(true);
  });

  it("requires every filter to match", () => {
    const filters = [f("status_code", "LESS_THAN", "400"), f("method", "IN", ["GET", "POST"])];
    expect(eventMatchesFilters(filters, { status_code: 200, method: "GET" })).toBe(true);
    expect(eventMatchesFilters(filters, { status_code: 500, method: "GET" })).toBe(false);
    expect(eventMatchesFilters(filters, { status_code: 200, method: "DELETE" })).toBe(false);
    expect(eventMatchesFilters(filters, { status_code: 200 })).toBe(false);
  });

  it("reads nested paths", () => {
    expect(eventMatchesFilters([f("tokens.input", "GREATER_THAN", 0)], { tokens: { input: 5 } })).toBe(true);
  });

  it("never throws, whatever the event holds (property)", () => {
    const operators: FilterOperator[] = [
      "EQUALS",
      "NOT_EQUALS",
      "GREATER_THAN",
      "LESS_THAN",
      "CONTAINS",
      "NOT_CONTAINS",
      "IN",
      "NOT_IN",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...operators),
        fc.jsonValue(),
        fc.dictionary(fc.constantFrom("a", "b", "c"), fc.jsonValue()),
        (operator, value, properties) => {
          const result = eventMatchesFilters([f("a.b", operator, value)], properties);
          expect(typeof result).toBe("boolean");
        },
      ),
    );
  });

  it("NOT_ operators are the exact negation of their positive forms (property)", () => {
    const pairs: [FilterOperator, FilterOperator][] = [
      ["EQUALS", "NOT_EQUALS"],
      ["CONTAINS", "NOT_CONTAINS"],
      ["IN", "NOT_IN"],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...pairs),
        fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())),
        fc.option(fc.oneof(fc.string(), fc.integer(), fc.array(fc.oneof(fc.string(), fc.integer()))), {
          nil: undefined,
        }),
        ([positive, negative], value, actual) => {
          const properties = actual === undefined ? {} : { x: actual };
          expect(filterMatches(f("x", negative, value), properties)).toBe(
            !filterMatches(f("x", positive, value), properties),
          );
        },
      ),
    );
  });
});

describe("validateFilters", () => {
  it("accepts well-formed filters", () => {
    expect(
      validateFilters([
        f("status_code", "LESS_THAN", "400"),
        f("latency_ms", "GREATER_THAN", 250.5),
        f("region", "IN", ["eu", "us"]),
        f("region", "NOT_IN", ["ap"]),
        f("model", "EQUALS", "gpt"),
        f("cached", "NOT_EQUALS", true),
        f("deleted_at", "EQUALS", null),
        f("tags", "CONTAINS", "vip"),
        f("path", "NOT_CONTAINS", "/internal"),
      ]),
    ).toEqual([]);
  });

  it("requires an array for IN and NOT_IN", () => {
    expect(validateFilters([f("x", "IN", "a")])).toEqual([
      { field: "filters[0].value", message: expect.any(String) },
    ]);
    expect(validateFilters([f("x", "EQUALS", 1), f("x", "NOT_IN", 3)])).toEqual([
      { field: "filters[1].value", message: expect.any(String) },
    ]);
    expect(validateFilters([f("x", "IN", [])])).toEqual([
      { field: "filters[0].value", message: expect.any(String) },
    ]);
    expect(validateFilters([f("x", "IN", ["a", { b: 1 }])])).toEqual([
      { field: "filters[0].value[1]", message: expect.any(String) },
    ]);
  });

  it("requires a number or numeric string for GREATER_THAN and LESS_THAN", () => {
    expect(validateFilters([f("x", "GREATER_THAN", "abc")])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "LESS_THAN", [1])])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "LESS_THAN", true)])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "LESS_THAN", undefined)])[0]?.field).toBe("filters[0].value");
  });

  it("requires a scalar for EQUALS, NOT_EQUALS, CONTAINS and NOT_CONTAINS", () => {
    expect(validateFilters([f("x", "EQUALS", undefined)])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "NOT_EQUALS", { a: 1 })])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "CONTAINS", null)])[0]?.field).toBe("filters[0].value");
    expect(validateFilters([f("x", "NOT_CONTAINS", ["a"])])[0]?.field).toBe("filters[0].value");
  });

  it("refuses field paths that are not dotted identifiers", () => {
    expect(validateFilters([f("a..b", "EQUALS", 1)])[0]?.field).toBe("filters[0].field");
    expect(validateFilters([f(".a", "EQUALS", 1)])[0]?.field).toBe("filters[0].field");
    expect(validateFilters([f("a b", "EQUALS", 1)])[0]?.field).toBe("filters[0].field");
  });
});
