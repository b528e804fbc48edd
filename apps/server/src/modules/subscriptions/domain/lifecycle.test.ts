import { AforoError } from "@aforo/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  advance,
  allowedTransitions,
  cancel,
  canTransition,
  changePlan,
  fractionRemaining,
  isDue,
  type NewSubscriptionInput,
  newSubscription,
  nextDueAt,
  pause,
  resume,
  subscriptionPeriodAt,
  subscriptionPeriodsBetween,
  transition,
} from "./lifecycle.ts";
import { type Subscription, type SubscriptionStatus, subscriptionStatuses } from "./subscription.ts";

const at = (iso: string) => new Date(iso);
const DAY = 86_400_000;
const NOW = at("2026-03-10T12:00:00Z");

function input(overrides: Partial<NewSubscriptionInput> = {}): NewSubscriptionInput {
  return {
    id: "sub_1",
    tenantId: "ten_1",
    mode: "test",
    customerId: "cus_1",
    offeringId: "off_1",
    trialDays: 0,
    items: [{ ratePlanId: "rp_1", version: 2 }],
    billingPeriod: { interval: "month", count: 1 },
    currency: "USD",
    ...overrides,
  };
}

function created(overrides: Partial<NewSubscriptionInput> = {}, now = NOW): Subscription {
  return newSubscription(input(overrides), now).subscription;
}

function expectRefused(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(AforoError);
    expect((error as AforoError).status).toBe(409);
    expect((error as AforoError).slug).toBe("invalid-transition");
    return;
  }
  throw new Error("expected the transition to be refused");
}

describe("the transition table", () => {
  it("allows exactly the listed moves and none out of the terminal states", () => {
    expect(allowedTransitions.EXPIRED).toEqual([]);
    expect(allowedTransitions.CANCELLED).toEqual([]);
    expect(canTransition("CREATED", "TRIALING")).toBe(true);
    expect(canTransition("CREATED", "PAUSED")).toBe(false);
    expect(canTransition("PAUSED", "EXPIRING_SOON")).toBe(false);
    expect(canTransition("SUSPENDED", "EXPIRED")).toBe(true);
    expect(canTransition("ACTIVE", "ACTIVE")).toBe(false);
  });

  it("lets every non-terminal state be cancelled", () => {
    for (const status of subscriptionStatuses) {
      expect(canTransition(status, "CANCELLED")).toBe(status !== "EXPIRED" && status !== "CANCELLED");
    }
  });

  it("transition() refuses any move the table does not list", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...subscriptionStatuses),
        fc.constantFrom(...subscriptionStatuses),
        (from, to) => {
          const subscription = { ...created(), status: from as SubscriptionStatus };
          if (canTransition(from, to))
            expect(transition(subscription, to, NOW, "test").subscription.status).toBe(to);
          else expectRefused(() => transition(subscription, to, NOW, "test"));
        },
      ),
    );
  });
});

describe("newSubscription", () => {
  it("starts ACTIVE now without a trial, period anchored on today's day", () => {
    const { subscription, phases } = newSubscription(input(), NOW);
    expect(subscription).toMatchObject({
      status: "ACTIVE",
      startAt: NOW,
      trialEndAt: null,
      billingAnchorDay: 10,
      currentPeriodStart: NOW,
      currentPeriodEnd: at("2026-04-10T00:00:00Z"),
      version: 1,
    });
    expect(phases).toEqual([
      {
        status: "ACTIVE",
        offeringId: "off_1",
        items: subscription.items,
        reason: "subscribed",
        startedAt: NOW,
        planChange: null,
      },
    ]);
  });

  it("starts TRIALING with the trial as its first period, paid periods anchored on the trial's end", () => {
    const subscription = created({ trialDays: 14 });
    expect(subscription).toMatchObject({
      status: "TRIALING",
      trialEndAt: at("2026-03-24T12:00:00Z"),
      billingAnchorDay: 24,
      currentPeriodStart: NOW,
      currentPeriodEnd: at("2026-03-24T12:00:00Z"),
    });
  });

  it("waits in CREATED for a future start, its current period the first one", () => {
    const { subscription, phases } = newSubscription(
      input({ startAt: at("2026-04-01T00:00:00Z"), trialDays: 7 }),
      NOW,
    );
    expect(subscription).toMatchObject({
      status: "CREATED",
      trialEndAt: at("2026-04-08T00:00:00Z"),
      currentPeriodStart: at("2026-04-01T00:00:00Z"),
      currentPeriodEnd: at("2026-04-08T00:00:00Z"),
    });
    expect(phases[0]).toMatchObject({ status: "CREATED", startedAt: NOW });
  });

  it("makes a past start ACTIVE from that instant without a trial, its period the one containing now", () => {
    const { subscription, phases } = newSubscription(
      input({ startAt: at("2025-12-15T00:00:00Z"), trialDays: 30 }),
      NOW,
    );
    expect(subscription).toMatchObject({
      status: "ACTIVE",
      trialEndAt: null,
      billingAnchorDay: 15,
      currentPeriodStart: at("2026-02-15T00:00:00Z"),
      currentPeriodEnd: at("2026-03-15T00:00:00Z"),
    });
    expect(phases[0]).toMatchObject({ status: "ACTIVE", startedAt: at("2025-12-15T00:00:00Z") });
    expect(subscriptionPeriodsBetween(subscription, subscription.startAt, NOW)).toHaveLength(3);
  });

  it("anchors on the 31st and clamps to February", () => {
    const subscription = created({ billingAnchorDay: 31 }, at("2026-01-31T08:00:00Z"));
    expect(subscription.currentPeriodEnd).toEqual(at("2026-02-28T00:00:00Z"));
    const later = advance(subscription, at("2026-03-01T00:00:00Z")).subscription;
    expect([later.currentPeriodStart, later.currentPeriodEnd]).toEqual([
      at("2026-02-28T00:00:00Z"),
      at("2026-03-31T00:00:00Z"),
    ]);
  });

  it("refuses an anchor day on daily and weekly plans", () => {
    expect(() => created({ billingPeriod: { interval: "week", count: 1 }, billingAnchorDay: 3 })).toThrow(
      AforoError,
    );
    expect(created({ billingPeriod: { interval: "week", count: 1 } }).billingAnchorDay).toBeNull();
  });
});

describe("advance", () => {
  it("changes nothing before anything is due", () => {
    const subscription = created({ trialDays: 14 });
    const result = advance(subscription, new Date(NOW.getTime() + DAY));
    expect(result.changed).toBe(false);
    expect(result.subscription).toBe(subscription);
    expect(isDue(subscription, new Date(NOW.getTime() + DAY))).toBe(false);
  });

  it("ends the trial exactly at trialEndAt and rolls into the first paid period", () => {
    const subscription = created({ trialDays: 14 });
    const trialEnd = at("2026-03-24T12:00:00Z");
    expect(advance(subscription, new Date(trialEnd.getTime() - 1)).subscription.status).toBe("TRIALING");
    const result = advance(subscription, trialEnd);
    expect(result.subscription).toMatchObject({
      status: "ACTIVE",
      currentPeriodStart: trialEnd,
      currentPeriodEnd: at("2026-04-24T00:00:00Z"),
    });
    expect(result.phases).toEqual([
      expect.objectContaining({ status: "ACTIVE", reason: "trial_ended", startedAt: trialEnd }),
    ]);
  });

  it("takes several due steps at once, each at its own instant", () => {
    const subscription = newSubscription(
      input({ startAt: at("2026-04-01T00:00:00Z"), trialDays: 7 }),
      NOW,
    ).subscription;
    const result = advance(subscription, at("2026-05-02T00:00:00Z"));
    expect(result.phases.map((phase) => [phase.status, phase.startedAt.toISOString()])).toEqual([
      ["TRIALING", "2026-04-01T00:00:00.000Z"],
      ["ACTIVE", "2026-04-08T00:00:00.000Z"],
    ]);
    expect(result.subscription.currentPeriodStart).toEqual(at("2026-04-08T00:00:00Z"));
    expect(result.subscription.currentPeriodEnd).toEqual(at("2026-05-08T00:00:00Z"));
  });

  it("rolls the period forward with no phase", () => {
    const result = advance(created(), at("2026-06-11T00:00:00Z"));
    expect(result.changed).toBe(true);
    expect(result.phases).toEqual([]);
    expect(result.subscription.currentPeriodStart).toEqual(at("2026-06-10T00:00:00Z"));
  });

  it("expires a scheduled cancellation at the end of the period it was scheduled in", () => {
    const scheduled = cancel(created(), at("2026-03-20T00:00:00Z"), true).subscription;
    expect(scheduled).toMatchObject({
      status: "EXPIRING_SOON",
      cancelAtPeriodEnd: true,
      cancelAt: at("2026-04-10T00:00:00Z"),
    });
    expect(nextDueAt(scheduled)).toEqual(at("2026-04-10T00:00:00Z"));
    expect(advance(scheduled, at("2026-04-09T23:59:59Z")).subscription.status).toBe("EXPIRING_SOON");
    const expired = advance(scheduled, at("2026-05-20T00:00:00Z"));
    expect(expired.subscription).toMatchObject({
      status: "EXPIRED",
      endedAt: at("2026-04-10T00:00:00Z"),
      currentPeriodEnd: at("2026-04-10T00:00:00Z"),
    });
    expect(nextDueAt(expired.subscription)).toBeNull();
  });

  it("is idempotent and never moves a subscription backwards (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: -40 * DAY, max: 40 * DAY }),
        fc.integer({ min: 0, max: 800 * DAY }),
        (trialDays, startOffset, elapsed) => {
          const subscription = created({ trialDays, startAt: new Date(NOW.getTime() + startOffset) });
          const later = new Date(NOW.getTime() + elapsed);
          const once = advance(subscription, later).subscription;
          expect(advance(once, later).changed).toBe(false);
          expect(isDue(once, later)).toBe(false);
          if (once.status !== "CREATED") {
            expect(once.currentPeriodStart.getTime()).toBeLessThanOrEqual(later.getTime());
            expect(once.currentPeriodEnd.getTime()).toBeGreaterThan(later.getTime());
          }
          expect(subscriptionPeriodAt(once, later)).toEqual({
            start: once.currentPeriodStart,
            end: once.currentPeriodEnd,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("actions", () => {
  it("cancels immediately from any live state", () => {
    const result = cancel(created(), NOW, false);
    expect(result.subscription).toMatchObject({ status: "CANCELLED", canceledAt: NOW, endedAt: NOW });
    expect(result.phases[0]).toMatchObject({ status: "CANCELLED", reason: "cancelled" });
    expectRefused(() => cancel(result.subscription, NOW, false));
  });

  it("refuses to schedule the cancellation of a subscription that has not started", () => {
    const future = created({ startAt: at("2026-04-01T00:00:00Z") });
    expectRefused(() => cancel(future, NOW, true));
  });

  it("pauses and resumes; a resumed trial converts now, with a stub up to the anchor day", () => {
    const trialing = created({ trialDays: 14 });
    const paused = pause(trialing, at("2026-03-12T00:00:00Z")).subscription;
    expect(paused).toMatchObject({ status: "PAUSED", pausedAt: at("2026-03-12T00:00:00Z") });
    expectRefused(() => pause(paused, NOW));
    const resumed = resume(paused, at("2026-03-15T00:00:00Z")).subscription;
    expect(resumed).toMatchObject({
      status: "ACTIVE",
      pausedAt: null,
      trialEndAt: at("2026-03-15T00:00:00Z"),
      currentPeriodStart: at("2026-03-15T00:00:00Z"),
      currentPeriodEnd: at("2026-03-24T00:00:00Z"),
    });
    expectRefused(() => resume(resumed, NOW));
  });

  it("resume withdraws a scheduled cancellation", () => {
    const scheduled = cancel(created(), NOW, true).subscription;
    const resumed = resume(scheduled, at("2026-03-11T00:00:00Z"));
    expect(resumed.subscription).toMatchObject({
      status: "ACTIVE",
      cancelAtPeriodEnd: false,
      canceledAt: null,
      cancelAt: null,
    });
    expect(resumed.phases[0]?.reason).toBe("cancellation_withdrawn");
  });

  it("changes plan now, keeping the period, and records the share of the period left", () => {
    const subscription = created({}, at("2026-04-01T00:00:00Z"));
    const result = changePlan(subscription, at("2026-04-11T00:00:00Z"), {
      offeringId: "off_2",
      items: [{ ratePlanId: "rp_9", version: 1 }],
    });
    expect(result.subscription).toMatchObject({
      offeringId: "off_2",
      status: "ACTIVE",
      currentPeriodStart: at("2026-04-01T00:00:00Z"),
      currentPeriodEnd: at("2026-05-01T00:00:00Z"),
    });
    expect(result.phases[0]).toMatchObject({
      status: "ACTIVE",
      reason: "plan_changed",
      offeringId: "off_2",
      planChange: {
        previousOfferingId: "off_1",
        previousItems: [{ ratePlanId: "rp_1", version: 2 }],
        fractionRemaining: "0.6666666666666666666666666666666666666667",
      },
    });
    expectRefused(() =>
      changePlan(cancel(subscription, NOW, false).subscription, NOW, { offeringId: "off_2", items: [] }),
    );
  });

  it("computes exact fractions when they terminate", () => {
    const period = { start: at("2026-04-01T00:00:00Z"), end: at("2026-05-01T00:00:00Z") };
    expect(fractionRemaining(period, at("2026-04-16T00:00:00Z"))).toBe("0.5");
    expect(fractionRemaining(period, at("2026-04-01T00:00:00Z"))).toBe("1");
    expect(fractionRemaining(period, at("2026-05-01T00:00:00Z"))).toBe("0");
  });

  it("moves to PAST_DUE and back to ACTIVE for billing", () => {
    const pastDue = transition(created(), "PAST_DUE", NOW, "payment_failed").subscription;
    expect(pastDue.status).toBe("PAST_DUE");
    expect(transition(pastDue, "ACTIVE", NOW, "payment_succeeded").subscription.status).toBe("ACTIVE");
    expect(transition(pastDue, "SUSPENDED", NOW, "dunning_exhausted").phases[0]?.reason).toBe(
      "dunning_exhausted",
    );
  });
});
