import { aggregate } from "./aggregate.ts";
import { rate } from "./rate.ts";
import { rollover } from "./rollover.ts";
import { type DraftLine, type Period, type PricedPlan, type UsageReading, usageItemsOf } from "./types.ts";

export interface UsageChargeInput {
  currency: string;
  period: Period;
  /** False in a trial period: usage is not charged. */
  chargeUsage: boolean;
  plans: PricedPlan[];
  usage: UsageReading[];
  carryIn: Record<string, string>;
}

/**
 * The period's usage charge so far, in whole minor units: the USAGE_FEE lines the invoice's own
 * rollover → aggregate → rate stages make of the same usage, each rounded once by its plan. Prepaid
 * wallets are debited the change in it as usage is metered (ADR 0015), so the metered debits add
 * up to exactly the invoice's usage lines: no per-event rounding, no lost or doubled cent.
 */
export function usageCharge(input: UsageChargeInput): { amountMinor: bigint; lines: DraftLine[] } {
  const items = usageItemsOf(input.plans);
  const rolled = rollover({
    items,
    usage: input.usage,
    carryIn: input.carryIn,
    chargeUsage: input.chargeUsage,
  });
  const aggregated = aggregate({ items, usage: input.usage });
  const rated = rate({
    plans: input.plans,
    currency: input.currency,
    period: input.period,
    advancePeriods: [],
    chargeUsage: input.chargeUsage,
    quantities: aggregated.output.quantities,
    rolloverIn: rolled.output.rolloverIn,
  });
  const lines = rated.output.lines.filter((line) => line.type === "USAGE_FEE");
  const amountMinor = lines.reduce((sum, line) => sum + line.amountMinor, 0n);
  return { amountMinor: amountMinor > 0n ? amountMinor : 0n, lines };
}
