import {
  currencyExponent,
  type DecimalInput,
  isDecimalInput,
  isKnownCurrency,
  parseDecimal,
  type ValidationIssue,
} from "@aforo/core";
import type { Mode } from "../../../db/schema.ts";

export const billingModes = ["POSTPAID", "PREPAID", "HYBRID"] as const;
export type BillingMode = (typeof billingModes)[number];

export const offeringStatuses = ["DRAFT", "PUBLISHED", "ARCHIVED"] as const;
export type OfferingStatus = (typeof offeringStatuses)[number];

export const escrowActions = ["BLOCK", "ALERT"] as const;

/** What a prepaid wallet does when it runs low or empty. The threshold is a decimal amount in the offering currency. */
export interface EscrowConfig {
  low_balance_threshold: string;
  on_empty: (typeof escrowActions)[number];
}

export interface Offering {
  id: string;
  tenantId: string;
  mode: Mode;
  name: string;
  description: string | null;
  ratePlanIds: string[];
  billingMode: BillingMode;
  trialDays: number;
  escrow: EscrowConfig | null;
  /** Credits granted to the wallet on subscribe: a decimal amount in the offering currency. */
  initialCredits: string | null;
  currency: string | null;
  status: OfferingStatus;
  createdAt: Date;
  updatedAt: Date;
}

/** DRAFT → PUBLISHED → ARCHIVED, or DRAFT → ARCHIVED. Archived is final; a published offering never goes back to draft. */
export function canTransition(from: OfferingStatus, to: OfferingStatus): boolean {
  if (from === to) return true;
  if (from === "DRAFT") return true;
  return from === "PUBLISHED" && to === "ARCHIVED";
}

/** A prepaid offering without an escrow blocks usage when the wallet is empty (the safe default). */
export function defaultEscrow(billingMode: BillingMode): EscrowConfig | null {
  return billingMode === "PREPAID" ? { low_balance_threshold: "0", on_empty: "BLOCK" } : null;
}

function checkAmount(value: DecimalInput, field: string, currency: string | null): ValidationIssue[] {
  if (!isDecimalInput(value)) return [{ field, message: 'must be a decimal amount (e.g. "10.00")' }];
  const amount = parseDecimal(value);
  if (amount.isNegative() && !amount.isZero()) return [{ field, message: "must not be negative" }];
  if (currency && isKnownCurrency(currency) && amount.decimalPlaces() > currencyExponent(currency)) {
    return [{ field, message: `has more decimals than ${currency} has minor units` }];
  }
  return [];
}

export interface OfferingRulesInput {
  billingMode: BillingMode;
  escrow: { low_balance_threshold: DecimalInput; on_empty: string } | null;
  initialCredits: DecimalInput | null;
  /** The currency asked for, if any. */
  currency: string | null;
  /** The currency of each rate plan, in `rate_plan_ids` order. */
  ratePlanCurrencies: string[];
}

/**
 * An offering sells its rate plans in one currency: every plan must be priced in it, and escrow
 * thresholds and initial credits are amounts in it. Returns the currency to store (the plans' own
 * when none was asked for) or the issues found.
 */
export function checkOfferingRules(
  input: OfferingRulesInput,
): { ok: true; currency: string | null } | { ok: false; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  if (input.currency !== null && !isKnownCurrency(input.currency)) {
    issues.push({ field: "currency", message: `'${input.currency}' is not a known ISO 4217 currency` });
  }
  const currency = input.currency ?? input.ratePlanCurrencies[0] ?? null;
  input.ratePlanCurrencies.forEach((planCurrency, index) => {
    if (currency !== null && planCurrency !== currency) {
      issues.push({
        field: `rate_plan_ids[${index}]`,
        message: `is priced in ${planCurrency}, but the offering sells in ${currency}`,
      });
    }
  });
  if (input.escrow && input.billingMode === "POSTPAID") {
    issues.push({ field: "escrow", message: "applies to PREPAID and HYBRID offerings only" });
  }
  if (input.escrow) {
    issues.push(...checkAmount(input.escrow.low_balance_threshold, "escrow.low_balance_threshold", currency));
  }
  if (input.initialCredits !== null) {
    issues.push(...checkAmount(input.initialCredits, "initial_credits", currency));
    if (currency === null) issues.push({ field: "currency", message: "is required with initial_credits" });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, currency };
}

/**
 * Changes refused while customers are subscribed (their invoices would silently change):
 * removing a rate plan, changing the currency or the billing mode. Returns the fields at fault.
 */
export function guardedChanges(
  before: Pick<Offering, "ratePlanIds" | "currency" | "billingMode">,
  after: Pick<Offering, "ratePlanIds" | "currency" | "billingMode">,
): { field: string; message: string }[] {
  const issues: { field: string; message: string }[] = [];
  const removed = before.ratePlanIds.filter((id) => !after.ratePlanIds.includes(id));
  if (removed.length > 0) {
    issues.push({
      field: "rate_plan_ids",
      message: `cannot remove ${removed.join(", ")} while customers are subscribed`,
    });
  }
  if (before.currency !== after.currency) {
    issues.push({ field: "currency", message: "cannot change while customers are subscribed" });
  }
  if (before.billingMode !== after.billingMode) {
    issues.push({ field: "billing_mode", message: "cannot change while customers are subscribed" });
  }
  return issues;
}
