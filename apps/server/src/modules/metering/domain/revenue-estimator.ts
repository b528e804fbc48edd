import {
  currencyExponent,
  type DecimalInput,
  formatDecimal,
  marginalItemAmount,
  type PlanItem,
} from "@aforo/core";

/**
 * The marginal revenue of one event: what the period's charge for this item becomes with the event,
 * minus what it was before. Tiers, allowances and blocks are respected because the increment is
 * priced where it falls in the running total, not alone (an event inside the free allowance earns 0;
 * one that crosses into a cheaper tier earns that tier's price). Exact and unrounded: rounding
 * belongs to invoices.
 */
export function estimateMarginalRevenue(
  item: PlanItem,
  runningTotalBefore: DecimalInput,
  eventQuantity: DecimalInput,
  currency: string,
): string {
  currencyExponent(currency); // an unknown currency throws, as rating it would
  return formatDecimal(marginalItemAmount(item, runningTotalBefore, eventQuantity));
}
