import {
  currencyExponent,
  type DecimalInput,
  defaultRoundingMode,
  ExactDecimal,
  formatDecimal,
  isRoundingMode,
  parseDecimal,
  type RoundingMode,
  toMinorUnits,
} from "../money/index.ts";
import { InvalidPlanItemError } from "./errors.ts";
import { parseQuantity } from "./quantities.ts";
import { graduatedAmount, rateGraduated, rateVolume } from "./tiers.ts";
import type { PlanItem, RatedLine, RatedTier, RateItemOptions, UsageItem } from "./types.ts";
import { validatePlanItem } from "./validate.ts";

type Charge = {
  amount: ExactDecimal;
  unitPrice?: ExactDecimal;
  tiers?: RatedTier[];
  explanation: string;
};

function optionalDecimal(value: DecimalInput | undefined | null): ExactDecimal | null {
  return value === undefined || value === null ? null : parseDecimal(value);
}

/** Prices the billable quantity (allowance and cap already applied) by the item's model. */
function chargeFor(item: UsageItem, billable: ExactDecimal): Charge {
  switch (item.model) {
    case "PER_UNIT": {
      const unitPrice = parseDecimal(item.unit_price);
      return {
        amount: billable.times(unitPrice),
        unitPrice,
        explanation: `${formatDecimal(billable)} × ${formatDecimal(unitPrice)}`,
      };
    }
    case "PERCENTAGE": {
      const percent = parseDecimal(item.percent);
      const minimumFee = optionalDecimal(item.min_fee) ?? new ExactDecimal(0);
      const share = billable.times(percent).dividedBy(100);
      const text = `${formatDecimal(percent)}% of ${formatDecimal(billable)}`;
      return {
        amount: ExactDecimal.max(share, minimumFee),
        explanation: share.lessThan(minimumFee) ? `minimum fee ${formatDecimal(minimumFee)} (${text})` : text,
      };
    }
    case "INCLUDED_QUOTA": {
      const overagePrice = parseDecimal(item.overage_price);
      const blockSize = optionalDecimal(item.block_size);
      if (blockSize === null) {
        return {
          amount: billable.times(overagePrice),
          unitPrice: overagePrice,
          explanation: `${formatDecimal(billable)} over quota × ${formatDecimal(overagePrice)}`,
        };
      }
      // Partial blocks round up: 2,001 over with blocks of 1,000 is 3 blocks. Integer division and
      // remainder are exact in decimal.js, unlike a division that could round at the 40th digit.
      const wholeBlocks = billable.dividedToIntegerBy(blockSize);
      const blocks = billable.modulo(blockSize).isZero() ? wholeBlocks : wholeBlocks.plus(1);
      return {
        amount: blocks.times(overagePrice),
        unitPrice: overagePrice,
        explanation: `${formatDecimal(billable)} over quota = ${formatDecimal(blocks)} block(s) of ${formatDecimal(blockSize)} × ${formatDecimal(overagePrice)}`,
      };
    }
    case "GRADUATED":
      return rateGraduated(item.tiers, billable);
    case "VOLUME":
      return rateVolume(item.tiers, billable);
  }
}

/** The quantity the model prices: min(max(quantity − allowance, 0), cap). */
function billableOf(item: UsageItem, used: ExactDecimal, rolloverIn: DecimalInput | undefined) {
  let allowance = parseQuantity(item.included_free ?? "0", "included_free");
  if (item.model === "INCLUDED_QUOTA") allowance = allowance.plus(parseDecimal(item.included));
  allowance = allowance.plus(parseQuantity(rolloverIn ?? "0", "rollover_in"));
  const afterAllowance = ExactDecimal.max(used.minus(allowance), 0);
  const cap = optionalDecimal(item.cap);
  const billable = cap === null ? afterAllowance : ExactDecimal.min(afterAllowance, cap);
  return { allowance, afterAllowance, cap, billable };
}

/**
 * The exact, unrounded amount `rateItem` gives for `quantity` (its `amount_decimal`), without
 * building the line: what metering's revenue estimate needs for every event. Same validation,
 * allowance, cap and model rules; GRADUATED skips the tier descriptions.
 */
export function exactItemAmount(item: PlanItem, quantity: DecimalInput): ExactDecimal {
  assertValidItem(item);
  if (item.model === "FLAT_RATE") return parseDecimal(item.flat_amount);
  const { billable } = billableOf(item, parseQuantity(quantity), undefined);
  if (item.model === "GRADUATED") return graduatedAmount(item.tiers, billable);
  return chargeFor(item, billable).amount;
}

/** Throws InvalidPlanItemError unless the item is valid; each item object is checked once. */
export function assertValidItem(item: PlanItem): void {
  if (validItems.has(item)) return;
  const issues = validatePlanItem(item);
  if (issues.length > 0) throw new InvalidPlanItemError(issues);
  validItems.add(item);
}

/**
 * Items already found valid. Stored plan items are never mutated (versions are immutable), so the
 * metering hot path, which rates the same item for every event, validates it once. An item object
 * must not be changed after it has been rated.
 */
const validItems = new WeakSet<object>();

function resolveRounding(rounding: RoundingMode | undefined): RoundingMode {
  const mode = rounding ?? defaultRoundingMode;
  if (!isRoundingMode(mode)) throw new RangeError(`unknown rounding mode ${JSON.stringify(mode)}`);
  return mode;
}

/**
 * Rates one plan item for one period's quantity. Pure: no I/O, no clock. The exact amount is
 * rounded once, to the currency's minor unit with `options.rounding` (half_up by default).
 *
 * Usage items: billable = min(max(quantity − allowance, 0), cap), where the allowance is
 * included_free + `included` (INCLUDED_QUOTA) + options.rollover_in. The model prices the billable
 * quantity; PERCENTAGE's min_fee applies even when nothing is billable.
 * FLAT_RATE ignores the quantity and is charged once (quantity "1").
 *
 * Throws InvalidPlanItemError, InvalidQuantityError or UnknownCurrencyError.
 */
export function rateItem(item: PlanItem, quantity: DecimalInput, options: RateItemOptions): RatedLine {
  assertValidItem(item);
  currencyExponent(options.currency);
  const rounding = resolveRounding(options.rounding);

  if (item.model === "FLAT_RATE") {
    const flatAmount = parseDecimal(item.flat_amount);
    return {
      billable_unit: null,
      model: item.model,
      quantity: "1",
      billable_quantity: "1",
      unit_price: formatDecimal(flatAmount),
      amount_decimal: formatDecimal(flatAmount),
      amount: toMinorUnits(flatAmount, options.currency, rounding),
      timing: item.timing,
      explanation: `flat ${formatDecimal(flatAmount)} ${item.timing === "in_advance" ? "in advance" : "in arrears"}`,
    };
  }

  const used = parseQuantity(quantity);
  const { allowance, afterAllowance, cap, billable } = billableOf(item, used, options.rollover_in);
  const charge = chargeFor(item, billable);
  const line: RatedLine = {
    billable_unit: item.billable_unit,
    model: item.model,
    quantity: formatDecimal(used),
    billable_quantity: formatDecimal(billable),
    amount_decimal: formatDecimal(charge.amount),
    amount: toMinorUnits(charge.amount, options.currency, rounding),
    explanation: charge.explanation,
  };
  if (!allowance.isZero()) line.included_quantity = formatDecimal(allowance);
  if (cap !== null) line.over_cap_quantity = formatDecimal(afterAllowance.minus(billable));
  if (charge.unitPrice !== undefined) line.unit_price = formatDecimal(charge.unitPrice);
  if (charge.tiers !== undefined) line.tiers = charge.tiers;
  return line;
}
