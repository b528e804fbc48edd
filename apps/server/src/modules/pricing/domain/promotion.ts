import {
  currencyExponent,
  type DecimalInput,
  isDecimalInput,
  isKnownCurrency,
  parseDecimal,
  type ValidationIssue,
} from "@aforo/core";
import type { Mode } from "../../../db/schema.ts";

export const promotionDurations = ["once", "repeating", "forever"] as const;
export type PromotionDuration = (typeof promotionDurations)[number];
export type PromotionStatus = "ACTIVE" | "ARCHIVED";

export interface Promotion {
  id: string;
  tenantId: string;
  mode: Mode;
  code: string;
  percentOff: string | null;
  /** A decimal amount in `currency` ("10.00"), like prices. */
  amountOff: string | null;
  currency: string | null;
  duration: PromotionDuration;
  durationInPeriods: number | null;
  expiresAt: Date | null;
  maxRedemptions: number | null;
  /** Empty: any offering. */
  offeringIds: string[];
  status: PromotionStatus;
  createdAt: Date;
  archivedAt: Date | null;
}

/** Codes compare case-insensitively: "SAVE10" and "save10" are one code. */
export function normalizeCode(code: string): string {
  return code.trim().toUpperCase();
}

export type RedemptionRefusal = "archived" | "expired" | "exhausted" | "offering_not_eligible";

type Redeemable = Pick<Promotion, "status" | "expiresAt" | "maxRedemptions" | "offeringIds">;

/** Why a promotion cannot be redeemed now, or undefined when it can. */
export function redemptionRefusal(
  promotion: Redeemable,
  now: Date,
  redemptionsSoFar: number,
  offeringId?: string,
): RedemptionRefusal | undefined {
  if (promotion.status === "ARCHIVED") return "archived";
  // expires_at is the first instant the code no longer works.
  if (promotion.expiresAt !== null && promotion.expiresAt.getTime() <= now.getTime()) return "expired";
  if (promotion.maxRedemptions !== null && redemptionsSoFar >= promotion.maxRedemptions) return "exhausted";
  if (
    offeringId !== undefined &&
    promotion.offeringIds.length > 0 &&
    !promotion.offeringIds.includes(offeringId)
  ) {
    return "offering_not_eligible";
  }
  return undefined;
}

/**
 * True when the promotion can be redeemed at `now` after `redemptionsSoFar` redemptions (and, when
 * `offeringId` is given, for that offering). Subscriptions call it when a code is applied.
 */
export function promotionIsRedeemable(
  promotion: Redeemable,
  now: Date,
  redemptionsSoFar: number,
  offeringId?: string,
): boolean {
  return redemptionRefusal(promotion, now, redemptionsSoFar, offeringId) === undefined;
}

export interface PromotionRulesInput {
  percent_off?: DecimalInput | undefined;
  amount_off?: DecimalInput | undefined;
  currency?: string | undefined;
  duration: PromotionDuration;
  duration_in_periods?: number | undefined;
  expires_at?: string | undefined;
}

function checkDiscount(input: PromotionRulesInput): ValidationIssue[] {
  const hasPercent = input.percent_off !== undefined;
  const hasAmount = input.amount_off !== undefined;
  if (hasPercent === hasAmount) {
    const message = "give exactly one of percent_off and amount_off";
    return [{ field: hasPercent ? "amount_off" : "percent_off", message }];
  }
  if (input.percent_off !== undefined) {
    const issues: ValidationIssue[] = [];
    if (!isDecimalInput(input.percent_off)) return [{ field: "percent_off", message: "must be a decimal" }];
    const percent = parseDecimal(input.percent_off);
    if (!percent.greaterThan(0) || percent.greaterThan(100)) {
      issues.push({ field: "percent_off", message: "must be greater than 0 and at most 100" });
    }
    if (input.currency !== undefined)
      issues.push({ field: "currency", message: "applies to amount_off only" });
    return issues;
  }
  const amountOff = input.amount_off as DecimalInput;
  if (!isDecimalInput(amountOff)) return [{ field: "amount_off", message: "must be a decimal amount" }];
  const issues: ValidationIssue[] = [];
  const amount = parseDecimal(amountOff);
  if (!amount.greaterThan(0)) issues.push({ field: "amount_off", message: "must be greater than 0" });
  if (input.currency === undefined) {
    issues.push({ field: "currency", message: "is required with amount_off" });
  } else if (isKnownCurrency(input.currency) && amount.decimalPlaces() > currencyExponent(input.currency)) {
    issues.push({ field: "amount_off", message: `has more decimals than ${input.currency} has minor units` });
  }
  return issues;
}

/** Business rules the schema cannot say; the currency's existence is checked by the caller (own problem type). */
export function checkPromotionRules(input: PromotionRulesInput, now: Date): ValidationIssue[] {
  const issues = checkDiscount(input);
  if (input.duration === "repeating" && input.duration_in_periods === undefined) {
    issues.push({ field: "duration_in_periods", message: "is required when duration is repeating" });
  }
  if (input.duration !== "repeating" && input.duration_in_periods !== undefined) {
    issues.push({ field: "duration_in_periods", message: "applies only when duration is repeating" });
  }
  if (input.expires_at !== undefined && new Date(input.expires_at).getTime() <= now.getTime()) {
    issues.push({ field: "expires_at", message: "must lie in the future" });
  }
  return issues;
}
