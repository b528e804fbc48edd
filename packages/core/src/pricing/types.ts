import type { DecimalInput, RoundingMode } from "../money/index.ts";

/** One price tier. `up_to` is inclusive; the last tier's is null (unbounded). */
export type PriceTier = {
  up_to: DecimalInput | null;
  unit_price: DecimalInput;
  /** Charged once when any quantity falls in (GRADUATED) or reaches (VOLUME) this tier. */
  flat_price?: DecimalInput;
};

/** Modifiers every usage item (all models but FLAT_RATE) may carry. */
export type UsageModifiers = {
  /** Allowance subtracted from the quantity before pricing. */
  included_free?: DecimalInput;
  /** Hard cap on the billable quantity; anything above it is reported but not billed. */
  cap?: DecimalInput;
  /** Unused included allowance carried into the next period, at most `max`. */
  rollover?: { max: DecimalInput };
};

export type PerUnitItem = UsageModifiers & {
  model: "PER_UNIT";
  billable_unit: string;
  unit_price: DecimalInput;
};

export type FlatRateItem = {
  model: "FLAT_RATE";
  flat_amount: DecimalInput;
  timing: "in_advance" | "in_arrears";
  billable_unit?: null;
};

export type PercentageItem = UsageModifiers & {
  model: "PERCENTAGE";
  /** A SUM unit: its quantity is the total value (e.g. transaction volume) the percent applies to. */
  billable_unit: string;
  percent: DecimalInput;
  min_fee?: DecimalInput;
};

export type IncludedQuotaItem = UsageModifiers & {
  model: "INCLUDED_QUOTA";
  billable_unit: string;
  included: DecimalInput;
  overage_price: DecimalInput;
  /** When given, `overage_price` is per block of this many units, partial blocks rounded up. */
  block_size?: DecimalInput;
};

export type GraduatedItem = UsageModifiers & {
  model: "GRADUATED";
  billable_unit: string;
  tiers: PriceTier[];
};

export type VolumeItem = UsageModifiers & {
  model: "VOLUME";
  billable_unit: string;
  tiers: PriceTier[];
};

export type UsageItem = PerUnitItem | PercentageItem | IncludedQuotaItem | GraduatedItem | VolumeItem;
export type PlanItem = FlatRateItem | UsageItem;
export type PricingModel = PlanItem["model"];

export const pricingModels: readonly PricingModel[] = [
  "PER_UNIT",
  "FLAT_RATE",
  "PERCENTAGE",
  "INCLUDED_QUOTA",
  "GRADUATED",
  "VOLUME",
];

export type ValidationIssue = { field: string; message: string };

export type RateItemOptions = {
  currency: string;
  /** Applied once to the line's exact amount. Defaults to half_up. */
  rounding?: RoundingMode;
  /** Extra allowance carried over from the previous period (see `computeRollover`). */
  rollover_in?: DecimalInput;
};

/** One tier's share of a GRADUATED or VOLUME line. */
export type RatedTier = {
  up_to: string | null;
  quantity: string;
  unit_price: string;
  flat_price?: string;
  amount_decimal: string;
};

/**
 * A rated line. Quantities and `amount_decimal` are exact decimal strings; `amount` is the line
 * rounded once to whole minor units of the plan currency, as a bigint (serialise it as a JSON
 * integer or string at the edge).
 */
export type RatedLine = {
  billable_unit: string | null;
  model: PricingModel;
  /** The quantity as metered (FLAT_RATE: "1"). */
  quantity: string;
  /** What was priced: quantity minus allowance, limited by the cap. */
  billable_quantity: string;
  /** Allowance subtracted (included_free + included + rollover_in), when any. */
  included_quantity?: string;
  /** Quantity above the cap that was not billed, when a cap is set. */
  over_cap_quantity?: string;
  unit_price?: string;
  amount_decimal: string;
  amount: bigint;
  tiers?: RatedTier[];
  timing?: FlatRateItem["timing"];
  explanation: string;
};

export type RatePlanOptions = {
  currency: string;
  rounding?: RoundingMode;
  /** Carried-over allowance per billable unit key. */
  rollover_in?: Record<string, DecimalInput>;
};

export type RatedPlan = {
  currency: string;
  lines: RatedLine[];
  /** Sum of the rounded line amounts, in minor units. */
  total: bigint;
  /** Sum of the exact, unrounded line amounts (may differ from `total` by the rounding). */
  total_decimal: string;
};
