import { describe, expect, it } from "vitest";
import { canTransition } from "../subscriptions/domain/lifecycle.ts";
import { subscriptionStatuses } from "../subscriptions/domain/subscription.ts";
import {
  afterFailedAttempt,
  attemptDueAt,
  type DunningTarget,
  movesTo,
  scheduleProblem,
  secretHint,
  stripeKeyProblem,
  subscriptionTarget,
} from "./domain.ts";

const DAY_MS = 86_400_000;
const startedAt = new Date("2026-12-01T00:00:00Z");

describe("dunning schedule", () => {
  it("accepts whole, strictly increasing days and says what is wrong with any other", () => {
    expect(scheduleProblem([0, 3, 7])).toBeUndefined();
    expect(scheduleProblem([2])).toBeUndefined();
    expect(scheduleProblem([])).toMatch(/at least one/);
    expect(scheduleProblem([0, 3, 3])).toMatch(/strictly increasing/);
    expect(scheduleProblem([0, 7, 3])).toMatch(/strictly increasing/);
    expect(scheduleProblem([0, 1.5])).toMatch(/whole number/);
    expect(scheduleProblem([-1])).toMatch(/whole number/);
    expect(scheduleProblem([0, 400])).toMatch(/365/);
    expect(scheduleProblem(Array.from({ length: 11 }, (_, index) => index))).toMatch(/at most 10/);
  });

  it("schedules each attempt from the cycle's start, and exhausts after the last", () => {
    const cycle = { startedAt, scheduleDays: [0, 3, 7], attempts: 0 };
    expect(attemptDueAt(cycle, 0)).toEqual(startedAt);
    expect(attemptDueAt(cycle, 3)).toBeNull();
    expect(afterFailedAttempt(cycle)).toEqual({
      attempts: 1,
      status: "ACTIVE",
      nextAttemptAt: new Date(startedAt.getTime() + 3 * DAY_MS),
    });
    expect(afterFailedAttempt({ ...cycle, attempts: 1 })).toEqual({
      attempts: 2,
      status: "ACTIVE",
      nextAttemptAt: new Date(startedAt.getTime() + 7 * DAY_MS),
    });
    expect(afterFailedAttempt({ ...cycle, attempts: 2 })).toEqual({
      attempts: 3,
      status: "EXHAUSTED",
      nextAttemptAt: null,
    });
    expect(afterFailedAttempt({ startedAt, scheduleDays: [0], attempts: 0 }).status).toBe("EXHAUSTED");
  });
});

describe("what dunning asks of a subscription", () => {
  it("suspends for any written-off invoice, holds PAST_DUE while a failed one is retried, else ACTIVE", () => {
    expect(subscriptionTarget([])).toBe("ACTIVE");
    expect(subscriptionTarget([{ status: "ACTIVE", attempts: 0 }])).toBe("ACTIVE");
    expect(subscriptionTarget([{ status: "ACTIVE", attempts: 1 }])).toBe("PAST_DUE");
    expect(
      subscriptionTarget([
        { status: "RECOVERED", attempts: 2 },
        { status: "CLOSED", attempts: 1 },
      ]),
    ).toBe("ACTIVE");
    expect(
      subscriptionTarget([
        { status: "ACTIVE", attempts: 1 },
        { status: "EXHAUSTED", attempts: 3 },
      ]),
    ).toBe("SUSPENDED");
  });

  it("moves only through transitions the lifecycle allows, and ends at the target or leaves the state alone", () => {
    const targets: DunningTarget[] = ["ACTIVE", "PAST_DUE", "SUSPENDED"];
    for (const from of subscriptionStatuses) {
      for (const target of targets) {
        const moves = movesTo(from, target);
        let current = from;
        for (const move of moves) {
          expect(canTransition(current, move.to), `${current} → ${move.to}`).toBe(true);
          current = move.to;
        }
        const owned = from === "ACTIVE" || from === "PAST_DUE" || from === "SUSPENDED";
        expect(current, `${from} towards ${target}`).toBe(owned ? target : from);
      }
    }
    expect(movesTo("ACTIVE", "SUSPENDED").map((move) => move.reason)).toEqual([
      "payment_failed",
      "dunning_exhausted",
    ]);
    expect(movesTo("SUSPENDED", "ACTIVE")).toEqual([{ to: "ACTIVE", reason: "payment_succeeded" }]);
  });
});

describe("provider secrets", () => {
  it("takes Stripe keys of the tenant's mode only", () => {
    expect(stripeKeyProblem("sk_test_51Habcdefgh", "test")).toBeUndefined();
    expect(stripeKeyProblem("rk_live_51Habcdefgh", "live")).toBeUndefined();
    expect(stripeKeyProblem("sk_live_51Habcdefgh", "test")).toMatch(/live key/);
    expect(stripeKeyProblem("sk_test_51Habcdefgh", "live")).toMatch(/test key/);
    expect(stripeKeyProblem("pk_test_51Habcdefgh", "test")).toMatch(/secret key/);
    expect(stripeKeyProblem("sk_test_short", "test")).toMatch(/secret key/);
  });

  it("hints at a secret by its prefix and last four characters only", () => {
    expect(secretHint("sk_test_51Habcdefgh4242")).toBe("sk_test_…4242");
    expect(secretHint("whatever1234")).toBe("…1234");
  });
});
