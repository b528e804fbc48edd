import { formatDecimal, parseDecimal, rateItem, toMinorUnits } from "@aforo/core";
import { localDay } from "../../../subscriptions/domain/period.ts";
import type { TraceEntry } from "../invoice.ts";
import { describePeriod } from "./rate.ts";
import type { DraftLine, Period, PlanChange, PricedPlan, StageResult } from "./types.ts";

export interface ProrateInput {
  period: Period;
  /** The plan changes that fell inside `period`, oldest first. */
  changes: PlanChange[];
  /** False in a trial: no flat fee of the period was charged, so there is nothing to prorate. */
  chargeUsage: boolean;
  timeZone?: string | undefined;
}

export interface ProrateOutput {
  lines: DraftLine[];
}

const names = (plans: readonly PricedPlan[]) => plans.map((plan) => plan.name).join(" + ") || "no plan";

function prorationLine(
  plan: PricedPlan,
  item: PricedPlan["items"][number],
  change: PlanChange,
  period: Period,
  sign: 1 | -1,
  timeZone: string | undefined,
): DraftLine {
  const flat = rateItem(item, "1", { currency: plan.currency, rounding: plan.rounding });
  const exact = parseDecimal(flat.amount_decimal).times(parseDecimal(change.fractionRemaining)).times(sign);
  const timing = item.model === "FLAT_RATE" && item.timing === "in_advance" ? "in advance" : "in arrears";
  const description =
    sign < 0
      ? `Proration: unused ${change.fractionRemaining} of ${plan.name} (${timing}, ${describePeriod(period, timeZone)}), changed to ${names(change.to)} on ${localDay(change.at, timeZone)}`
      : `Proration: remaining ${change.fractionRemaining} of ${plan.name} (${timing}, ${describePeriod(period, timeZone)}), changed from ${names(change.from)} on ${localDay(change.at, timeZone)}`;
  return {
    type: "PRORATION",
    description,
    billableUnit: null,
    ratePlanId: plan.ratePlanId,
    model: "FLAT_RATE",
    quantity: change.fractionRemaining,
    unitPrice: formatDecimal(parseDecimal(flat.amount_decimal).times(sign)),
    amountDecimal: formatDecimal(exact),
    // The brief fixes half-up (ties away from zero, so a credit mirrors the charge), once per line.
    amountMinor: toMinorUnits(exact, plan.currency, "half_up"),
    tiers: null,
    periodStart: change.at,
    periodEnd: period.end,
  };
}

/**
 * Part of stage 5 (rate). A plan change inside the invoiced period prorates the flat fees (in
 * advance and in arrears) by the exact share of the period left at the change (`fractionRemaining`,
 * as the subscription recorded it): a negative PRORATION line credits the old plan's fee × share and
 * a positive one charges the new plan's fee × share. The period's own flat CHARGE lines are those of
 * the plan pinned at its start (rate stage, `openingPlans`), so with several changes the lines
 * telescope to old × (1 − f₁) + middle × (f₁ − f₂) + new × f₂. Each line is rounded once.
 */
export function prorate(input: ProrateInput): StageResult<ProrateOutput> {
  const lines: DraftLine[] = [];
  const trace: TraceEntry[] = [];
  if (!input.chargeUsage) return { output: { lines }, trace };
  for (const change of input.changes) {
    const sides: Array<[PricedPlan[], 1 | -1]> = [
      [change.from, -1],
      [change.to, 1],
    ];
    for (const [plans, sign] of sides) {
      for (const plan of plans) {
        for (const item of plan.items) {
          if (item.model !== "FLAT_RATE") continue;
          const line = prorationLine(plan, item, change, input.period, sign, input.timeZone);
          lines.push(line);
          trace.push({
            stage: "rate",
            note: `${line.description}: ${line.unitPrice} × ${change.fractionRemaining} = ${line.amountDecimal}, rounded once half-up`,
            amounts: {
              fraction_remaining: change.fractionRemaining,
              amount_decimal: line.amountDecimal,
              amount: String(line.amountMinor),
            },
          });
        }
      }
    }
  }
  return { output: { lines }, trace };
}
