import { ExactDecimal, formatDecimal, includedAllowance, parseDecimal } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import { lookup, type PlanUsageItem, type StageResult, type UsageReading } from "./types.ts";

export interface QuotaCheckInput {
  items: PlanUsageItem[];
  usage: UsageReading[];
  carryIn: Record<string, string>;
}

export interface QuotaCheckOutput {
  /** Per unit key with a cap: the quantity above the cap that will not be billed. */
  overCap: Record<string, string>;
}

/**
 * Stage 1. Compares usage with each item's hard cap. The cap limits what is billed after the
 * allowance (the rating engine applies it), so the capped quantity is
 * max(used − allowance − cap, 0) with allowance = the item's own included quantity plus the
 * carried-in rollover. Recorded, not applied: the engine is the single place that rates.
 */
export function quotaCheck(input: QuotaCheckInput): StageResult<QuotaCheckOutput> {
  const overCap: Record<string, string> = {};
  const trace: TraceEntry[] = [];
  for (const { item } of input.items) {
    if (item.cap === undefined) continue;
    const used = parseDecimal(input.usage.find((r) => r.unitKey === item.billable_unit)?.quantity ?? "0");
    const carried = parseDecimal(lookup(input.carryIn, item.billable_unit) ?? "0");
    const allowance = parseDecimal(includedAllowance(item)).plus(item.rollover ? carried : 0);
    const cap = parseDecimal(item.cap);
    const above = ExactDecimal.max(used.minus(allowance).minus(cap), 0);
    overCap[item.billable_unit] = formatDecimal(above);
    trace.push({
      stage: "quota_check",
      note: above.isZero()
        ? `${item.billable_unit}: ${formatDecimal(used)} used, within the cap of ${formatDecimal(cap)} billable`
        : `${item.billable_unit}: ${formatDecimal(above)} above the cap of ${formatDecimal(cap)} billable is not charged`,
      amounts: {
        [`${item.billable_unit}.used`]: formatDecimal(used),
        [`${item.billable_unit}.cap`]: formatDecimal(cap),
        [`${item.billable_unit}.over_cap`]: formatDecimal(above),
      },
    });
  }
  if (trace.length === 0) trace.push({ stage: "quota_check", note: "no item has a usage cap", amounts: {} });
  return { output: { overCap }, trace };
}
