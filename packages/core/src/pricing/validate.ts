import { type ExactDecimal, isDecimalInput, parseDecimal } from "../money/index.ts";
import { type PricingModel, pricingModels, type ValidationIssue } from "./types.ts";

type DecimalRule = {
  required?: boolean;
  /** Must be > 0 rather than >= 0. */
  positive?: boolean;
  integer?: boolean;
  maximum?: number;
};

type Checker = {
  issues: ValidationIssue[];
  path: (field: string) => string;
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function joinPath(prefix: string, field: string): string {
  if (prefix === "") return field;
  return field.startsWith("[") ? `${prefix}${field}` : `${prefix}.${field}`;
}

/** Checks a decimal field; returns its value when valid so callers can compare it to others. */
function checkDecimal(
  checker: Checker,
  record: Record<string, unknown>,
  field: string,
  rule: DecimalRule,
  path = field,
): ExactDecimal | undefined {
  const raw = record[field];
  if (raw === undefined || raw === null) {
    if (rule.required) checker.issues.push({ field: checker.path(path), message: "is required" });
    return undefined;
  }
  if (!isDecimalInput(raw)) {
    checker.issues.push({ field: checker.path(path), message: 'must be a decimal number (e.g. "0.05")' });
    return undefined;
  }
  const value = parseDecimal(raw);
  const issuesBefore = checker.issues.length;
  if (value.isNegative() && !value.isZero()) {
    checker.issues.push({ field: checker.path(path), message: "must not be negative" });
  } else if (rule.positive && value.isZero()) {
    checker.issues.push({ field: checker.path(path), message: "must be greater than 0" });
  }
  if (rule.integer && !value.isInteger()) {
    checker.issues.push({ field: checker.path(path), message: "must be a whole number" });
  }
  if (rule.maximum !== undefined && value.greaterThan(rule.maximum)) {
    checker.issues.push({ field: checker.path(path), message: `must be at most ${rule.maximum}` });
  }
  return checker.issues.length === issuesBefore ? value : undefined;
}

function checkBillableUnit(checker: Checker, record: Record<string, unknown>): void {
  const unit = record.billable_unit;
  if (typeof unit !== "string" || unit.trim() === "") {
    checker.issues.push({
      field: checker.path("billable_unit"),
      message: "is required (a billable unit key or id)",
    });
  }
}

function checkUsageModifiers(checker: Checker, record: Record<string, unknown>): void {
  checkDecimal(checker, record, "included_free", {});
  checkDecimal(checker, record, "cap", {});
  const rollover = record.rollover;
  if (rollover === undefined || rollover === null) return;
  if (!isRecord(rollover)) {
    checker.issues.push({ field: checker.path("rollover"), message: "must be an object {max}" });
    return;
  }
  checkDecimal(checker, rollover, "max", { required: true }, "rollover.max");
}

function checkTiers(checker: Checker, record: Record<string, unknown>): void {
  const tiers = record.tiers;
  if (!Array.isArray(tiers)) {
    checker.issues.push({ field: checker.path("tiers"), message: "is required (a list of tiers)" });
    return;
  }
  if (tiers.length === 0) {
    checker.issues.push({ field: checker.path("tiers"), message: "must contain at least one tier" });
    return;
  }
  let previousUpTo: ExactDecimal | undefined;
  tiers.forEach((tier: unknown, index) => {
    const at = `tiers[${index}]`;
    if (!isRecord(tier)) {
      checker.issues.push({
        field: checker.path(at),
        message: "must be an object {up_to, unit_price, flat_price?}",
      });
      return;
    }
    checkDecimal(checker, tier, "unit_price", { required: true }, `${at}.unit_price`);
    checkDecimal(checker, tier, "flat_price", {}, `${at}.flat_price`);
    const isLast = index === tiers.length - 1;
    if (tier.up_to === null || tier.up_to === undefined) {
      if (!isLast) {
        checker.issues.push({
          field: checker.path(`${at}.up_to`),
          message: "only the last tier may be unbounded (null)",
        });
      }
      return;
    }
    if (isLast) {
      checker.issues.push({
        field: checker.path(`${at}.up_to`),
        message: "the last tier must be unbounded (up_to: null) so every quantity has a price",
      });
    }
    const upTo = checkDecimal(checker, tier, "up_to", { positive: true }, `${at}.up_to`);
    if (upTo === undefined) return;
    if (previousUpTo !== undefined && !upTo.greaterThan(previousUpTo)) {
      checker.issues.push({
        field: checker.path(`${at}.up_to`),
        message: `must be greater than the previous tier's up_to (${previousUpTo.toString()}): tiers overlap or are out of order`,
      });
    }
    previousUpTo = upTo;
  });
}

/**
 * Checks one plan item as received from a client. Returns every problem found, each with a field
 * path under `prefix` (e.g. "items[0].tiers[1].up_to"); an empty list means the item can be rated.
 */
export function validatePlanItem(item: unknown, prefix = ""): ValidationIssue[] {
  const checker: Checker = { issues: [], path: (field) => joinPath(prefix, field) };
  if (!isRecord(item)) {
    return [{ field: prefix === "" ? "item" : prefix, message: "must be an object" }];
  }
  const model = item.model;
  if (typeof model !== "string" || !(pricingModels as readonly string[]).includes(model)) {
    checker.issues.push({
      field: checker.path("model"),
      message: `must be one of ${pricingModels.join(", ")}`,
    });
    return checker.issues;
  }
  switch (model as PricingModel) {
    case "FLAT_RATE":
      checkDecimal(checker, item, "flat_amount", { required: true });
      if (item.timing !== "in_advance" && item.timing !== "in_arrears") {
        checker.issues.push({ field: checker.path("timing"), message: "must be in_advance or in_arrears" });
      }
      if (item.billable_unit !== undefined && item.billable_unit !== null) {
        checker.issues.push({
          field: checker.path("billable_unit"),
          message: "FLAT_RATE has no billable unit",
        });
      }
      for (const field of ["included_free", "cap", "rollover"]) {
        if (item[field] !== undefined && item[field] !== null) {
          checker.issues.push({
            field: checker.path(field),
            message: "applies to usage items only, not FLAT_RATE",
          });
        }
      }
      return checker.issues;
    case "PER_UNIT":
      checkDecimal(checker, item, "unit_price", { required: true });
      break;
    case "PERCENTAGE":
      checkDecimal(checker, item, "percent", { required: true, maximum: 100 });
      checkDecimal(checker, item, "min_fee", {});
      break;
    case "INCLUDED_QUOTA":
      checkDecimal(checker, item, "included", { required: true });
      checkDecimal(checker, item, "overage_price", { required: true });
      checkDecimal(checker, item, "block_size", { positive: true, integer: true });
      break;
    case "GRADUATED":
    case "VOLUME":
      checkTiers(checker, item);
      break;
  }
  checkBillableUnit(checker, item);
  checkUsageModifiers(checker, item);
  return checker.issues;
}

/** Checks every item of a plan, with paths like "items[2].unit_price". */
export function validatePlanItems(items: unknown): ValidationIssue[] {
  if (!Array.isArray(items)) return [{ field: "items", message: "must be a list of items" }];
  return items.flatMap((item: unknown, index) => validatePlanItem(item, `items[${index}]`));
}
