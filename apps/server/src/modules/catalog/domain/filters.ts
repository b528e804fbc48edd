import type { FieldError } from "@aforo/core";
import { Decimal } from "decimal.js";
import type { UnitFilter } from "./billable-unit.ts";

/**
 * Which events a billable unit counts. Pure: the metering engine calls `eventMatchesFilters` for
 * every event, so it must not allocate much, throw, or depend on anything but its arguments.
 *
 * Semantics (documented in the API reference; changing them changes bills):
 * - every filter must match (AND);
 * - a missing field never matches a positive operator (EQUALS, GREATER_THAN, LESS_THAN, CONTAINS,
 *   IN); each negative operator (NOT_EQUALS, NOT_CONTAINS, NOT_IN) is the exact negation of its
 *   positive one, so a missing field does match it;
 * - scalars compare by value: numbers and numeric strings numerically ("400" equals 400 and
 *   "1.50" equals 1.5), booleans with their text ("true"), null only with null;
 * - GREATER_THAN / LESS_THAN compare numerically and never match a non-numeric value;
 * - CONTAINS on a string is a case-sensitive substring test, on an array a membership test.
 */
export function eventMatchesFilters(
  filters: readonly UnitFilter[],
  properties: Readonly<Record<string, unknown>> | null | undefined,
): boolean {
  for (const filter of filters) {
    if (!filterMatches(filter, properties)) return false;
  }
  return true;
}

export function filterMatches(
  filter: UnitFilter,
  properties: Readonly<Record<string, unknown>> | null | undefined,
): boolean {
  const actual = readField(properties, filter.field);
  switch (filter.operator) {
    case "EQUALS":
      return scalarEquals(actual, filter.value);
    case "NOT_EQUALS":
      return !scalarEquals(actual, filter.value);
    case "GREATER_THAN":
      return compareNumbers(actual, filter.value) === 1;
    case "LESS_THAN":
      return compareNumbers(actual, filter.value) === -1;
    case "CONTAINS":
      return contains(actual, filter.value);
    case "NOT_CONTAINS":
      return !contains(actual, filter.value);
    case "IN":
      return isIn(actual, filter.value);
    case "NOT_IN":
      return !isIn(actual, filter.value);
    default:
      return false;
  }
}

/**
 * The value at a dotted path (`tokens.input`) in an event's properties, or undefined. A key that
 * itself contains the dots (`{"tokens.input": 5}`) wins over the nested walk, so flat senders work
 * too. Array elements are reached by index (`items.0.sku`). Only own properties are read.
 */
export function readField(
  properties: Readonly<Record<string, unknown>> | null | undefined,
  path: string,
): unknown {
  if (properties === null || properties === undefined || typeof properties !== "object") return undefined;
  if (path.length === 0) return undefined;
  if (Object.hasOwn(properties, path)) return properties[path];
  let current: unknown = properties;
  for (const segment of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(segment)) return undefined;
      current = current[Number(segment)];
    } else {
      if (!Object.hasOwn(current, segment)) return undefined;
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return current;
}

const NUMERIC = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/** A finite number, or a string that reads as one; anything else is not numeric. */
export function toDecimal(value: unknown): Decimal | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? new Decimal(value) : undefined;
  if (typeof value === "string" && NUMERIC.test(value)) return new Decimal(value.trim());
  return undefined;
}

function compareNumbers(actual: unknown, expected: unknown): number | undefined {
  const left = toDecimal(actual);
  const right = toDecimal(expected);
  if (!left || !right) return undefined;
  return left.comparedTo(right);
}

function scalarEquals(actual: unknown, expected: unknown): boolean {
  if (actual === undefined) return false;
  if (actual === null || expected === null) return actual === expected;
  if (typeof actual === "object" || typeof expected === "object") return false;
  if (actual === expected) return true;
  const left = toDecimal(actual);
  const right = toDecimal(expected);
  if (left && right) return left.equals(right);
  return String(actual) === String(expected);
}

function contains(actual: unknown, expected: unknown): boolean {
  if (typeof actual === "string") {
    if (expected === null || expected === undefined || typeof expected === "object") return false;
    return actual.includes(String(expected));
  }
  if (Array.isArray(actual)) return actual.some((element) => scalarEquals(element, expected));
  return false;
}

function isIn(actual: unknown, expected: unknown): boolean {
  if (!Array.isArray(expected)) return false;
  return expected.some((candidate) => scalarEquals(actual, candidate));
}

const FIELD_PATH = /^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$/;

/** A dotted path into `properties`: segments of letters, digits, `_`, `-`, `$` or `@`. */
export function isValidFieldPath(path: string): boolean {
  return path.length <= 200 && FIELD_PATH.test(path);
}

function isScalar(value: unknown): value is string | number | boolean | null {
  return (
    value === null ||
    typeof value === "string" ||
    typeof value === "boolean" ||
    (typeof value === "number" && Number.isFinite(value))
  );
}

/**
 * The business rules on filter values the schema cannot say: which value shape each operator
 * needs. Field paths in the answer are relative to the request body (`filters[0].value`).
 */
export function validateFilters(filters: readonly UnitFilter[], base = "filters"): FieldError[] {
  const errors: FieldError[] = [];
  filters.forEach((filter, index) => {
    const at = `${base}[${index}]`;
    if (!isValidFieldPath(filter.field)) {
      errors.push({
        field: `${at}.field`,
        message: "must be a dotted path into properties, like tokens.input",
      });
    }
    const value = filter.value;
    switch (filter.operator) {
      case "IN":
      case "NOT_IN":
        if (!Array.isArray(value)) {
          errors.push({ field: `${at}.value`, message: `${filter.operator} needs an array of values` });
        } else if (value.length === 0) {
          errors.push({ field: `${at}.value`, message: "must list at least one value" });
        } else {
          value.forEach((element, elementIndex) => {
            if (!isScalar(element)) {
              errors.push({
                field: `${at}.value[${elementIndex}]`,
                message: "must be a string, number, boolean or null",
              });
            }
          });
        }
        break;
      case "GREATER_THAN":
      case "LESS_THAN":
        if (!toDecimal(value)) {
          errors.push({
            field: `${at}.value`,
            message: `${filter.operator} needs a number or a numeric string`,
          });
        }
        break;
      case "CONTAINS":
      case "NOT_CONTAINS":
        if (!isScalar(value) || value === null) {
          errors.push({
            field: `${at}.value`,
            message: `${filter.operator} needs a string, number or boolean`,
          });
        }
        break;
      default:
        if (value === undefined) {
          errors.push({ field: `${at}.value`, message: "is required" });
        } else if (!isScalar(value)) {
          errors.push({
            field: `${at}.value`,
            message: `${filter.operator} needs a string, number, boolean or null`,
          });
        }
    }
  });
  return errors;
}
