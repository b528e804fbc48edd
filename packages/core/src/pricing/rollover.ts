import { type DecimalInput, ExactDecimal, formatDecimal } from "../money/index.ts";
import { parseQuantity } from "./quantities.ts";
import type { PlanItem } from "./types.ts";

export type RolloverInput = {
  /** This period's own included allowance (included_free, plus `included` for INCLUDED_QUOTA). */
  included: DecimalInput;
  /** Usage in this period. */
  used: DecimalInput;
  /** Allowance carried into this period from the previous one. */
  previous_carry_over?: DecimalInput;
  /** The item's `rollover.max`. */
  max: DecimalInput;
};

/**
 * The allowance to carry into the next period. Carried-over allowance is used first and expires at
 * the end of the period it was carried into, so allowance rolls over once and never snowballs (the
 * way telecom rollover data works); only this period's unused included allowance carries, up to max.
 * Example: included 1,000, carried in 300, used 500 → 300 comes from the carry-over, 200 from this
 * period's allowance, 800 unused → min(800, max).
 */
export function computeRollover(input: RolloverInput): string {
  const included = parseQuantity(input.included, "included");
  const used = parseQuantity(input.used, "used");
  const carriedIn = parseQuantity(input.previous_carry_over ?? "0", "previous_carry_over");
  const max = parseQuantity(input.max, "max");
  const usedFromIncluded = ExactDecimal.max(used.minus(carriedIn), 0);
  const unused = ExactDecimal.max(included.minus(usedFromIncluded), 0);
  return formatDecimal(ExactDecimal.min(unused, max));
}

/** The item's own per-period allowance: included_free, plus `included` for INCLUDED_QUOTA. */
export function includedAllowance(item: PlanItem): string {
  if (item.model === "FLAT_RATE") return "0";
  let allowance = parseQuantity(item.included_free ?? "0", "included_free");
  if (item.model === "INCLUDED_QUOTA") allowance = allowance.plus(parseQuantity(item.included, "included"));
  return formatDecimal(allowance);
}
