import { applyCommitment, applyMaximumSpend, fromMinorUnits, toMinorUnits } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import type { DraftLine, Period, PricedPlan, StageResult } from "./types.ts";

export interface CommitInput {
  plans: PricedPlan[];
  lines: DraftLine[];
  period: Period;
  chargeUsage: boolean;
}

export interface CommitOutput {
  lines: DraftLine[];
}

function adjustment(
  plan: PricedPlan,
  period: Period,
  amount: bigint,
  model: string,
  description: string,
): DraftLine {
  return {
    type: "CHARGE",
    description,
    billableUnit: null,
    ratePlanId: plan.ratePlanId,
    model,
    quantity: "1",
    unitPrice: fromMinorUnits(amount, plan.currency),
    amountDecimal: fromMinorUnits(amount, plan.currency),
    amountMinor: amount,
    tiers: null,
    periodStart: period.start,
    periodEnd: period.end,
  };
}

/**
 * Stage 6. Per plan, over the lines that charge the invoiced period (not fees paid in advance for
 * the next one): a minimum commitment adds a true-up CHARGE up to the minimum, then a maximum
 * spend adds a negative CHARGE down to the maximum. Both in whole minor units, after each line was
 * rounded, so the invoice shows the adjustment instead of silently changing usage lines.
 */
export function commit(input: CommitInput): StageResult<CommitOutput> {
  const lines = [...input.lines];
  const trace: TraceEntry[] = [];
  if (!input.chargeUsage) {
    return {
      output: { lines },
      trace: [{ stage: "commit", note: "trial period: no commitment", amounts: {} }],
    };
  }
  for (const plan of input.plans) {
    if (plan.minimumCommitment === null && plan.maximumSpend === null) continue;
    let spent = input.lines
      .filter(
        (line) =>
          line.ratePlanId === plan.ratePlanId && line.periodStart.getTime() === input.period.start.getTime(),
      )
      .reduce((sum, line) => sum + line.amountMinor, 0n);
    const before = spent;
    if (plan.minimumCommitment !== null) {
      const minimum = toMinorUnits(plan.minimumCommitment, plan.currency, plan.rounding);
      const trueUp = applyCommitment(spent, minimum);
      if (trueUp > 0n) {
        const text = `Minimum commitment true-up (${plan.name}: ${plan.minimumCommitment} ${plan.currency})`;
        lines.push(adjustment(plan, input.period, trueUp, "MINIMUM_COMMITMENT", text));
        spent += trueUp;
      }
      trace.push({
        stage: "commit",
        note: `${plan.name}: spent ${before}, minimum ${minimum}: true-up ${trueUp}`,
        amounts: { spent: String(before), minimum: String(minimum), true_up: String(trueUp) },
      });
    }
    if (plan.maximumSpend !== null) {
      const maximum = toMinorUnits(plan.maximumSpend, plan.currency, plan.rounding);
      const reduction = applyMaximumSpend(spent, maximum);
      if (reduction < 0n) {
        const text = `Maximum spend cap (${plan.name}: ${plan.maximumSpend} ${plan.currency})`;
        lines.push(adjustment(plan, input.period, reduction, "MAXIMUM_SPEND", text));
      }
      trace.push({
        stage: "commit",
        note: `${plan.name}: spent ${spent}, maximum ${maximum}: reduction ${reduction}`,
        amounts: { spent: String(spent), maximum: String(maximum), reduction: String(reduction) },
      });
    }
  }
  if (trace.length === 0)
    trace.push({ stage: "commit", note: "no minimum commitment or maximum spend", amounts: {} });
  return { output: { lines }, trace };
}
