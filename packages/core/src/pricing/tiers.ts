import { ExactDecimal, formatDecimal, parseDecimal } from "../money/index.ts";
import type { PriceTier, RatedTier } from "./types.ts";

export type ParsedTier = {
  upTo: ExactDecimal | null;
  unitPrice: ExactDecimal;
  flatPrice: ExactDecimal | null;
};

export type TieredCharge = {
  amount: ExactDecimal;
  tiers: RatedTier[];
  explanation: string;
};

/**
 * Parsed tiers per tiers array. A stored plan's items are never changed (versions are immutable, as
 * rate-item.ts's validation cache also assumes), and metering rates the same tiers for every event.
 */
const parsedTiers = new WeakMap<readonly PriceTier[], ParsedTier[]>();

export function parseTiers(tiers: readonly PriceTier[]): ParsedTier[] {
  let parsed = parsedTiers.get(tiers);
  if (!parsed) {
    parsed = parseTierList(tiers);
    parsedTiers.set(tiers, parsed);
  }
  return parsed;
}

function parseTierList(tiers: readonly PriceTier[]): ParsedTier[] {
  return tiers.map((tier) => ({
    upTo: tier.up_to === null || tier.up_to === undefined ? null : parseDecimal(tier.up_to),
    unitPrice: parseDecimal(tier.unit_price),
    flatPrice:
      tier.flat_price === undefined || tier.flat_price === null ? null : parseDecimal(tier.flat_price),
  }));
}

function describeTier(tier: ParsedTier, quantity: ExactDecimal, amount: ExactDecimal): RatedTier {
  const rated: RatedTier = {
    up_to: tier.upTo === null ? null : formatDecimal(tier.upTo),
    quantity: formatDecimal(quantity),
    unit_price: formatDecimal(tier.unitPrice),
    amount_decimal: formatDecimal(amount),
  };
  if (tier.flatPrice !== null) rated.flat_price = formatDecimal(tier.flatPrice);
  return rated;
}

function tierCharge(tier: ParsedTier, quantity: ExactDecimal): ExactDecimal {
  if (quantity.isZero()) return new ExactDecimal(0);
  const usage = quantity.times(tier.unitPrice);
  return tier.flatPrice === null ? usage : usage.plus(tier.flatPrice);
}

function termText(tier: ParsedTier, quantity: ExactDecimal): string {
  const usage = `${formatDecimal(quantity)} × ${formatDecimal(tier.unitPrice)}`;
  return tier.flatPrice === null ? usage : `${usage} + ${formatDecimal(tier.flatPrice)}`;
}

/**
 * GRADUATED: each tier prices the units that fall inside it. Tier i holds the quantity in
 * (previous up_to, up_to], so with "≤1,000 @ 0.010, ≤10,000 @ 0.008, rest @ 0.005", 15,000 units are
 * 1,000 + 9,000 + 5,000 → 10 + 72 + 25 = 107. A tier's flat price is charged once if it holds any.
 */
export function rateGraduated(tiers: readonly PriceTier[], quantity: ExactDecimal): TieredCharge {
  let lowerBound = new ExactDecimal(0);
  let amount = new ExactDecimal(0);
  const rated: RatedTier[] = [];
  const terms: string[] = [];
  for (const tier of parseTiers(tiers)) {
    const ceiling = tier.upTo === null ? quantity : ExactDecimal.min(quantity, tier.upTo);
    const inTier = ExactDecimal.max(ceiling.minus(lowerBound), 0);
    const charge = tierCharge(tier, inTier);
    amount = amount.plus(charge);
    rated.push(describeTier(tier, inTier, charge));
    if (!inTier.isZero()) terms.push(termText(tier, inTier));
    if (tier.upTo !== null) lowerBound = tier.upTo;
  }
  return {
    amount,
    tiers: rated,
    explanation: terms.length === 0 ? "no billable quantity" : terms.join(" + "),
  };
}

/** GRADUATED's exact amount alone, as rateGraduated computes it, without describing the tiers. */
export function graduatedAmount(tiers: readonly PriceTier[], quantity: ExactDecimal): ExactDecimal {
  let lowerBound = new ExactDecimal(0);
  let amount = new ExactDecimal(0);
  for (const tier of parseTiers(tiers)) {
    const ceiling = tier.upTo === null ? quantity : ExactDecimal.min(quantity, tier.upTo);
    const inTier = ExactDecimal.max(ceiling.minus(lowerBound), 0);
    if (!inTier.isZero()) amount = amount.plus(tierCharge(tier, inTier));
    if (tier.upTo !== null) lowerBound = tier.upTo;
    if (tier.upTo !== null && quantity.lessThanOrEqualTo(tier.upTo)) break;
  }
  return amount;
}

/**
 * VOLUME: the whole quantity at the price (and flat price) of the first tier whose up_to it does not
 * exceed. At 15,000 units the example plan reaches the unbounded tier: 15,000 × 0.005 = 75.
 * A quantity of zero is charged nothing, flat prices included, as in GRADUATED.
 */
export function rateVolume(tiers: readonly PriceTier[], quantity: ExactDecimal): TieredCharge {
  const parsed = parseTiers(tiers);
  const reachedIndex = parsed.findIndex(
    (tier) => tier.upTo === null || quantity.lessThanOrEqualTo(tier.upTo),
  );
  // Validation guarantees an unbounded last tier; the fallback keeps the function total anyway.
  const reached = reachedIndex === -1 ? parsed.length - 1 : reachedIndex;
  let amount = new ExactDecimal(0);
  let explanation = "no billable quantity";
  const rated = parsed.map((tier, index) => {
    if (index !== reached) return describeTier(tier, new ExactDecimal(0), new ExactDecimal(0));
    amount = tierCharge(tier, quantity);
    if (!quantity.isZero()) explanation = `${termText(tier, quantity)} (tier ${index + 1})`;
    return describeTier(tier, quantity, amount);
  });
  return { amount, tiers: rated, explanation };
}
