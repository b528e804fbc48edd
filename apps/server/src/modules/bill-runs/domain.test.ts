import { describe, expect, it } from "vitest";
import { newSubscription } from "../subscriptions/domain/lifecycle.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";
import {
  type BillRun,
  groupAdjustments,
  isAbandoned,
  MAX_STORED_INVOICE_IDS,
  periodsToInvoice,
  withInvoiceIds,
} from "./domain.ts";

const NOW = new Date("2026-11-28T10:00:00Z");

function monthly(startAt: string, extra: { trialDays?: number; now?: Date } = {}): Subscription {
  return newSubscription(
    {
      id: "sub_1",
      tenantId: "ten_1",
      mode: "test",
      customerId: "cus_1",
      offeringId: "off_1",
      trialDays: extra.trialDays ?? 0,
      items: [{ ratePlanId: "rp_1", version: 1 }],
      billingPeriod: { interval: "month", count: 1 },
      currency: "USD",
      startAt: new Date(startAt),
    },
    extra.now ?? NOW,
  ).subscription;
}

const iso = (periods: { start: Date; end: Date }[]) =>
  periods.map((period) => [period.start.toISOString(), period.end.toISOString()]);

describe("periodsToInvoice", () => {
  it("lists every period that ended by as_of of a subscription started three months ago, not the current one", () => {
    expect(iso(periodsToInvoice(monthly("2026-08-28T00:00:00Z"), null, NOW))).toEqual([
      ["2026-08-28T00:00:00.000Z", "2026-09-28T00:00:00.000Z"],
      ["2026-09-28T00:00:00.000Z", "2026-10-28T00:00:00.000Z"],
      ["2026-10-28T00:00:00.000Z", "2026-11-28T00:00:00.000Z"],
    ]);
  });

  it("starts after the last period already invoiced, so a second run finds nothing", () => {
    const subscription = monthly("2026-08-28T00:00:00Z");
    expect(iso(periodsToInvoice(subscription, new Date("2026-10-28T00:00:00Z"), NOW))).toEqual([
      ["2026-10-28T00:00:00.000Z", "2026-11-28T00:00:00.000Z"],
    ]);
    expect(periodsToInvoice(subscription, new Date("2026-11-28T00:00:00Z"), NOW)).toEqual([]);
  });

  it("never invoices the trial", () => {
    const subscription = monthly("2026-09-01T00:00:00Z", {
      trialDays: 14,
      now: new Date("2026-09-01T00:00:00Z"),
    });
    const periods = periodsToInvoice(subscription, null, NOW);
    expect(periods[0]?.start.toISOString()).toBe("2026-09-15T00:00:00.000Z");
  });

  it("invoices the shortened last period of a subscription that ended mid-period, once it has ended", () => {
    const subscription: Subscription = {
      ...monthly("2026-08-28T00:00:00Z"),
      status: "CANCELLED",
      endedAt: new Date("2026-10-10T00:00:00Z"),
    };
    expect(iso(periodsToInvoice(subscription, null, NOW))).toEqual([
      ["2026-08-28T00:00:00.000Z", "2026-09-28T00:00:00.000Z"],
      ["2026-09-28T00:00:00.000Z", "2026-10-10T00:00:00.000Z"],
    ]);
    expect(periodsToInvoice(subscription, new Date("2026-10-10T00:00:00Z"), NOW)).toEqual([]);
  });

  it("has nothing for a subscription that has not started", () => {
    expect(periodsToInvoice(monthly("2026-12-05T00:00:00Z"), null, NOW)).toEqual([]);
  });
});

describe("bill run bookkeeping", () => {
  it("caps the stored invoice ids", () => {
    const many = Array.from({ length: MAX_STORED_INVOICE_IDS + 5 }, (_, index) => `inv_${index}`);
    expect(withInvoiceIds([], many)).toHaveLength(MAX_STORED_INVOICE_IDS);
    expect(withInvoiceIds(["inv_a"], ["inv_b"])).toEqual(["inv_a", "inv_b"]);
  });

  it("judges a RUNNING run abandoned only once its heartbeat is older than the limit", () => {
    const run = { status: "RUNNING", heartbeatAt: new Date(NOW.getTime() - 60_000) } as BillRun;
    expect(isAbandoned(run, NOW, 120_000)).toBe(false);
    expect(isAbandoned(run, NOW, 30_000)).toBe(true);
    expect(isAbandoned({ ...run, status: "FAILED" }, NOW, 30_000)).toBe(false);
  });
});

describe("groupAdjustments", () => {
  const subscription = monthly("2026-08-28T00:00:00Z");
  const event = (id: string, at: string, unit = "bu_1", value: string | null = null) => ({
    id,
    billableUnitId: unit,
    occurredAt: new Date(at),
    quantity: "1",
    value,
  });

  it("groups late events by the closed period and unit they belong to, event ids oldest first", () => {
    const groups = groupAdjustments(subscription, [
      event("evt_2", "2026-10-20T00:00:00Z", "bu_1", "2.5"),
      event("evt_1", "2026-10-02T00:00:00Z", "bu_1", "4"),
      event("evt_3", "2026-10-03T00:00:00Z", "bu_2"),
      event("evt_4", "2026-09-30T00:00:00Z", "bu_1"),
    ]);
    const byKey = new Map(
      groups.map((group) => [`${group.periodStart.toISOString()} ${group.billableUnitId}`, group]),
    );
    expect(byKey.get("2026-09-28T00:00:00.000Z bu_1")?.eventIds).toEqual(["evt_4", "evt_1", "evt_2"]);
    expect(byKey.get("2026-09-28T00:00:00.000Z bu_1")?.valueSum).toBe("7.5");
    expect(byKey.get("2026-09-28T00:00:00.000Z bu_2")?.eventCount).toBe(1);
    expect(groups).toHaveLength(2);
  });

  it("with `before`, keeps only periods that ended by then", () => {
    const groups = groupAdjustments(
      subscription,
      [event("evt_1", "2026-09-01T00:00:00Z"), event("evt_2", "2026-10-01T00:00:00Z")],
      new Date("2026-09-28T00:00:00Z"),
    );
    expect(groups.map((group) => group.eventIds)).toEqual([["evt_1"]]);
  });
});
