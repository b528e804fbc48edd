import { formatDecimal, parseQuantity } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import type { PlanUsageItem, StageResult, UsageReading } from "./types.ts";

export interface AggregateInput {
  items: PlanUsageItem[];
  /** The period's usage per unit, each aggregated by its unit's own aggregation by metering. */
  usage: UsageReading[];
}

export interface AggregateOutput {
  /** The quantity to rate per unit key: every priced unit appears, "0" when nothing was used. */
  quantities: Record<string, string>;
}

/**
 * Stage 3. Takes the period's aggregated usage (the caller reads it through the metering read
 * service, which applies each unit's COUNT/SUM/MAX/UNIQUE/… aggregation) and keeps what the plans
 * price, in canonical form. Usage of units no plan prices is recorded and not billed.
 */
export function aggregate(input: AggregateInput): StageResult<AggregateOutput> {
  const priced = new Set(input.items.map(({ item }) => item.billable_unit));
  const quantities: Record<string, string> = {};
  const trace: TraceEntry[] = [];
  for (const unit of priced) {
    const reading = input.usage.find((candidate) => candidate.unitKey === unit);
    const quantity = formatDecimal(parseQuantity(reading?.quantity ?? "0", unit));
    quantities[unit] = quantity;
    trace.push({
      stage: "aggregate",
      note: `${unit}: ${quantity} (${reading?.aggregation ?? "no usage"} over the period)`,
      amounts: { [`${unit}.quantity`]: quantity },
    });
  }
  for (const reading of input.usage) {
    if (priced.has(reading.unitKey)) continue;
    trace.push({
      stage: "aggregate",
      note: `${reading.unitKey}: ${reading.quantity} used, priced by no plan item`,
      amounts: { [`${reading.unitKey}.quantity`]: reading.quantity },
    });
  }
  if (trace.length === 0) trace.push({ stage: "aggregate", note: "no usage-priced items", amounts: {} });
  return { output: { quantities }, trace };
}
