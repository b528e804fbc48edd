import { ExactDecimal, formatDecimal, includedAllowance, parseDecimal } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import { lookup, type PlanUsageItem, type StageResult } from "./types.ts";

export interface AllowanceInput {
  items: PlanUsageItem[];
  quantities: Record<string, string>;
  rolloverIn: Record<string, string>;
}

export interface UnitAllowance {
  /** included_free (+ `included` for INCLUDED_QUOTA). */
  included: string;
  rolloverIn: string;
  /** included + rolloverIn: what is free this period. */
  total: string;
  /** min(quantity, total). */
  consumed: string;
  /** What is left to price: max(quantity − total, 0) (before any cap). */
  overage: string;
}

export interface AllowanceOutput {
  allowances: Record<string, UnitAllowance>;
}

/**
 * Stage 4. The free allowance of each usage item: its own included quantity plus the carried-in
 * rollover. The rating engine subtracts it (rateItem with rollover_in), so this stage records the
 * split of each quantity into free and billable, the figures the invoice explains.
 */
export function allowance(input: AllowanceInput): StageResult<AllowanceOutput> {
  const allowances: Record<string, UnitAllowance> = {};
  const trace: TraceEntry[] = [];
  input.items.forEach(({ plan, item }) => {
    const unit = item.billable_unit;
    const included = parseDecimal(includedAllowance(item));
    const carried = parseDecimal(lookup(input.rolloverIn, unit) ?? "0");
    const total = included.plus(carried);
    if (total.isZero()) return;
    const quantity = parseDecimal(lookup(input.quantities, unit) ?? "0");
    const consumed = ExactDecimal.min(quantity, total);
    const entry: UnitAllowance = {
      included: formatDecimal(included),
      rolloverIn: formatDecimal(carried),
      total: formatDecimal(total),
      consumed: formatDecimal(consumed),
      overage: formatDecimal(ExactDecimal.max(quantity.minus(total), 0)),
    };
    allowances[`${plan.ratePlanId}:${unit}`] = entry;
    trace.push({
      stage: "allowance",
      note: `${unit}: ${entry.consumed} of ${entry.total} free (${entry.included} included + ${entry.rolloverIn} rolled over); ${entry.overage} beyond it`,
      amounts: {
        [`${unit}.included`]: entry.included,
        [`${unit}.rollover_in`]: entry.rolloverIn,
        [`${unit}.consumed`]: entry.consumed,
        [`${unit}.overage`]: entry.overage,
      },
    });
  });
  if (trace.length === 0) trace.push({ stage: "allowance", note: "no free allowance", amounts: {} });
  return { output: { allowances }, trace };
}
