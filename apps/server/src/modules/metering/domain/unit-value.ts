import { AforoError, parseDecimal } from "@aforo/core";
import type { BillableUnit } from "../../catalog/domain/billable-unit.ts";
import { readField } from "../../catalog/domain/filters.ts";

export interface UnitValue {
  /** The number the unit aggregates; null for COUNT (each event counts once) and UNIQUE. */
  value: string | null;
  /** UNIQUE: the distinct value, as text. */
  uniqueValue: string | null;
}

/**
 * What an event contributes to its unit: `properties[field]` when the unit names a field, else
 * `quantity` (API.md, Aggregations). A missing or non-numeric value is the sender's error (422),
 * never silently a zero.
 */
export function unitValueOf(
  unit: BillableUnit,
  quantity: string,
  properties: Record<string, unknown>,
): UnitValue {
  if (unit.aggregation === "COUNT") return { value: null, uniqueValue: null };
  const raw = unit.field ? readField(properties, unit.field) : quantity;
  const field = unit.field ? `properties.${unit.field}` : "quantity";
  if (unit.aggregation === "UNIQUE") {
    if (raw === undefined || raw === null || typeof raw === "object") {
      throw invalidValue(field, `must be present as a string or number for the UNIQUE unit '${unit.key}'`);
    }
    return { value: null, uniqueValue: String(raw) };
  }
  if (raw === undefined || raw === null)
    throw invalidValue(field, `is required by the ${unit.aggregation} unit '${unit.key}'`);
  if (typeof raw !== "string" && typeof raw !== "number") throw invalidValue(field, "must be a number");
  try {
    return { value: parseDecimal(raw).toString(), uniqueValue: null };
  } catch {
    throw invalidValue(field, "must be a number");
  }
}

function invalidValue(field: string, message: string): AforoError {
  return new AforoError("unprocessable-entity", `The event's ${field} ${message}.`, {
    errors: [{ field, message }],
  });
}
