import type { Mode } from "../../db/schema.ts";
import type { SubscriptionStatus } from "../subscriptions/domain/subscription.ts";

const DAY_MS = 86_400_000;

export const paymentStatuses = ["PENDING", "SUCCEEDED", "FAILED"] as const;
export type PaymentStatus = (typeof paymentStatuses)[number];

/** Who made a payment: the operator (POST /v1/invoices/{id}/pay), finalisation, dunning, a top-up. */
export const paymentTriggers = ["operator", "automatic", "dunning", "top_up"] as const;
export type PaymentTrigger = (typeof paymentTriggers)[number];

export const providerNames = ["manual", "stripe"] as const;
export type ProviderName = (typeof providerNames)[number];

/** Providers a customer's payment method can be saved at (the manual one has no saved methods). */
export const methodProviders = ["stripe"] as const;
export type MethodProvider = (typeof methodProviders)[number];

export const dunningStatuses = ["ACTIVE", "RECOVERED", "EXHAUSTED", "CLOSED"] as const;
export type DunningStatus = (typeof dunningStatuses)[number];

export interface Payment {
  id: string;
  tenantId: string;
  mode: Mode;
  customerId: string;
  invoiceId: string | null;
  topUpRequestId: string | null;
  dunningCycleId: string | null;
  paymentMethodId: string | null;
  provider: ProviderName;
  amount: bigint;
  currency: string;
  status: PaymentStatus;
  providerPaymentId: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  /** 1 for the first payment of its invoice (or top-up request), 2 for the next, … */
  attempt: number;
  trigger: PaymentTrigger;
  /** Sent to the provider with the charge; a resumed charge sends it again. */
  idempotencyKey: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface PaymentMethod {
  id: string;
  tenantId: string;
  mode: Mode;
  customerId: string;
  provider: MethodProvider;
  providerPaymentMethodId: string;
  providerCustomerId: string | null;
  isDefault: boolean;
  createdAt: Date;
  removedAt: Date | null;
}

export interface DunningCycle {
  id: string;
  tenantId: string;
  mode: Mode;
  invoiceId: string;
  subscriptionId: string;
  customerId: string;
  status: DunningStatus;
  /** Attempts are made at startedAt + scheduleDays[i] (the tenant's schedule when it started). */
  scheduleDays: number[];
  /** Attempts made and failed so far. */
  attempts: number;
  /** Null while an attempt is with the provider, and once the cycle has ended. */
  nextAttemptAt: Date | null;
  lastFailureCode: string | null;
  lastFailureMessage: string | null;
  /** False while the subscription (and its consumer keys) may not reflect this cycle yet. */
  subscriptionSynced: boolean;
  startedAt: Date;
  endedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface PaymentSettings {
  stripe: { secretHint: string; updatedAt: Date } | null;
  /** Finalised invoices are charged to the customer's default method, with dunning (default on). */
  automaticCollection: boolean;
  dunningScheduleDays: number[];
  /** The schedule is the default one (the tenant never set its own). */
  dunningScheduleIsDefault: boolean;
  updatedAt: Date | null;
}

// ---- Dunning schedule ---------------------------------------------------------------------------

/** Immediately, after 3 days, after 7 days; then the invoice is written off and access suspended. */
export const DEFAULT_DUNNING_SCHEDULE_DAYS: readonly number[] = [0, 3, 7];
export const MAX_DUNNING_ATTEMPTS = 10;
export const MAX_DUNNING_DAY = 365;

/** What is wrong with a schedule (whole days after collection starts, strictly increasing). */
export function scheduleProblem(days: readonly number[]): string | undefined {
  if (days.length === 0) return "needs at least one attempt";
  if (days.length > MAX_DUNNING_ATTEMPTS) return `allows at most ${MAX_DUNNING_ATTEMPTS} attempts`;
  for (const [index, day] of days.entries()) {
    if (!Number.isSafeInteger(day) || day < 0 || day > MAX_DUNNING_DAY) {
      return `day ${day} must be a whole number from 0 to ${MAX_DUNNING_DAY}`;
    }
    const previous = days[index - 1];
    if (previous !== undefined && day <= previous) return "days must be strictly increasing";
  }
  return undefined;
}

/** When attempt `index` (0-based) of a cycle is due; null past the last one. */
export function attemptDueAt(
  cycle: Pick<DunningCycle, "startedAt" | "scheduleDays">,
  index: number,
): Date | null {
  const day = cycle.scheduleDays[index];
  return day === undefined ? null : new Date(cycle.startedAt.getTime() + day * DAY_MS);
}

/** A cycle after one more failed attempt: the next one scheduled, or EXHAUSTED after the last. */
export function afterFailedAttempt(cycle: Pick<DunningCycle, "startedAt" | "scheduleDays" | "attempts">): {
  attempts: number;
  status: "ACTIVE" | "EXHAUSTED";
  nextAttemptAt: Date | null;
} {
  const attempts = cycle.attempts + 1;
  const nextAttemptAt = attemptDueAt(cycle, attempts);
  return { attempts, status: nextAttemptAt ? "ACTIVE" : "EXHAUSTED", nextAttemptAt };
}

// ---- What dunning does to the subscription ------------------------------------------------------

/** The state dunning asks of a subscription: SUSPENDED, PAST_DUE, or (paid up) ACTIVE. */
export type DunningTarget = "ACTIVE" | "PAST_DUE" | "SUSPENDED";

/**
 * From every cycle of the subscription: an exhausted one (an invoice written off, still unpaid)
 * suspends it; an active one with a failed attempt makes it PAST_DUE; otherwise it is paid up.
 */
export function subscriptionTarget(
  cycles: readonly Pick<DunningCycle, "status" | "attempts">[],
): DunningTarget {
  if (cycles.some((cycle) => cycle.status === "EXHAUSTED")) return "SUSPENDED";
  if (cycles.some((cycle) => cycle.status === "ACTIVE" && cycle.attempts > 0)) return "PAST_DUE";
  return "ACTIVE";
}

export interface SubscriptionMove {
  to: SubscriptionStatus;
  reason: string;
}

/**
 * The moves (each one the lifecycle allows) that take a subscription to the target. Only the
 * states dunning owns are moved: ACTIVE, PAST_DUE and SUSPENDED. A trial, a pause, a scheduled
 * cancellation or an ended subscription is left alone.
 */
export function movesTo(current: SubscriptionStatus, target: DunningTarget): SubscriptionMove[] {
  const failed = { to: "PAST_DUE", reason: "payment_failed" } as const;
  const suspended = { to: "SUSPENDED", reason: "dunning_exhausted" } as const;
  const recovered = { to: "ACTIVE", reason: "payment_succeeded" } as const;
  switch (target) {
    case "SUSPENDED":
      if (current === "ACTIVE") return [failed, suspended];
      return current === "PAST_DUE" ? [suspended] : [];
    case "PAST_DUE":
      if (current === "ACTIVE") return [failed];
      return current === "SUSPENDED" ? [recovered, failed] : [];
    case "ACTIVE":
      return current === "PAST_DUE" || current === "SUSPENDED" ? [recovered] : [];
  }
}

// ---- Provider secrets ---------------------------------------------------------------------------

/** Stripe secret (sk_) or restricted (rk_) keys; the mode must match the tenant's mode. */
const STRIPE_KEY = /^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$/;

export function stripeKeyProblem(key: string, mode: Mode): string | undefined {
  const match = STRIPE_KEY.exec(key);
  if (!match) return "must be a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_…)";
  if (match[2] !== mode) {
    return `is a ${match[2]} key; this ${mode === "test" ? "sandbox" : "live"} mode needs a ${mode} key`;
  }
  return undefined;
}

/** Enough of a secret to recognise it, never enough to use it: "sk_test_…4242". */
export function secretHint(secret: string): string {
  const prefix = /^[a-z]+_(test|live)_/.exec(secret)?.[0] ?? "";
  return `${prefix}…${secret.slice(-4)}`;
}
