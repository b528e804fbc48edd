import type { PlanItem, RoundingMode } from "@aforo/core";
import type { InvoiceWalletState, TaxableLine, TaxContext, TaxResult } from "../../ports.ts";
import type { InvoiceLine, TraceEntry } from "../invoice.ts";

/** Every stage is `(input) => StageResult<output>`: no I/O, no clock, the same answer every time. */
export interface StageResult<T> {
  output: T;
  trace: TraceEntry[];
}

export interface Period {
  start: Date;
  end: Date;
}

/** A pinned rate plan version, as the pipeline needs it. */
export interface PricedPlan {
  ratePlanId: string;
  version: number;
  name: string;
  currency: string;
  rounding: RoundingMode;
  items: readonly (PlanItem & { billable_unit_id?: string })[];
  /** Decimal strings in the plan currency, or null. */
  minimumCommitment: string | null;
  maximumSpend: string | null;
}

/** One billable unit's usage of the customer over the period, as the metering read service aggregated it. */
export interface UsageReading {
  unitKey: string;
  aggregation: string;
  quantity: string;
}

export interface AppliedPromotion {
  promotionId: string;
  code: string;
  percentOff: string | null;
  /** A decimal amount in `currency`. */
  amountOff: string | null;
  currency: string | null;
  duration: "once" | "repeating" | "forever";
  durationInPeriods: number | null;
}

/** What the tax stage asks the TaxProvider (the only step that is not pure, run by runPipeline). */
export type TaxCalculator = (lines: TaxableLine[]) => Promise<TaxResult>;

export interface PipelineInput {
  currency: string;
  /** IANA zone the period was cut in: line texts name its local dates. Absent: UTC. */
  timeZone?: string | undefined;
  /** The period being invoiced: usage and in-arrears fees are for it. */
  period: Period;
  /**
   * Periods whose in-advance flat fees this invoice charges: the period being opened (the next one,
   * unless the subscription ends) and, on a subscription's first paid period, that period itself.
   */
  advancePeriods: Period[];
  /** False for a trial period: no usage and no in-arrears fees are charged. */
  chargeUsage: boolean;
  /** The plans pinned at the end of the period: usage, the next period's fees, commitments. */
  plans: PricedPlan[];
  /**
   * The plans pinned at the start of the period, when a plan change fell inside it: the period's
   * own flat fees are theirs, and `planChanges` prorates them. Absent: the same as `plans`.
   */
  openingPlans?: PricedPlan[] | undefined;
  /** Plan changes inside the period, oldest first (PRORATION lines). */
  planChanges?: PlanChange[] | undefined;
  /** Late usage of earlier, already invoiced periods (adjustment lines or credit notes). */
  adjustments?: LateAdjustment[] | undefined;
  usage: UsageReading[];
  /** Allowance carried into this period, per unit key (stored by the previous period's invoice). */
  carryIn: Record<string, string>;
  promotion: AppliedPromotion | null;
  /** Earlier periods of this subscription that the same promotion discounted. */
  periodsAlreadyDiscounted: number;
  taxContext: TaxContext;
  /**
   * The customer's wallet, when the offering bills through it (PREPAID, HYBRID): the route and
   * settle stages decide what it pays. Absent or null: the invoice carries everything.
   */
  wallet?: InvoiceWalletState | null | undefined;
}

/** A change of the pinned plans at `at`, inside the invoiced period. */
export interface PlanChange {
  at: Date;
  /** (period end − at) / (period end − period start), exact decimal, as the subscription recorded it. */
  fractionRemaining: string;
  from: PricedPlan[];
  to: PricedPlan[];
}

/**
 * Late usage of one closed period and one unit (bill runs' pending adjustment), with what the
 * period was billed for and what it comes to with the late events.
 */
export interface LateAdjustment {
  /** The closed period the events belong to. */
  period: Period;
  unitKey: string;
  /** Oldest first; they go into the trace. */
  eventIds: string[];
  /** The item of the plan pinned at the end of the closed period that prices the unit; null: none. */
  priced: PlanUsageItem | null;
  /** The closed period's usage without the late events (what its invoice billed), and with them. */
  quantityBefore: string;
  quantityAfter: string;
  /** The allowance the closed period's invoice carried in for the unit (rollover items). */
  rolloverIn?: string | undefined;
  /** The closed period's invoice, when a credit note can still be issued on it. */
  original: { invoiceId: string; creditableMinor: bigint } | null;
}

/** A negative adjustment, issued as a credit note on the closed period's invoice. */
export interface AdjustmentCredit {
  invoiceId: string;
  /** Positive: what the credit note credits. */
  amountMinor: bigint;
  description: string;
  eventIds: string[];
}

/** A line before tax: the tax stage fills `taxMinor`. */
export type DraftLine = Omit<InvoiceLine, "taxMinor">;

/** Every usage item of every pinned plan, in plan order. */
export interface PlanUsageItem {
  plan: PricedPlan;
  item: Exclude<PricedPlan["items"][number], { model: "FLAT_RATE" }>;
}

export function usageItemsOf(plans: readonly PricedPlan[]): PlanUsageItem[] {
  return plans.flatMap((plan) =>
    plan.items.flatMap((item) => (item.model === "FLAT_RATE" ? [] : [{ plan, item }])),
  );
}

export function usageOf(usage: readonly UsageReading[], unitKey: string): string {
  return usage.find((reading) => reading.unitKey === unitKey)?.quantity ?? "0";
}

export function lookup(record: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
