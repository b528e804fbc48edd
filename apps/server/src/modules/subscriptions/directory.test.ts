import { describe, expect, it } from "vitest";
import { SubscriptionDirectory } from "./directory.ts";
import { newSubscription } from "./domain/lifecycle.ts";
import type { Subscription } from "./domain/subscription.ts";

const NOW = new Date("2026-03-10T12:00:00Z");
const scope = { tenantId: "ten_1", mode: "test" as const };

function subscription(id: string, overrides: Partial<Subscription> = {}): Subscription {
  const { subscription } = newSubscription(
    {
      id,
      ...scope,
      customerId: "cus_1",
      offeringId: "off_1",
      trialDays: 0,
      items: [{ ratePlanId: "rp_1", version: 1 }],
      billingPeriod: { interval: "month", count: 1 },
      currency: "USD",
    },
    NOW,
  );
  return { ...subscription, ...overrides };
}

describe("SubscriptionDirectory", () => {
  it("keeps the newest version whatever order copies arrive in", () => {
    const directory = new SubscriptionDirectory();
    expect(directory.put(subscription("sub_1", { version: 2, status: "PAUSED" }))).toBe(true);
    expect(directory.put(subscription("sub_1", { version: 1 }))).toBe(false);
    expect(directory.put(subscription("sub_1", { version: 2, status: "PAUSED" }))).toBe(false);
    expect(directory.get(scope, "sub_1")?.status).toBe("PAUSED");
  });

  it("finds a customer's subscriptions only in their tenant and mode, oldest first", () => {
    const directory = new SubscriptionDirectory();
    directory.put(subscription("sub_2", { createdAt: new Date(NOW.getTime() + 1) }));
    directory.put(subscription("sub_1"));
    directory.put(subscription("sub_3", { mode: "live" }));
    expect(directory.forCustomer(scope, "cus_1").map((item) => item.id)).toEqual(["sub_1", "sub_2"]);
    expect(directory.forCustomer({ ...scope, mode: "live" }, "cus_1").map((item) => item.id)).toEqual([
      "sub_3",
    ]);
    expect(directory.get({ tenantId: "ten_2", mode: "test" }, "sub_1")).toBeUndefined();
  });

  it("forgets subscriptions that ended before the cut-off, and only those", () => {
    const directory = new SubscriptionDirectory();
    directory.put(
      subscription("sub_old", { status: "CANCELLED", endedAt: new Date("2026-03-01T00:00:00Z") }),
    );
    directory.put(
      subscription("sub_recent", { status: "EXPIRED", endedAt: new Date("2026-03-10T00:00:00Z") }),
    );
    directory.put(subscription("sub_live"));
    expect(directory.prune(new Date("2026-03-09T00:00:00Z"))).toBe(1);
    expect(
      directory
        .forCustomer(scope, "cus_1")
        .map((item) => item.id)
        .sort(),
    ).toEqual(["sub_live", "sub_recent"]);
  });
});
