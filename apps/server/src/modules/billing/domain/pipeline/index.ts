import { assert } from "@aforo/core";
import type { InvoiceWalletState } from "../../ports.ts";
import type { InvoiceLine, TaxBreakdownEntry, TraceEntry } from "../invoice.ts";
import { adjust } from "./adjust.ts";
import { aggregate } from "./aggregate.ts";
import { allowance } from "./allowance.ts";
import { commit } from "./commit.ts";
import { discount } from "./discount.ts";
import { prorate } from "./prorate.ts";
import { quotaCheck } from "./quota-check.ts";
import { rate } from "./rate.ts";
import { rollover } from "./rollover.ts";
import { route } from "./route.ts";
import { settle } from "./settle.ts";
import { tax, taxableLines } from "./tax.ts";
import { type AdjustmentCredit, type PipelineInput, type TaxCalculator, usageItemsOf } from "./types.ts";

export type * from "./types.ts";
export { usageItemsOf } from "./types.ts";
export { usageCharge } from "./usage-charge.ts";

export interface PipelineResult {
  lines: InvoiceLine[];
  subtotal: bigint;
  discountTotal: bigint;
  taxTotal: bigint;
  taxIncluded: bigint;
  taxBreakdown: TaxBreakdownEntry[];
  total: bigint;
  creditsApplied: bigint;
  amountDue: bigint;
  /** The promotion that discounted this invoice (counts towards its duration), or null. */
  promotionId: string | null;
  /** Allowance this period carries into the next, per unit key. */
  carryOut: Record<string, string>;
  /** Negative late-usage adjustments: credit notes to issue on the closed periods' invoices. */
  adjustmentCredits: AdjustmentCredit[];
  /** The late events this invoice accounts for (to mark adjusted in its transaction). */
  adjustedEventIds: string[];
  trace: TraceEntry[];
}

/**
 * The ten stages, in API.md's order: quota check → rollover → aggregate → allowance → rate →
 * commit → discount → tax → route → settle. Each stage is pure; the only I/O is the TaxProvider
 * call between discount and tax (`calculateTax`), whose answer the tax stage takes as input.
 * The final run and the preview both call this, so a preview at period end is the invoice.
 */
export async function runPipeline(
  input: PipelineInput,
  calculateTax: TaxCalculator,
): Promise<PipelineResult> {
  const trace: TraceEntry[] = [];
  const items = usageItemsOf(input.plans);
  const quota = quotaCheck({ items, usage: input.usage, carryIn: input.carryIn });
  trace.push(...quota.trace);
  const rolled = rollover({
    items,
    usage: input.usage,
    carryIn: input.carryIn,
    chargeUsage: input.chargeUsage,
  });
  trace.push(...rolled.trace);
  const aggregated = aggregate({ items, usage: input.usage });
  trace.push(...aggregated.trace);
  const adjusted = adjust({
    currency: input.currency,
    adjustments: input.adjustments ?? [],
    timeZone: input.timeZone,
  });
  trace.push(...adjusted.trace.filter((entry) => entry.stage === "aggregate"));
  const allowed = allowance({
    items,
    quantities: aggregated.output.quantities,
    rolloverIn: rolled.output.rolloverIn,
  });
  trace.push(...allowed.trace);
  const rated = rate({
    plans: input.plans,
    openingPlans: input.planChanges?.length ? input.openingPlans : undefined,
    currency: input.currency,
    period: input.period,
    advancePeriods: input.advancePeriods,
    chargeUsage: input.chargeUsage,
    quantities: aggregated.output.quantities,
    rolloverIn: rolled.output.rolloverIn,
    timeZone: input.timeZone,
  });
  trace.push(...rated.trace);
  const prorated = prorate({
    period: input.period,
    changes: input.planChanges ?? [],
    chargeUsage: input.chargeUsage,
    timeZone: input.timeZone,
  });
  trace.push(...prorated.trace);
  trace.push(...adjusted.trace.filter((entry) => entry.stage !== "aggregate"));
  const committed = commit({
    plans: input.plans,
    lines: [...rated.output.lines, ...prorated.output.lines, ...adjusted.output.lines],
    period: input.period,
    chargeUsage: input.chargeUsage,
  });
  trace.push(...committed.trace);
  const discounted = discount({
    lines: committed.output.lines,
    currency: input.currency,
    period: input.period,
    promotion: input.promotion,
    periodsAlreadyDiscounted: input.periodsAlreadyDiscounted,
  });
  trace.push(...discounted.trace);
  const taxable = taxableLines(discounted.output.taxableMinor);
  const taxResult = taxable.length === 0 ? emptyTax : await calculateTax(taxable);
  const taxed = tax({
    lines: discounted.output.lines,
    taxableMinor: discounted.output.taxableMinor,
    result: taxResult,
  });
  trace.push(...taxed.trace);

  const subtotal = committed.output.lines.reduce((sum, line) => sum + line.amountMinor, 0n);
  const discountTotal = discounted.output.discountMinor;
  const total = subtotal - discountTotal + taxed.output.taxTotal;
  const settled = routeAndSettle(total, input.wallet ?? null);
  trace.push(...settled.trace);

  const lineSum = taxed.output.lines.reduce((sum, line) => sum + line.amountMinor, 0n);
  assert(lineSum === subtotal - discountTotal, "the lines add up to subtotal − discount");
  return {
    lines: taxed.output.lines,
    subtotal,
    discountTotal,
    taxTotal: taxed.output.taxTotal,
    taxIncluded: taxed.output.taxIncluded,
    taxBreakdown: taxed.output.breakdown,
    total,
    creditsApplied: settled.output.creditsApplied,
    amountDue: settled.output.amountDue,
    promotionId: discounted.output.promotionId,
    carryOut: rolled.output.carryOut,
    adjustmentCredits: adjusted.output.credits,
    adjustedEventIds: adjusted.output.eventIds,
    trace,
  };
}

/**
 * The last two stages on their own: the finalisation runs them again on the wallet it has locked
 * (the same pure functions, so a preview made on the same wallet state shows the same figures).
 */
export function routeAndSettle(
  total: bigint,
  wallet: InvoiceWalletState | null,
): { output: ReturnType<typeof settle>["output"]; trace: TraceEntry[] } {
  const routed = route({ total, wallet });
  const settled = settle({ total, routed: routed.output });
  return { output: settled.output, trace: [...routed.trace, ...settled.trace] };
}

const emptyTax = { lines: [], exclusiveTaxMinor: 0n, inclusiveTaxMinor: 0n };
