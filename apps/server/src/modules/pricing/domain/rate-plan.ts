import {
  currencyExponent,
  type DecimalInput,
  formatDecimal,
  isDecimalInput,
  isKnownCurrency,
  type PlanItem,
  type PricingModel,
  parseDecimal,
  type RoundingMode,
  type ValidationIssue,
  validatePlanItem,
} from "@aforo/core";

export const billingIntervals = ["day", "week", "month", "year"] as const;
export type BillingInterval = (typeof billingIntervals)[number];

export interface BillingPeriod {
  interval: BillingInterval;
  count: number;
}

export const meteredResets = ["billing_period", "day", "hour", "minute"] as const;
export const overagePolicies = ["block", "throttle", "allow"] as const;

export type EntitlementDefinition =
  | { feature: string; type: "boolean" }
  | {
      feature: string;
      type: "metered";
      /** The unit's key; `billable_unit_id` is its id, resolved when the version was made. */
      billable_unit: string;
      billable_unit_id: string;
      limit: string;
      reset: (typeof meteredResets)[number];
      overage: (typeof overagePolicies)[number];
    }
  | { feature: string; type: "rate_limit"; limit: number; per_seconds: number; burst: number };

/** A stored item: the engine's item with decimals as strings and the unit named by key and id. */
export type StoredPlanItem = PlanItem & { billable_unit_id?: string };

/**
 * Everything one immutable version says. Money amounts (`minimum_commitment`, `maximum_spend`) are
 * decimal strings in the plan currency ("49.00" USD), like prices.
 */
export interface RatePlanDefinition {
  name: string;
  description: string | null;
  currency: string;
  billing_period: BillingPeriod;
  items: StoredPlanItem[];
  entitlements: EntitlementDefinition[];
  minimum_commitment: string | null;
  maximum_spend: string | null;
  rounding: RoundingMode;
}

/** An item as the API receives it: the model is checked by the schema, the rest by the engine. */
export type PlanItemInput = { model: PricingModel; billable_unit?: string | null } & Record<string, unknown>;

export type EntitlementInput =
  | { feature: string; type: "boolean" }
  | {
      feature: string;
      type: "metered";
      billable_unit: string;
      limit: DecimalInput;
      /** Defaults to billing_period. */
      reset?: (typeof meteredResets)[number] | undefined;
      /** Defaults to block. */
      overage?: (typeof overagePolicies)[number] | undefined;
    }
  | { feature: string; type: "rate_limit"; limit: number; per_seconds: number; burst?: number | undefined };

export interface RatePlanInput {
  name: string;
  description?: string | undefined;
  currency: string;
  billing_period: BillingPeriod;
  items: PlanItemInput[];
  entitlements?: EntitlementInput[] | undefined;
  minimum_commitment?: DecimalInput | undefined;
  maximum_spend?: DecimalInput | undefined;
  rounding?: RoundingMode | undefined;
}

/** What the plan needs to know of a billable unit; the service looks them up by key or id. */
export interface UnitReference {
  id: string;
  key: string;
  aggregation: string;
  status: string;
}

export type UnitLookup = (idOrKey: string) => UnitReference | undefined;

/** Every billable unit reference (key or id) a plan input names, for the service to resolve. */
export function unitReferencesOf(input: RatePlanInput): string[] {
  const references = new Set<string>();
  for (const item of input.items) {
    if (typeof item.billable_unit === "string" && item.billable_unit !== "")
      references.add(item.billable_unit);
  }
  for (const entitlement of input.entitlements ?? []) {
    if (entitlement.type === "metered") references.add(entitlement.billable_unit);
  }
  return [...references];
}

const decimalFieldsByModel: Record<PricingModel, readonly string[]> = {
  PER_UNIT: ["unit_price"],
  FLAT_RATE: ["flat_amount"],
  PERCENTAGE: ["percent", "min_fee"],
  INCLUDED_QUOTA: ["included", "overage_price", "block_size"],
  GRADUATED: [],
  VOLUME: [],
};
const usageModifierFields = ["included_free", "cap"] as const;

function decimalString(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : formatDecimal(value as DecimalInput);
}

/**
 * The stored form of a valid item: only the fields its model reads, decimals as plain strings,
 * the unit by key and id. Unknown fields are dropped so a version holds exactly what rates.
 */
export function normalizeItem(item: PlanItemInput, unit: UnitReference | undefined): StoredPlanItem {
  const stored: Record<string, unknown> = { model: item.model };
  if (item.model === "FLAT_RATE") {
    stored.flat_amount = decimalString(item.flat_amount);
    stored.timing = item.timing;
    return stored as StoredPlanItem;
  }
  if (unit) {
    stored.billable_unit = unit.key;
    stored.billable_unit_id = unit.id;
  }
  for (const field of decimalFieldsByModel[item.model]) {
    const value = decimalString(item[field]);
    if (value !== undefined) stored[field] = value;
  }
  if (item.model === "GRADUATED" || item.model === "VOLUME") {
    stored.tiers = (item.tiers as Record<string, unknown>[]).map((tier) => {
      const flat = decimalString(tier.flat_price);
      return {
        up_to: decimalString(tier.up_to) ?? null,
        unit_price: decimalString(tier.unit_price),
        ...(flat === undefined ? {} : { flat_price: flat }),
      };
    });
  }
  for (const field of usageModifierFields) {
    const value = decimalString(item[field]);
    if (value !== undefined) stored[field] = value;
  }
  const rollover = item.rollover as { max?: unknown } | undefined | null;
  if (rollover && rollover.max !== undefined) stored.rollover = { max: decimalString(rollover.max) };
  return stored as StoredPlanItem;
}

function checkUnit(unit: UnitReference | undefined, reference: string, field: string): ValidationIssue[] {
  if (!unit) return [{ field, message: `no billable unit '${reference}' exists in this tenant and mode` }];
  if (unit.status === "ARCHIVED") return [{ field, message: `billable unit '${reference}' is archived` }];
  return [];
}

function checkItems(input: RatePlanInput, lookup: UnitLookup): ValidationIssue[] {
  return input.items.flatMap((item, index) => {
    const at = `items[${index}]`;
    const issues = validatePlanItem(item, at);
    if (item.model === "FLAT_RATE" || typeof item.billable_unit !== "string" || item.billable_unit === "") {
      return issues;
    }
    const unit = lookup(item.billable_unit);
    const unitIssues = checkUnit(unit, item.billable_unit, `${at}.billable_unit`);
    if (unit && unitIssues.length === 0 && item.model === "PERCENTAGE" && unit.aggregation !== "SUM") {
      unitIssues.push({
        field: `${at}.billable_unit`,
        message: `PERCENTAGE needs a SUM unit (a total value such as transaction volume); '${unit.key}' aggregates by ${unit.aggregation}`,
      });
    }
    return [...issues, ...unitIssues];
  });
}

function checkEntitlements(input: RatePlanInput, lookup: UnitLookup): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  (input.entitlements ?? []).forEach((entitlement, index) => {
    const at = `entitlements[${index}]`;
    if (seen.has(entitlement.feature)) {
      issues.push({
        field: `${at}.feature`,
        message: `feature '${entitlement.feature}' appears more than once`,
      });
    }
    seen.add(entitlement.feature);
    if (entitlement.type === "metered") {
      issues.push(
        ...checkUnit(lookup(entitlement.billable_unit), entitlement.billable_unit, `${at}.billable_unit`),
      );
      if (!isDecimalInput(entitlement.limit) || parseDecimal(entitlement.limit).isNegative()) {
        issues.push({ field: `${at}.limit`, message: "must be a non-negative decimal" });
      }
    }
    if (entitlement.type === "rate_limit" && entitlement.burst !== undefined && entitlement.burst < 1) {
      issues.push({ field: `${at}.burst`, message: "must be at least 1" });
    }
  });
  return issues;
}

function checkAmount(value: DecimalInput | undefined, field: string, currency: string): ValidationIssue[] {
  if (value === undefined) return [];
  if (!isDecimalInput(value)) return [{ field, message: 'must be a decimal amount (e.g. "49.00")' }];
  const amount = parseDecimal(value);
  if (amount.isNegative() && !amount.isZero()) return [{ field, message: "must not be negative" }];
  if (isKnownCurrency(currency) && amount.decimalPlaces() > currencyExponent(currency)) {
    return [
      {
        field,
        message: `has more decimals than ${currency} has minor units (${currencyExponent(currency)})`,
      },
    ];
  }
  return [];
}

function checkCommitments(input: RatePlanInput): ValidationIssue[] {
  const issues = [
    ...checkAmount(input.minimum_commitment, "minimum_commitment", input.currency),
    ...checkAmount(input.maximum_spend, "maximum_spend", input.currency),
  ];
  if (issues.length === 0 && input.minimum_commitment !== undefined && input.maximum_spend !== undefined) {
    if (parseDecimal(input.maximum_spend).lessThan(parseDecimal(input.minimum_commitment))) {
      issues.push({ field: "maximum_spend", message: "must not be below minimum_commitment" });
    }
  }
  return issues;
}

export type PlanCheck =
  | { ok: true; definition: RatePlanDefinition }
  | { ok: false; issues: ValidationIssue[] };

/**
 * Checks a rate plan definition against the business rules (the schema has checked the shape) and
 * returns the definition to store. `lookup` answers the units the service resolved beforehand, so
 * this stays pure. The currency is checked separately (it has its own problem type).
 */
export function checkRatePlan(input: RatePlanInput, lookup: UnitLookup): PlanCheck {
  const issues = [
    ...checkItems(input, lookup),
    ...checkEntitlements(input, lookup),
    ...checkCommitments(input),
  ];
  if (issues.length > 0) return { ok: false, issues };
  const entitlements = (input.entitlements ?? []).map((entitlement): EntitlementDefinition => {
    if (entitlement.type === "boolean") return { feature: entitlement.feature, type: "boolean" };
    if (entitlement.type === "rate_limit") {
      const { feature, limit, per_seconds } = entitlement;
      return { feature, type: "rate_limit", limit, per_seconds, burst: entitlement.burst ?? limit };
    }
    // checkEntitlements has proved the unit exists.
    const unit = lookup(entitlement.billable_unit) as UnitReference;
    return {
      feature: entitlement.feature,
      type: "metered",
      billable_unit: unit.key,
      billable_unit_id: unit.id,
      limit: formatDecimal(entitlement.limit),
      reset: entitlement.reset ?? "billing_period",
      overage: entitlement.overage ?? "block",
    };
  });
  return {
    ok: true,
    definition: {
      name: input.name,
      description: input.description ?? null,
      currency: input.currency,
      billing_period: { interval: input.billing_period.interval, count: input.billing_period.count },
      items: input.items.map((item) =>
        normalizeItem(item, typeof item.billable_unit === "string" ? lookup(item.billable_unit) : undefined),
      ),
      entitlements,
      minimum_commitment:
        input.minimum_commitment === undefined ? null : formatDecimal(input.minimum_commitment),
      maximum_spend: input.maximum_spend === undefined ? null : formatDecimal(input.maximum_spend),
      rounding: input.rounding ?? "half_up",
    },
  };
}

/** The ids of the billable units a definition uses (items and metered entitlements). */
export function unitIdsOf(definition: RatePlanDefinition): string[] {
  const ids = new Set<string>();
  for (const item of definition.items) if (item.billable_unit_id) ids.add(item.billable_unit_id);
  for (const entitlement of definition.entitlements) {
    if (entitlement.type === "metered") ids.add(entitlement.billable_unit_id);
  }
  return [...ids];
}

export type RatePlanStatus = "ACTIVE";

/** One version of a rate plan as read: the plan's identity plus that version's definition. */
export interface RatePlanVersion {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  version: number;
  latestVersion: number;
  status: RatePlanStatus;
  definition: RatePlanDefinition;
  createdAt: Date;
  versionCreatedAt: Date;
}
