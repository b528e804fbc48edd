import { currencyExponent, exactItemAmount, formatDecimal, type PlanItem, parseDecimal } from "@aforo/core";

/**
 * The marginal revenue of one event: what the period's charge for this item becomes with the event,
 * minus what it was before. Tiers, allowances and blocks are respected because the whole running
 * total is rated, not the event alone (an event inside the free allowance earns 0; one that crosses
 * into a cheaper tier earns that tier's price). Exact and unrounded: rounding belongs to invoices.
 */
export function estimateMarginalRevenue(
  item: PlanItem,
  runningTotalBefore: string,
  eventQuantity: string,
  currency: string,
): string {
  return estimateWithAmounts(item, runningTotalBefore, eventQuantity, currency).marginal;
}

export interface Estimate {
  marginal: string;
  /** The period's exact charge after this event: the next event's "before", to rate once not twice. */
  totalAfter: string;
  amountAfter: string;
}

export function estimateWithAmounts(
  item: PlanItem,
  runningTotalBefore: string,
  eventQuantity: string,
  currency: string,
  known?: { total: string; amount: string },
): Estimate {
  currencyExponent(currency); // an unknown currency throws, as rating it would
  const before = parseDecimal(runningTotalBefore);
  const after = before.plus(parseDecimal(eventQuantity));
  if (item.model === "FLAT_RATE") return { marginal: "0", totalAfter: after.toString(), amountAfter: "0" };
  // The exact amounts rateItem would give, without building invoice lines (once per event).
  const amountBefore =
    known && known.total === before.toString()
      ? parseDecimal(known.amount)
      : exactItemAmount(item, before.toString());
  const amountAfter = exactItemAmount(item, after.toString());
  return {
    marginal: formatDecimal(amountAfter.minus(amountBefore)),
    totalAfter: after.toString(),
    amountAfter: amountAfter.toString(),
  };
}
