import { assert } from "@aforo/core";
import type { TaxableLine, TaxResult } from "../../ports.ts";
import type { InvoiceLine, TaxBreakdownEntry, TraceEntry } from "../invoice.ts";
import type { DraftLine, StageResult } from "./types.ts";

export interface TaxInput {
  /** Every line, charge lines first and the DISCOUNT line (if any) last. */
  lines: DraftLine[];
  /** Per charge line (by index), its amount after its share of the discount. */
  taxableMinor: bigint[];
  /** What the TaxProvider answered for `taxableLines(...)`. */
  result: TaxResult;
}

export interface TaxOutput {
  lines: InvoiceLine[];
  /** Exclusive tax, added to the total. */
  taxTotal: bigint;
  /** Inclusive tax, already inside the line amounts (shown, not added). */
  taxIncluded: bigint;
  breakdown: TaxBreakdownEntry[];
}

/** The request to the TaxProvider: each charge line's amount after the discount, by its index. */
export function taxableLines(taxableMinor: readonly bigint[]): TaxableLine[] {
  return taxableMinor.map((amountMinor, index) => ({ lineId: String(index), amountMinor }));
}

/**
 * Stage 8. Applies the provider's answer: exclusive taxes make the tax total added to the invoice;
 * inclusive ones are contained in the prices and only reported. The breakdown groups by tax name,
 * jurisdiction, rate and inclusiveness, as the PDF prints it.
 */
export function tax(input: TaxInput): StageResult<TaxOutput> {
  const taxByLine = new Map<number, bigint>();
  const groups = new Map<string, TaxBreakdownEntry>();
  let exclusive = 0n;
  let inclusive = 0n;
  for (const entry of input.result.lines) {
    const index = Number(entry.lineId);
    const taxable = input.taxableMinor[index];
    assert(taxable !== undefined, `the tax provider answered for an unknown line ${entry.lineId}`);
    taxByLine.set(index, (taxByLine.get(index) ?? 0n) + entry.taxMinor);
    if (entry.inclusive) inclusive += entry.taxMinor;
    else exclusive += entry.taxMinor;
    const key = JSON.stringify([entry.name, entry.jurisdiction, entry.ratePercent, entry.inclusive]);
    const group = groups.get(key) ?? {
      name: entry.name,
      jurisdiction: entry.jurisdiction,
      ratePercent: entry.ratePercent,
      inclusive: entry.inclusive,
      taxableMinor: 0n,
      taxMinor: 0n,
    };
    group.taxableMinor += taxable;
    group.taxMinor += entry.taxMinor;
    groups.set(key, group);
  }
  const lines = input.lines.map((line, index) => ({ ...line, taxMinor: taxByLine.get(index) ?? 0n }));
  const breakdown = [...groups.values()];
  const trace: TraceEntry[] = breakdown.map((group) => ({
    stage: "tax",
    note: `${group.name} (${group.jurisdiction}) ${group.ratePercent}% ${group.inclusive ? "included in" : "added to"} ${group.taxableMinor}: ${group.taxMinor}`,
    amounts: { taxable: String(group.taxableMinor), tax: String(group.taxMinor) },
  }));
  if (trace.length === 0) trace.push({ stage: "tax", note: "no tax applies", amounts: {} });
  trace.push({
    stage: "tax",
    note: `tax added ${exclusive}, tax included ${inclusive}`,
    amounts: { tax_total: String(exclusive), tax_included: String(inclusive) },
  });
  return { output: { lines, taxTotal: exclusive, taxIncluded: inclusive, breakdown }, trace };
}
