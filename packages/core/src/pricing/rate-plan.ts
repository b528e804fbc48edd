import {
  currencyExponent,
  type DecimalInput,
  ExactDecimal,
  formatDecimal,
  parseDecimal,
} from "../money/index.ts";
import { InvalidPlanItemError } from "./errors.ts";
import { rateItem } from "./rate-item.ts";
import type { PlanItem, RatedLine, RatedPlan, RatePlanOptions } from "./types.ts";
import { validatePlanItems } from "./validate.ts";

function lookup(record: Record<string, DecimalInput> | undefined, key: string): DecimalInput | undefined {
  // Object.hasOwn keeps a unit named "constructor" or "__proto__" from reading the prototype.
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * Rates every item of a plan for one period. `quantities` maps billable unit keys to the period's
 * aggregated quantity; a unit with no entry rated at "0". Each line is rounded once; `total` is the
 * sum of the rounded lines, so it always equals what the invoice lines add up to.
 * Throws InvalidPlanItemError (issues with paths like "items[1].tiers[0].up_to") before rating
 * anything, so a bad plan never produces a partial result.
 */
export function ratePlan(
  items: readonly PlanItem[],
  quantities: Record<string, DecimalInput>,
  options: RatePlanOptions,
): RatedPlan {
  const issues = validatePlanItems(items);
  if (issues.length > 0) throw new InvalidPlanItemError(issues);
  currencyExponent(options.currency);

  const lines: RatedLine[] = items.map((item) => {
    const unit = item.model === "FLAT_RATE" ? undefined : item.billable_unit;
    const quantity = unit === undefined ? "1" : (lookup(quantities, unit) ?? "0");
    const rolloverIn = unit === undefined ? undefined : lookup(options.rollover_in, unit);
    return rateItem(item, quantity, {
      currency: options.currency,
      ...(options.rounding === undefined ? {} : { rounding: options.rounding }),
      ...(rolloverIn === undefined ? {} : { rollover_in: rolloverIn }),
    });
  });

  let total = 0n;
  let totalDecimal = new ExactDecimal(0);
  for (const line of lines) {
    total += line.amount;
    totalDecimal = totalDecimal.plus(parseDecimal(line.amount_decimal));
  }
  return { currency: options.currency, lines, total, total_decimal: formatDecimal(totalDecimal) };
}
