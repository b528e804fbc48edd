import {
  AforoError,
  applyCommitment,
  applyMaximumSpend,
  type DecimalInput,
  formatDecimal,
  fromMinorUnits,
  isDecimalInput,
  type PricingModel,
  parseDecimal,
  type RatedLine,
  type RatedTier,
  ratePlan,
  toMinorUnits,
  type ValidationIssue,
} from "@aforo/core";
import type { RatePlanDefinition, StoredPlanItem } from "./rate-plan.ts";

/**
 * Plan-level adjustments appear as lines of their own so the usage lines stay as rated:
 * `MINIMUM_COMMITMENT` (positive true-up to the minimum) and `MAXIMUM_SPEND` (negative, down to the
 * maximum). Both have `billable_unit: null` and `quantity: "1"`.
 */
export type PreviewModel = PricingModel | "MINIMUM_COMMITMENT" | "MAXIMUM_SPEND";

export interface PreviewLine {
  billable_unit: string | null;
  billable_unit_id: string | null;
  model: PreviewModel;
  quantity: string;
  billable_quantity: string;
  included_quantity?: string;
  over_cap_quantity?: string;
  unit_price?: string;
  amount_decimal: string;
  /** Whole minor units of the plan currency, rounded once by the plan's rounding mode. */
  amount: number;
  tiers?: RatedTier[];
  timing?: "in_advance" | "in_arrears";
  description: string;
}

export interface PricePreview {
  currency: string;
  lines: PreviewLine[];
  /** Sum of the lines' `amount`, in minor units. */
  total: number;
}

export type PreviewablePlan = Pick<
  RatePlanDefinition,
  "currency" | "items" | "rounding" | "minimum_commitment" | "maximum_spend"
>;

/** Minor units leave the engine as bigint; JSON carries them as integers, which must stay exact. */
export function minorUnitsToJson(amount: bigint): number {
  const value = Number(amount);
  if (!Number.isSafeInteger(value)) throw new RangeError(`amount ${amount} exceeds JSON's exact integers`);
  return value;
}

/**
 * Keys the quantities by unit key, accepting a unit's id in place of its key. A name the plan does
 * not price, or a negative or malformed quantity, is a 422 naming `quantities.<name>`.
 */
export function quantitiesByKey(
  items: readonly StoredPlanItem[],
  quantities: Record<string, DecimalInput>,
): Record<string, DecimalInput> {
  const keyOf = new Map<string, string>();
  for (const item of items) {
    if (item.model === "FLAT_RATE" || !item.billable_unit) continue;
    keyOf.set(item.billable_unit, item.billable_unit);
    if (item.billable_unit_id) keyOf.set(item.billable_unit_id, item.billable_unit);
  }
  const issues: ValidationIssue[] = [];
  const byKey: Record<string, DecimalInput> = {};
  for (const [name, quantity] of Object.entries(quantities)) {
    const field = `quantities.${name}`;
    const key = keyOf.get(name);
    if (key === undefined) {
      issues.push({ field, message: `'${name}' is not a billable unit this plan prices` });
    } else if (!isDecimalInput(quantity) || parseDecimal(quantity).isNegative()) {
      issues.push({ field, message: "must be a non-negative decimal" });
    } else {
      byKey[key] = quantity;
    }
  }
  if (issues.length > 0)
    throw new AforoError("unprocessable-entity", "The quantities cannot be rated.", { errors: issues });
  return byKey;
}

function adjustmentLine(
  model: "MINIMUM_COMMITMENT" | "MAXIMUM_SPEND",
  amount: bigint,
  currency: string,
  description: string,
): PreviewLine {
  const decimal = formatDecimal(fromMinorUnits(amount, currency));
  return {
    billable_unit: null,
    billable_unit_id: null,
    model,
    quantity: "1",
    billable_quantity: "1",
    amount_decimal: decimal,
    amount: minorUnitsToJson(amount),
    description,
  };
}

/** VOLUME prices the whole quantity at one tier's price: show it as the line's unit price. */
function unitPriceOf(line: RatedLine): string | undefined {
  if (line.unit_price !== undefined || line.model !== "VOLUME") return line.unit_price;
  return (line.tiers?.find((tier) => tier.quantity !== "0") ?? line.tiers?.[0])?.unit_price;
}

/**
 * Rates a plan for one period with the real engine (the same code the bill run uses), then applies
 * the minimum commitment and the maximum spend as extra lines.
 */
export function previewRatePlan(
  plan: PreviewablePlan,
  quantities: Record<string, DecimalInput>,
): PricePreview {
  const byKey = quantitiesByKey(plan.items, quantities);
  const unitIdOf = new Map(
    plan.items.map((item) => [item.billable_unit ?? "", item.billable_unit_id ?? null]),
  );
  const rated = ratePlan(plan.items, byKey, { currency: plan.currency, rounding: plan.rounding });
  const lines: PreviewLine[] = rated.lines.map((line) => ({
    billable_unit: line.billable_unit,
    billable_unit_id: line.billable_unit === null ? null : (unitIdOf.get(line.billable_unit) ?? null),
    model: line.model,
    quantity: line.quantity,
    billable_quantity: line.billable_quantity,
    ...(line.included_quantity === undefined ? {} : { included_quantity: line.included_quantity }),
    ...(line.over_cap_quantity === undefined ? {} : { over_cap_quantity: line.over_cap_quantity }),
    ...(unitPriceOf(line) === undefined ? {} : { unit_price: unitPriceOf(line) }),
    amount_decimal: line.amount_decimal,
    amount: minorUnitsToJson(line.amount),
    ...(line.tiers === undefined ? {} : { tiers: line.tiers }),
    ...(line.timing === undefined ? {} : { timing: line.timing }),
    description: line.explanation,
  }));
  let total = rated.total;
  if (plan.minimum_commitment !== null) {
    const minimum = toMinorUnits(plan.minimum_commitment, plan.currency, plan.rounding);
    const trueUp = applyCommitment(total, minimum);
    if (trueUp > 0n) {
      lines.push(
        adjustmentLine(
          "MINIMUM_COMMITMENT",
          trueUp,
          plan.currency,
          `minimum commitment ${plan.minimum_commitment} ${plan.currency}`,
        ),
      );
      total += trueUp;
    }
  }
  if (plan.maximum_spend !== null) {
    const maximum = toMinorUnits(plan.maximum_spend, plan.currency, plan.rounding);
    const reduction = applyMaximumSpend(total, maximum);
    if (reduction < 0n) {
      lines.push(
        adjustmentLine(
          "MAXIMUM_SPEND",
          reduction,
          plan.currency,
          `maximum spend ${plan.maximum_spend} ${plan.currency}`,
        ),
      );
      total += reduction;
    }
  }
  return { currency: plan.currency, lines, total: minorUnitsToJson(total) };
}
