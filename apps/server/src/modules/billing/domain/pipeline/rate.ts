import { type RatedLine, rateItem } from "@aforo/core";
import { localDay } from "../../../subscriptions/domain/period.ts";
import type { TraceEntry } from "../invoice.ts";
import { type DraftLine, lookup, type Period, type PricedPlan, type StageResult } from "./types.ts";

export interface RateInput {
  plans: PricedPlan[];
  /** The plans pinned at the period's start when they changed inside it: its own flat fees are theirs. */
  openingPlans?: PricedPlan[] | undefined;
  currency: string;
  period: Period;
  advancePeriods: Period[];
  chargeUsage: boolean;
  quantities: Record<string, string>;
  rolloverIn: Record<string, string>;
  timeZone?: string | undefined;
}

export interface RateOutput {
  lines: DraftLine[];
}

/** "2026-03-01 – 2026-04-01": the period's first and end dates on the zone's calendar. */
export function describePeriod(period: Period, timeZone?: string): string {
  return `${localDay(period.start, timeZone)} – ${localDay(period.end, timeZone)}`;
}

/** VOLUME prices the whole quantity at one tier's price: show it as the line's unit price. */
function unitPriceOf(line: RatedLine): string | null {
  if (line.unit_price !== undefined) return line.unit_price;
  if (line.model !== "VOLUME") return null;
  return (line.tiers?.find((tier) => tier.quantity !== "0") ?? line.tiers?.[0])?.unit_price ?? null;
}

function toDraft(plan: PricedPlan, line: RatedLine, period: Period, description: string): DraftLine {
  return {
    type: line.model === "FLAT_RATE" ? "CHARGE" : "USAGE_FEE",
    description,
    billableUnit: line.billable_unit,
    ratePlanId: plan.ratePlanId,
    model: line.model,
    quantity: line.model === "FLAT_RATE" ? "1" : line.billable_quantity,
    unitPrice: unitPriceOf(line),
    amountDecimal: line.amount_decimal,
    amountMinor: line.amount,
    tiers: line.tiers ?? null,
    periodStart: period.start,
    periodEnd: period.end,
  };
}

/**
 * Stage 5. Rates every item of every pinned plan version with the engine (rateItem: allowance,
 * rollover and cap applied, the exact amount rounded once by the plan's rounding).
 * - Usage items → USAGE_FEE lines for the invoiced period; the line's quantity is the billable
 *   quantity (after allowance and cap), the trace keeps the metered one.
 * - FLAT_RATE in_arrears → a CHARGE for the invoiced period (it has been used).
 * - FLAT_RATE in_advance → a CHARGE for each period in `advancePeriods`: the invoice that closes a
 *   period opens the next one, so the fee is paid before its period is used. The first paid
 *   period of a subscription is charged on its own invoice (no earlier invoice opened it).
 * A trial period (chargeUsage false) charges only what it opens in advance.
 */
export function rate(input: RateInput): StageResult<RateOutput> {
  const lines: DraftLine[] = [];
  const trace: TraceEntry[] = [];
  const opening = input.openingPlans;
  const isInvoiced = (period: Period) => period.start.getTime() === input.period.start.getTime();
  const flatLines = (plan: PricedPlan, item: FlatItem, periods: Period[]) => {
    const rated = rateItem(item, "1", { currency: plan.currency, rounding: plan.rounding });
    for (const period of periods) {
      const timing = item.timing === "in_advance" ? "in advance" : "in arrears";
      const description = `${plan.name} (${timing}, ${describePeriod(period, input.timeZone)})`;
      lines.push(toDraft(plan, rated, period, description));
      trace.push({
        stage: "rate",
        note: `${description}: ${rated.explanation}`,
        amounts: { amount: String(rated.amount) },
      });
    }
  };
  for (const plan of input.plans) {
    for (const item of plan.items) {
      if (item.model === "FLAT_RATE") {
        const periods = flatPeriods(input, item.timing);
        flatLines(plan, item, opening ? periods.filter((period) => !isInvoiced(period)) : periods);
        continue;
      }
      if (!input.chargeUsage) continue;
      const unit = item.billable_unit;
      const carried = lookup(input.rolloverIn, unit);
      const rated = rateItem(item, lookup(input.quantities, unit) ?? "0", {
        currency: plan.currency,
        rounding: plan.rounding,
        ...(carried === undefined ? {} : { rollover_in: carried }),
      });
      lines.push(
        toDraft(plan, rated, input.period, `${unit} (${item.model.toLowerCase()}): ${rated.explanation}`),
      );
      trace.push({
        stage: "rate",
        note: `${unit} ${item.model}: ${rated.quantity} used, ${rated.billable_quantity} billable: ${rated.explanation} = ${rated.amount_decimal}, rounded once`,
        amounts: {
          [`${unit}.quantity`]: rated.quantity,
          [`${unit}.billable_quantity`]: rated.billable_quantity,
          [`${unit}.amount_decimal`]: rated.amount_decimal,
          [`${unit}.amount`]: String(rated.amount),
          ...(rated.over_cap_quantity === undefined ? {} : { [`${unit}.over_cap`]: rated.over_cap_quantity }),
        },
      });
    }
  }
  // The invoiced period's own flat fees are the opening plans'; the prorate stage trues them up.
  for (const plan of opening ?? []) {
    for (const item of plan.items) {
      if (item.model === "FLAT_RATE")
        flatLines(plan, item, flatPeriods(input, item.timing).filter(isInvoiced));
    }
  }
  if (trace.length === 0) trace.push({ stage: "rate", note: "nothing to charge this period", amounts: {} });
  return { output: { lines }, trace };
}

type FlatItem = Extract<PricedPlan["items"][number], { model: "FLAT_RATE" }>;

function flatPeriods(input: RateInput, timing: FlatItem["timing"]): Period[] {
  if (timing === "in_advance") return input.advancePeriods;
  return input.chargeUsage ? [input.period] : [];
}
