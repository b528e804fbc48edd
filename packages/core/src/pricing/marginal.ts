import { type DecimalInput, ExactDecimal, parseDecimal } from "../money/index.ts";
import { parseQuantity } from "./quantities.ts";
import { assertValidItem, exactItemAmount } from "./rate-item.ts";
import { type ParsedTier, parseTiers } from "./tiers.ts";
import type { PlanItem } from "./types.ts";

/**
 * What `quantity` more on top of `before` adds to an item's exact period amount:
 * exactItemAmount(before + quantity) − exactItemAmount(before). Metering estimates every event's
 * revenue with it, so the common case is cheap: when every figure involved is a whole number, the
 * increment is located among the allowance, cap and tiers in integer arithmetic, and only the prices
 * of the segments it covers are multiplied (one product per segment, remembered per unit count).
 * Anything else (fractional quantities, PERCENTAGE's minimum fee, blocks, a VOLUME tier change) is
 * the plain difference of the two exact amounts. Throws what exactItemAmount throws.
 */
export function marginalItemAmount(
  item: PlanItem,
  before: DecimalInput,
  quantity: DecimalInput,
): ExactDecimal {
  assertValidItem(item);
  if (item.model === "FLAT_RATE") return ZERO;
  const from = wholeNumber(before);
  const increment = wholeNumber(quantity);
  const terms = wholeTermsOf(item);
  if (from !== null && increment !== null && terms !== null && Number.isSafeInteger(from + increment)) {
    const fast = wholeIncrementAmount(terms, from, from + increment);
    if (fast !== null) return fast;
  }
  const start = parseQuantity(before);
  const end = start.plus(parseQuantity(quantity));
  return exactItemAmount(item, end.toString()).minus(exactItemAmount(item, start.toString()));
}

const ZERO = new ExactDecimal(0);

/** A priced stretch of billable units: a tier, or the whole range for a single unit price. */
type Segment = {
  upTo: number | null;
  unitPrice: ExactDecimal;
  flatPrice: ExactDecimal | null;
  /** unitPrice × n for the unit counts met so far: events tend to repeat the same quantity. */
  products: Map<number, ExactDecimal>;
};

/** An item's allowance, cap and segments, when all of them are whole numbers. */
type WholeTerms = {
  kind: "GRADUATED" | "VOLUME" | "LINEAR";
  allowance: number;
  cap: number | null;
  segments: Segment[];
};

const wholeTerms = new WeakMap<PlanItem, WholeTerms | null>();

function wholeTermsOf(item: PlanItem): WholeTerms | null {
  let terms = wholeTerms.get(item);
  if (terms === undefined) {
    terms = parseWholeTerms(item);
    wholeTerms.set(item, terms);
  }
  return terms;
}

function parseWholeTerms(item: PlanItem): WholeTerms | null {
  if (item.model === "FLAT_RATE" || item.model === "PERCENTAGE") return null;
  if (item.model === "INCLUDED_QUOTA" && item.block_size !== undefined && item.block_size !== null)
    return null;
  const included = item.model === "INCLUDED_QUOTA" ? wholeNumber(item.included) : 0;
  const free = wholeNumber(item.included_free ?? 0);
  const cap = item.cap === undefined || item.cap === null ? null : wholeNumber(item.cap);
  if (included === null || free === null || (item.cap !== undefined && item.cap !== null && cap === null)) {
    return null;
  }
  const segments: Segment[] = [];
  if (item.model === "GRADUATED" || item.model === "VOLUME") {
    for (const tier of parseTiers(item.tiers)) {
      const upTo = tier.upTo === null ? null : wholeNumber(tier.upTo.toString());
      if (tier.upTo !== null && upTo === null) return null;
      segments.push(segmentOf(tier, upTo));
    }
  } else {
    const price = item.model === "PER_UNIT" ? item.unit_price : item.overage_price;
    segments.push(segmentOf({ upTo: null, unitPrice: parseDecimal(price), flatPrice: null }, null));
  }
  if (!withinExactDigits(segments)) return null;
  const kind = item.model === "GRADUATED" || item.model === "VOLUME" ? item.model : "LINEAR";
  return { kind, allowance: free + included, cap, segments };
}

/**
 * ExactDecimal keeps 40 significant digits. The fast path multiplies a price by a count and adds
 * flat prices; the full difference rounds each period amount on its own. They agree only while
 * nothing is rounded: a product of a price and a whole quantity below 2^53 (16 digits), and a sum
 * of a few such terms (2 more), must fit in 40 digits with the prices' decimal places. Prices with
 * more digits than that (never a real price list's) take the full difference.
 */
function withinExactDigits(segments: readonly Segment[]): boolean {
  let integerDigits = 1;
  let decimalPlaces = 0;
  for (const segment of segments) {
    for (const price of segment.flatPrice === null
      ? [segment.unitPrice]
      : [segment.unitPrice, segment.flatPrice]) {
      integerDigits = Math.max(integerDigits, price.e + 1);
      decimalPlaces = Math.max(decimalPlaces, price.decimalPlaces());
    }
  }
  return integerDigits + 16 + 2 + decimalPlaces <= 40;
}

function segmentOf(tier: ParsedTier, upTo: number | null): Segment {
  return { upTo, unitPrice: tier.unitPrice, flatPrice: tier.flatPrice, products: new Map() };
}

/** A non-negative safe integer, or null for anything else (fractions, exponents, huge values). */
function wholeNumber(input: DecimalInput): number | null {
  if (typeof input === "number") return Number.isSafeInteger(input) && input >= 0 ? input : null;
  if (!/^\d{1,15}$/.test(input)) return null;
  return Number(input);
}

function billable(terms: WholeTerms, quantity: number): number {
  const afterAllowance = Math.max(quantity - terms.allowance, 0);
  return terms.cap === null ? afterAllowance : Math.min(afterAllowance, terms.cap);
}

function product(segment: Segment, units: number): ExactDecimal {
  let amount = segment.products.get(units);
  if (amount === undefined) {
    amount = segment.unitPrice.times(units);
    if (segment.products.size >= 256) segment.products.clear();
    segment.products.set(units, amount);
  }
  return amount;
}

/** The increment's amount from whole quantities, or null where only the full difference is exact. */
function wholeIncrementAmount(terms: WholeTerms, from: number, to: number): ExactDecimal | null {
  const low = billable(terms, from);
  const high = billable(terms, to);
  if (high === low) return ZERO;
  if (terms.kind === "LINEAR") return product(terms.segments[0] as Segment, high - low);
  if (terms.kind === "VOLUME") {
    // The whole quantity is priced at the tier it reaches: linear only while it stays in one tier.
    if (low === 0) return null;
    const segment = terms.segments.find((tier) => tier.upTo === null || low <= tier.upTo);
    if (segment === undefined || (segment.upTo !== null && high > segment.upTo)) return null;
    return product(segment, high - low);
  }
  // GRADUATED: each tier (lower, upTo] the increment (low, high] overlaps adds its overlap at the
  // tier's price, and the tier's flat price if the tier held nothing before.
  let amount: ExactDecimal | null = null;
  let lower = 0;
  for (const segment of terms.segments) {
    const upper = segment.upTo ?? Number.POSITIVE_INFINITY;
    if (high <= lower) break;
    if (upper > low) {
      const charge = product(segment, Math.min(high, upper) - Math.max(low, lower));
      amount = amount === null ? charge : amount.plus(charge);
      if (segment.flatPrice !== null && low <= lower) amount = amount.plus(segment.flatPrice);
    }
    lower = upper;
  }
  return amount ?? ZERO;
}
