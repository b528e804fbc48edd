import { AforoError, ExactDecimal, formatDecimal } from "@aforo/core";
import type { Mode } from "../../../db/schema.ts";
import {
  addLocalDays,
  defaultBillingAnchorDay,
  type Period,
  type PeriodAnchor,
  periodContaining,
  remainingShare,
  UTC,
} from "./period.ts";
import {
  type BillingPeriodSpec,
  type PinnedPlan,
  type Subscription,
  type SubscriptionStatus,
  terminalStatuses,
} from "./subscription.ts";

/**
 * Every move the state machine allows; anything else is refused with 409 invalid-transition.
 * EXPIRED and CANCELLED are terminal. Payment-driven moves (PAST_DUE, SUSPENDED, back to ACTIVE)
 * are made by billing through `transition`; operators use the actions below.
 */
export const allowedTransitions: Readonly<Record<SubscriptionStatus, readonly SubscriptionStatus[]>> = {
  CREATED: ["TRIALING", "ACTIVE", "CANCELLED"],
  TRIALING: ["ACTIVE", "PAUSED", "EXPIRING_SOON", "CANCELLED", "EXPIRED"],
  ACTIVE: ["PAST_DUE", "PAUSED", "EXPIRING_SOON", "CANCELLED"],
  PAST_DUE: ["ACTIVE", "SUSPENDED", "CANCELLED"],
  SUSPENDED: ["ACTIVE", "CANCELLED", "EXPIRED"],
  PAUSED: ["ACTIVE", "CANCELLED"],
  EXPIRING_SOON: ["ACTIVE", "EXPIRED", "CANCELLED"],
  EXPIRED: [],
  CANCELLED: [],
};

export function canTransition(from: SubscriptionStatus, to: SubscriptionStatus): boolean {
  return allowedTransitions[from].includes(to);
}

export function isTerminal(status: SubscriptionStatus): boolean {
  return terminalStatuses.includes(status);
}

/** Why a phase began. Billing adds its own ("payment_failed", "payment_succeeded", …). */
export type PhaseReason =
  | "subscribed"
  | "started"
  | "trial_ended"
  | "paused"
  | "resumed"
  | "cancelled"
  | "cancellation_scheduled"
  | "cancellation_withdrawn"
  | "expired"
  | "plan_changed"
  | (string & {});

/** What proration needs when the plan changes mid-period. */
export interface PlanChange {
  previousOfferingId: string;
  previousItems: PinnedPlan[];
  /** The period the change fell in. */
  periodStart: Date;
  periodEnd: Date;
  /** (periodEnd − change) / (periodEnd − periodStart), 40 significant digits (exact when it terminates). */
  fractionRemaining: string;
}

/** One immutable history row: from `startedAt` the subscription had this status and plan. */
export interface PhaseEntry {
  status: SubscriptionStatus;
  offeringId: string;
  items: PinnedPlan[];
  reason: PhaseReason;
  startedAt: Date;
  planChange: PlanChange | null;
}

/** A subscription after a change, with the phases the change opened (oldest first). */
export interface Outcome {
  subscription: Subscription;
  phases: PhaseEntry[];
}

function invalidTransition(subscription: Subscription, to: SubscriptionStatus, action: string): AforoError {
  return new AforoError(
    "invalid-transition",
    `Subscription '${subscription.id}' is ${subscription.status} and cannot ${action} (it would move to ${to}).`,
  );
}

function phaseOf(subscription: Subscription, reason: PhaseReason, startedAt: Date): PhaseEntry {
  return {
    status: subscription.status,
    offeringId: subscription.offeringId,
    items: subscription.items,
    reason,
    startedAt,
    planChange: null,
  };
}

function moveTo(
  subscription: Subscription,
  to: SubscriptionStatus,
  at: Date,
  now: Date,
  reason: PhaseReason,
  action: string,
  patch: Partial<Subscription> = {},
): Outcome {
  if (!canTransition(subscription.status, to)) throw invalidTransition(subscription, to, action);
  const next: Subscription = {
    ...subscription,
    ...patch,
    status: to,
    endedAt: isTerminal(to) ? (patch.endedAt ?? at) : subscription.endedAt,
    updatedAt: now,
  };
  return { subscription: next, phases: [phaseOf(next, reason, at)] };
}

// ---- Periods ------------------------------------------------------------------------------------

/** Where paid periods are anchored: the end of the trial, or the start without one. */
export function billingAnchorOf(subscription: Subscription): PeriodAnchor {
  return {
    startAt: subscription.trialEndAt ?? subscription.startAt,
    billingAnchorDay: subscription.billingAnchorDay,
    interval: subscription.billingPeriod.interval,
    count: subscription.billingPeriod.count,
    timeZone: subscription.timezone ?? UTC,
  };
}

/**
 * The subscription's period at `instant`: the trial is one period [startAt, trialEndAt) (nothing
 * is billed in it), then the grid of `billingAnchorOf`. Before the start: the first period.
 */
export function subscriptionPeriodAt(subscription: Subscription, instant: Date): Period {
  const at = Math.max(instant.getTime(), subscription.startAt.getTime());
  const trialEnd = subscription.trialEndAt;
  if (trialEnd && at < trialEnd.getTime()) return { start: subscription.startAt, end: trialEnd };
  return periodContaining(billingAnchorOf(subscription), new Date(at));
}

/** Every period of the subscription that overlaps [from, to), trial included, in order. */
export function subscriptionPeriodsBetween(subscription: Subscription, from: Date, to: Date): Period[] {
  const periods: Period[] = [];
  let at = new Date(Math.max(from.getTime(), subscription.startAt.getTime()));
  while (at.getTime() < to.getTime()) {
    const period = subscriptionPeriodAt(subscription, at);
    periods.push(period);
    at = period.end;
  }
  return periods;
}

/** The next instant `advance` has work to do at; null once terminal. */
export function nextDueAt(subscription: Subscription): Date | null {
  const { status } = subscription;
  if (isTerminal(status)) return null;
  if (status === "CREATED") return subscription.startAt;
  const candidates = [subscription.currentPeriodEnd.getTime()];
  if (status === "TRIALING" && subscription.trialEndAt) candidates.push(subscription.trialEndAt.getTime());
  if (status === "EXPIRING_SOON" && subscription.cancelAt) candidates.push(subscription.cancelAt.getTime());
  return new Date(Math.min(...candidates));
}

export function isDue(subscription: Subscription, now: Date): boolean {
  const due = nextDueAt(subscription);
  return due !== null && due.getTime() <= now.getTime();
}

// ---- Time-driven evolution ----------------------------------------------------------------------

function nextTimedStep(subscription: Subscription, now: Date): Outcome | undefined {
  const time = now.getTime();
  const { status, startAt, trialEndAt, cancelAt } = subscription;
  if (status === "CREATED" && startAt.getTime() <= time) {
    const to = trialEndAt && trialEndAt.getTime() > startAt.getTime() ? "TRIALING" : "ACTIVE";
    return moveTo(subscription, to, startAt, now, "started", "start");
  }
  if (status === "TRIALING" && trialEndAt && trialEndAt.getTime() <= time) {
    return moveTo(subscription, "ACTIVE", trialEndAt, now, "trial_ended", "end its trial");
  }
  if (status === "EXPIRING_SOON" && cancelAt && cancelAt.getTime() <= time) {
    return moveTo(subscription, "EXPIRED", cancelAt, now, "expired", "expire", { endedAt: cancelAt });
  }
  return undefined;
}

/**
 * What time alone does to a subscription by `now`: it starts at `startAt`, its trial ends at
 * `trialEndAt`, a scheduled cancellation expires it at the end of its period, and the current period
 * rolls forward to contain `now`. Several steps may be due at once (a long-unread subscription);
 * each is recorded as a phase at the instant it happened, not at `now`.
 */
export function advance(subscription: Subscription, now: Date): Outcome & { changed: boolean } {
  let current = subscription;
  const phases: PhaseEntry[] = [];
  for (let step = nextTimedStep(current, now); step; step = nextTimedStep(current, now)) {
    current = step.subscription;
    phases.push(...step.phases);
  }
  if (!isTerminal(current.status)) {
    // Never backwards, even if a clock is: periods only roll forward.
    const period = subscriptionPeriodAt(
      current,
      new Date(Math.max(now.getTime(), current.currentPeriodStart.getTime())),
    );
    if (
      period.start.getTime() !== current.currentPeriodStart.getTime() ||
      period.end.getTime() !== current.currentPeriodEnd.getTime()
    ) {
      current = {
        ...current,
        currentPeriodStart: period.start,
        currentPeriodEnd: period.end,
        updatedAt: now,
      };
    }
  }
  return { subscription: current, phases, changed: current !== subscription };
}

// ---- Creation -----------------------------------------------------------------------------------

export interface NewSubscriptionInput {
  id: string;
  tenantId: string;
  mode: Mode;
  customerId: string;
  offeringId: string;
  trialDays: number;
  items: PinnedPlan[];
  billingPeriod: BillingPeriodSpec;
  currency: string;
  startAt?: Date | undefined;
  billingAnchorDay?: number | undefined;
  promotion?: { id: string; code: string } | undefined;
  priceOverrides?: Record<string, unknown> | null | undefined;
  metadata?: Record<string, string> | undefined;
  /** IANA zone of the billing entity (period midnights, trial days); UTC when absent. */
  timezone?: string | undefined;
}

/**
 * A new subscription: a future start waits in CREATED; a start now begins the trial (if the
 * offering has one) or goes ACTIVE; a start in the past (a migration) is ACTIVE from that instant
 * without a trial, its current period the one containing now (bill runs invoice the past ones).
 */
export function newSubscription(input: NewSubscriptionInput, now: Date): Outcome {
  const { interval } = input.billingPeriod;
  if (input.billingAnchorDay !== undefined && interval !== "month" && interval !== "year") {
    throw new AforoError(
      "unprocessable-entity",
      "billing_anchor_day applies to monthly and yearly plans only.",
      {
        errors: [
          {
            field: "billing_anchor_day",
            message: `the plan bills every ${interval}; anchors need month or year`,
          },
        ],
      },
    );
  }
  const timezone = input.timezone ?? UTC;
  const startAt = input.startAt ?? now;
  const past = startAt.getTime() < now.getTime();
  const trialEndAt = !past && input.trialDays > 0 ? addLocalDays(startAt, input.trialDays, timezone) : null;
  const status: SubscriptionStatus =
    startAt.getTime() > now.getTime() ? "CREATED" : trialEndAt ? "TRIALING" : "ACTIVE";
  const draft: Subscription = {
    id: input.id,
    tenantId: input.tenantId,
    mode: input.mode,
    customerId: input.customerId,
    offeringId: input.offeringId,
    status,
    items: input.items,
    billingPeriod: input.billingPeriod,
    currency: input.currency,
    startAt,
    trialEndAt,
    currentPeriodStart: startAt,
    currentPeriodEnd: startAt,
    billingAnchorDay:
      input.billingAnchorDay ?? defaultBillingAnchorDay(interval, trialEndAt ?? startAt, timezone),
    cancelAtPeriodEnd: false,
    cancelAt: null,
    canceledAt: null,
    pausedAt: null,
    endedAt: null,
    promotionId: input.promotion?.id ?? null,
    promotionCode: input.promotion?.code ?? null,
    priceOverrides: input.priceOverrides ?? null,
    metadata: input.metadata ?? {},
    timezone,
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  const period = subscriptionPeriodAt(draft, now);
  const subscription = { ...draft, currentPeriodStart: period.start, currentPeriodEnd: period.end };
  const startedAt = status === "CREATED" ? now : startAt;
  return { subscription, phases: [phaseOf(subscription, "subscribed", startedAt)] };
}

// ---- Actions (applied after `advance`) ----------------------------------------------------------

/**
 * Immediately: CANCELLED now. At period end: EXPIRING_SOON now, EXPIRED when the current period
 * ends (a trial's period ends with the trial).
 */
export function cancel(subscription: Subscription, now: Date, atPeriodEnd: boolean): Outcome {
  if (!atPeriodEnd) {
    return moveTo(subscription, "CANCELLED", now, now, "cancelled", "be cancelled", {
      canceledAt: now,
      cancelAtPeriodEnd: false,
      cancelAt: null,
      endedAt: now,
    });
  }
  return moveTo(
    subscription,
    "EXPIRING_SOON",
    now,
    now,
    "cancellation_scheduled",
    "be cancelled at period end",
    {
      canceledAt: now,
      cancelAtPeriodEnd: true,
      cancelAt: subscription.currentPeriodEnd,
    },
  );
}

export function pause(subscription: Subscription, now: Date): Outcome {
  return moveTo(subscription, "PAUSED", now, now, "paused", "be paused", { pausedAt: now });
}

/**
 * PAUSED → ACTIVE, or EXPIRING_SOON → ACTIVE (the scheduled cancellation is withdrawn). The
 * machine has no way back into TRIALING, so a trial left early ends now and paid periods start now.
 */
export function resume(subscription: Subscription, now: Date): Outcome {
  const { status } = subscription;
  if (status !== "PAUSED" && status !== "EXPIRING_SOON") {
    throw new AforoError(
      "invalid-transition",
      `Subscription '${subscription.id}' is ${status}; only PAUSED or EXPIRING_SOON subscriptions resume.`,
    );
  }
  const trialCutShort = subscription.trialEndAt !== null && subscription.trialEndAt.getTime() > now.getTime();
  const patch: Partial<Subscription> =
    status === "PAUSED" ? { pausedAt: null } : { cancelAtPeriodEnd: false, canceledAt: null, cancelAt: null };
  if (trialCutShort) patch.trialEndAt = now;
  const reason = status === "PAUSED" ? "resumed" : "cancellation_withdrawn";
  return withCurrentPeriod(moveTo(subscription, "ACTIVE", now, now, reason, "resume", patch), now);
}

/** Recomputes the current period after a change that moved the trial's end. */
function withCurrentPeriod(outcome: Outcome, now: Date): Outcome {
  const { subscription } = outcome;
  if (isTerminal(subscription.status)) return outcome;
  const period = subscriptionPeriodAt(subscription, now);
  return {
    subscription: { ...subscription, currentPeriodStart: period.start, currentPeriodEnd: period.end },
    phases: outcome.phases,
  };
}

/** (end − at) / (end − start) of the period, as a decimal string. */
export function fractionRemaining(period: Period, at: Date): string {
  const { remainingMs, periodMs } = remainingShare(period, at);
  if (periodMs <= 0) return "0";
  return formatDecimal(new ExactDecimal(remainingMs).div(periodMs));
}

/**
 * Re-pins the subscription to another offering's plans now, keeping its status and billing
 * period; the phase carries the share of the period left, for the proration lines.
 */
export function changePlan(
  subscription: Subscription,
  now: Date,
  plan: { offeringId: string; items: PinnedPlan[] },
): Outcome {
  if (isTerminal(subscription.status)) {
    throw new AforoError(
      "invalid-transition",
      `Subscription '${subscription.id}' is ${subscription.status} and its plan can no longer change.`,
    );
  }
  const period = { start: subscription.currentPeriodStart, end: subscription.currentPeriodEnd };
  const next: Subscription = {
    ...subscription,
    offeringId: plan.offeringId,
    items: plan.items,
    updatedAt: now,
  };
  const phase: PhaseEntry = {
    ...phaseOf(next, "plan_changed", now),
    planChange: {
      previousOfferingId: subscription.offeringId,
      previousItems: subscription.items,
      periodStart: period.start,
      periodEnd: period.end,
      fractionRemaining: fractionRemaining(period, now),
    },
  };
  return { subscription: next, phases: [phase] };
}

/** Any allowed move, for billing and dunning (PAST_DUE, SUSPENDED, ACTIVE on payment, EXPIRED). */
export function transition(
  subscription: Subscription,
  to: SubscriptionStatus,
  now: Date,
  reason: PhaseReason,
): Outcome {
  const patch: Partial<Subscription> = {};
  if (to === "CANCELLED") patch.canceledAt = now;
  if (subscription.status === "PAUSED") patch.pausedAt = null;
  if (subscription.status === "EXPIRING_SOON" && to !== "EXPIRED") {
    Object.assign(patch, { cancelAtPeriodEnd: false, cancelAt: null });
  }
  // Out of TRIALING early (the trial converts now): paid periods start now.
  if (subscription.status === "TRIALING" && to === "ACTIVE" && subscription.trialEndAt) {
    if (subscription.trialEndAt.getTime() > now.getTime()) patch.trialEndAt = now;
  }
  return withCurrentPeriod(moveTo(subscription, to, now, now, reason, `move to ${to}`, patch), now);
}
