import { formatDecimal, type PlanItem, parseDecimal, rateItem } from "@aforo/core";

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
  if (item.model === "FLAT_RATE") return "0";
  const before = parseDecimal(runningTotalBefore);
  const after = before.plus(parseDecimal(eventQuantity));
  const amountBefore = parseDecimal(rateItem(item, before.toString(), { currency }).amount_decimal);
  const amountAfter = parseDecimal(rateItem(item, after.toString(), { currency }).amount_decimal);
  return formatDecimal(amountAfter.minus(amountBefore));
}
