import { formatDecimal, fromMinorUnits, parseDecimal, rateItem } from "@aforo/core";
import type { TraceEntry } from "../invoice.ts";
import { describePeriod } from "./rate.ts";
import type { AdjustmentCredit, DraftLine, LateAdjustment, StageResult } from "./types.ts";

export interface AdjustInput {
  currency: string;
  adjustments: LateAdjustment[];
  timeZone?: string | undefined;
}

export interface AdjustOutput {
  /** USAGE_FEE lines "Adjustment for <period>" (negative only when no credit note can be issued). */
  lines: DraftLine[];
  /** Negative adjustments, issued as credit notes on the closed periods' invoices. */
  credits: AdjustmentCredit[];
  /** Every late event accounted for (billed, credited, or priced at nothing): marked adjusted. */
  eventIds: string[];
}

/** "Adjustment for 2026-11-01 – 2026-12-01", as bill runs' adjustmentDescription words it. */
export function adjustmentTitle(adjustment: Pick<LateAdjustment, "period">, timeZone?: string): string {
  return `Adjustment for ${describePeriod(adjustment.period, timeZone)}`;
}

/**
 * Late events (part of stages 3 and 5). Each group of late usage of a closed period is priced with
 * the item pinned at that period's end as rate(usage with the late events) − rate(usage without
 * them): both rounded once, like the original line, so the period's invoice and its adjustments add
 * up to exactly what the whole usage rates to. The event ids go into the aggregate stage's trace.
 * SUM and COUNT only grow; a lower amount (MAX, LATEST, AVG, …) becomes a credit note on the
 * closed period's invoice, or a negative line when that invoice can no longer be credited (void,
 * or already credited in full).
 */
export function adjust(input: AdjustInput): StageResult<AdjustOutput> {
  const lines: DraftLine[] = [];
  const credits: AdjustmentCredit[] = [];
  const eventIds: string[] = [];
  const trace: TraceEntry[] = [];
  const creditable = new Map<string, bigint>();
  for (const adjustment of input.adjustments) {
    const { unitKey, priced } = adjustment;
    const title = adjustmentTitle(adjustment, input.timeZone);
    eventIds.push(...adjustment.eventIds);
    trace.push({
      stage: "aggregate",
      note: `${title}, ${unitKey}: ${adjustment.eventIds.length} late event(s) ${adjustment.eventIds.join(", ")}; billed ${adjustment.quantityBefore}, now ${adjustment.quantityAfter}`,
      amounts: {
        [`${unitKey}.late.event_ids`]: adjustment.eventIds.join(","),
        [`${unitKey}.late.quantity_before`]: adjustment.quantityBefore,
        [`${unitKey}.late.quantity_after`]: adjustment.quantityAfter,
      },
    });
    if (priced === null) {
      trace.push({ stage: "rate", note: `${title}, ${unitKey}: priced by no plan item`, amounts: {} });
      continue;
    }
    const { plan, item } = priced;
    const options = {
      currency: plan.currency,
      rounding: plan.rounding,
      ...(adjustment.rolloverIn === undefined ? {} : { rollover_in: adjustment.rolloverIn }),
    };
    const before = rateItem(item, adjustment.quantityBefore, options);
    const after = rateItem(item, adjustment.quantityAfter, options);
    const amount = after.amount - before.amount;
    const rated = `rate(${adjustment.quantityAfter}) − rate(${adjustment.quantityBefore}) = ${after.amount} − ${before.amount} = ${amount}`;
    const original = adjustment.original;
    const left = original ? (creditable.get(original.invoiceId) ?? original.creditableMinor) : 0n;
    if (amount < 0n && original && -amount <= left) {
      creditable.set(original.invoiceId, left + amount);
      credits.push({
        invoiceId: original.invoiceId,
        amountMinor: -amount,
        description: `${title}, ${unitKey}: late events ${adjustment.eventIds.join(", ")}`,
        eventIds: adjustment.eventIds,
      });
      trace.push({
        stage: "rate",
        note: `${title}, ${unitKey}: ${rated}: a credit note on invoice ${original.invoiceId}`,
        amounts: { [`${unitKey}.adjustment`]: String(amount), credit_note: String(-amount) },
      });
      continue;
    }
    trace.push({
      stage: "rate",
      note: `${title}, ${unitKey}: ${rated}${amount === 0n ? ": nothing to bill" : ""}`,
      amounts: { [`${unitKey}.adjustment`]: String(amount) },
    });
    if (amount === 0n) continue;
    const delta = parseDecimal(adjustment.quantityAfter).minus(parseDecimal(adjustment.quantityBefore));
    lines.push({
      type: "USAGE_FEE",
      description: `${title} (${unitKey}: ${formatDecimal(delta)} late)`,
      billableUnit: unitKey,
      ratePlanId: plan.ratePlanId,
      model: item.model,
      quantity: formatDecimal(delta),
      unitPrice: null,
      amountDecimal: fromMinorUnits(amount, input.currency),
      amountMinor: amount,
      tiers: null,
      periodStart: adjustment.period.start,
      periodEnd: adjustment.period.end,
    });
  }
  return { output: { lines, credits, eventIds }, trace };
}
