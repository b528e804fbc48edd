import { ExactDecimal, fromMinorUnits, parseDecimal, toMinorUnits } from "@aforo/core";
import type { AppliedPromotion, DraftLine, Period, StageResult } from "./types.ts";

export interface DiscountInput {
  lines: DraftLine[];
  currency: string;
  period: Period;
  promotion: AppliedPromotion | null;
  periodsAlreadyDiscounted: number;
}

export interface DiscountOutput {
  /** The charge lines followed by the DISCOUNT line, when there is one. */
  lines: DraftLine[];
  /** Positive: what the promotion took off (0 when none). */
  discountMinor: bigint;
  /** Per charge line (same index as in the input), its amount after its share of the discount. */
  taxableMinor: bigint[];
  promotionId: string | null;
}

/** Whether a promotion still discounts, after it has discounted `used` earlier periods. */
export function promotionApplies(promotion: AppliedPromotion, used: number): boolean {
  switch (promotion.duration) {
    case "once":
      return used === 0;
    case "repeating":
      return used < (promotion.durationInPeriods ?? 0);
    case "forever":
      return true;
  }
}

/**
 * Splits `discount` over the positive amounts in proportion, in whole minor units, the remainders
 * going to the largest fractions (ties to the earlier line): the shares always add up exactly.
 */
export function allocate(amounts: readonly bigint[], discount: bigint): bigint[] {
  const base = amounts.reduce((sum, amount) => (amount > 0n ? sum + amount : sum), 0n);
  if (base === 0n || discount === 0n) return amounts.map(() => 0n);
  const shares = amounts.map((amount) => (amount > 0n ? (discount * amount) / base : 0n));
  let left = discount - shares.reduce((sum, share) => sum + share, 0n);
  const order = amounts
    .map((amount, index) => ({ index, fraction: amount > 0n ? (discount * amount) % base : -1n }))
    .sort((a, b) => (a.fraction === b.fraction ? a.index - b.index : a.fraction > b.fraction ? -1 : 1));
  for (const { index } of order) {
    if (left === 0n) break;
    shares[index] = (shares[index] ?? 0n) + 1n;
    left -= 1n;
  }
  return shares;
}

function refuse(input: DiscountInput, note: string): StageResult<DiscountOutput> {
  return {
    output: {
      lines: input.lines,
      discountMinor: 0n,
      taxableMinor: input.lines.map((line) => line.amountMinor),
      promotionId: null,
    },
    trace: [{ stage: "discount", note, amounts: {} }],
  };
}

/**
 * Stage 7. The subscription's promotion: percent_off of the subtotal (rounded once) or amount_off
 * (at most the subtotal), for as long as its duration lasts — once: the first invoiced period;
 * repeating: `duration_in_periods` invoiced periods; forever. The discount is one negative
 * DISCOUNT line; it is shared over the charge lines in proportion so tax is computed after it.
 */
export function discount(input: DiscountInput): StageResult<DiscountOutput> {
  const promotion = input.promotion;
  if (promotion === null) return refuse(input, "no promotion");
  if (!promotionApplies(promotion, input.periodsAlreadyDiscounted)) {
    return refuse(
      input,
      `promotion ${promotion.code} (${promotion.duration}) has run out after ${input.periodsAlreadyDiscounted} discounted period(s)`,
    );
  }
  const subtotal = input.lines.reduce((sum, line) => sum + line.amountMinor, 0n);
  if (subtotal <= 0n) return refuse(input, `promotion ${promotion.code}: nothing to discount`);
  let amount: bigint;
  let how: string;
  if (promotion.percentOff !== null) {
    const exact = new ExactDecimal(fromMinorUnits(subtotal, input.currency))
      .times(parseDecimal(promotion.percentOff))
      .dividedBy(100);
    amount = toMinorUnits(exact, input.currency);
    how = `${promotion.percentOff}% of ${subtotal}`;
  } else {
    if (promotion.currency !== input.currency || promotion.amountOff === null) {
      return refuse(
        input,
        `promotion ${promotion.code} is in ${promotion.currency}, the invoice in ${input.currency}`,
      );
    }
    const off = toMinorUnits(promotion.amountOff, input.currency);
    // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigint
    amount = off > subtotal ? subtotal : off;
    how = `${promotion.amountOff} ${promotion.currency} off (at most the subtotal ${subtotal})`;
  }
  const shares = allocate(
    input.lines.map((line) => line.amountMinor),
    amount,
  );
  const line: DraftLine = {
    type: "DISCOUNT",
    description: `Promotion ${promotion.code}`,
    billableUnit: null,
    ratePlanId: null,
    model: "PROMOTION",
    quantity: "1",
    unitPrice: fromMinorUnits(-amount, input.currency),
    amountDecimal: fromMinorUnits(-amount, input.currency),
    amountMinor: -amount,
    tiers: null,
    periodStart: input.period.start,
    periodEnd: input.period.end,
  };
  return {
    output: {
      lines: amount === 0n ? input.lines : [...input.lines, line],
      discountMinor: amount,
      taxableMinor: input.lines.map((charge, index) => charge.amountMinor - (shares[index] ?? 0n)),
      promotionId: amount === 0n ? null : promotion.promotionId,
    },
    trace: [
      {
        stage: "discount",
        note: `promotion ${promotion.code}: ${how} = ${amount} (period ${input.periodsAlreadyDiscounted + 1} of its duration)`,
        amounts: { subtotal: String(subtotal), discount: String(amount) },
      },
    ],
  };
}
