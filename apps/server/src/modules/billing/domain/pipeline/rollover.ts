import { computeRollover, includedAllowance } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import { lookup, type PlanUsageItem, type StageResult, type UsageReading } from "./types.ts";

export interface RolloverInput {
  items: PlanUsageItem[];
  usage: UsageReading[];
  /** Allowance carried into this period by the previous one, per unit key. */
  carryIn: Record<string, string>;
  /** False in a trial: nothing is rated, so nothing carries either way. */
  chargeUsage: boolean;
}

export interface RolloverOutput {
  /** Extra allowance this period gets, per unit key (only for items that roll over). */
  rolloverIn: Record<string, string>;
  /** What this period carries into the next one, per unit key (stored with the invoice). */
  carryOut: Record<string, string>;
}

/**
 * Stage 2. Applies the allowance carried over from the previous period to items with `rollover`,
 * and computes what this period carries into the next (computeRollover: carried allowance is used
 * first and never rolls twice; at most `rollover.max`). An item without `rollover` ignores any
 * carry-in (the plan may have changed).
 */
export function rollover(input: RolloverInput): StageResult<RolloverOutput> {
  const rolloverIn: Record<string, string> = {};
  const carryOut: Record<string, string> = {};
  const trace: TraceEntry[] = [];
  for (const { item } of input.items) {
    const unit = item.billable_unit;
    if (!item.rollover || !input.chargeUsage || Object.hasOwn(carryOut, unit)) continue;
    const carried = lookup(input.carryIn, unit) ?? "0";
    const used = input.usage.find((reading) => reading.unitKey === unit)?.quantity ?? "0";
    rolloverIn[unit] = carried;
    carryOut[unit] = computeRollover({
      included: includedAllowance(item),
      used,
      previous_carry_over: carried,
      max: item.rollover.max,
    });
    trace.push({
      stage: "rollover",
      note: `${unit}: ${carried} carried in from the previous period; ${carryOut[unit]} unused allowance carries into the next (max ${item.rollover.max})`,
      amounts: { [`${unit}.carried_in`]: carried, [`${unit}.carried_out`]: carryOut[unit] ?? "0" },
    });
  }
  if (trace.length === 0)
    trace.push({ stage: "rollover", note: "no item rolls allowance over", amounts: {} });
  return { output: { rolloverIn, carryOut }, trace };
}
