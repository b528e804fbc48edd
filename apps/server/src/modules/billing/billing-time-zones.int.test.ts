import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

type Method = "GET" | "POST" | "PATCH";
type Body = Record<string, unknown>;

/**
 * The billing entity's time zone cuts the periods: a customer of a New York seller is billed for
 * New York's months (midnight there is 05:00Z in winter, 04:00Z in summer), and every reader of
 * periods (subscription, bill run, usage per period, quota resets) agrees on the same boundaries.
 */
describe("billing periods in the billing entity's time zone", () => {
  let t: TestApp;
  let counter = 0;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  async function world(timezone: string | null, extraItems: Body[] = []) {
    const tenant: TestTenant = await t.createTenant();
    const as = (method: Method, url: string, body?: unknown) =>
      t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });
    const created = async (url: string, body: unknown) => {
      const response = await as("POST", url, body);
      expect(response.statusCode, response.body).toBe(201);
      return response.json();
    };
    if (timezone !== null) {
      await created("/v1/billing_entities", {
        code: "US",
        name: "US",
        legal_name: "Acme Inc.",
        base_currency: "USD",
        timezone,
      });
    }
    await created("/v1/billable_units", {
      key: "calls",
      name: "calls",
      unit_label: "calls",
      aggregation: "SUM",
    });
    const plan = await created("/v1/rate_plans", {
      name: "Per call",
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items: [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" }, ...extraItems],
      entitlements: [
        {
          feature: "calls",
          type: "metered",
          billable_unit: "calls",
          limit: 1_000_000,
          reset: "billing_period",
          overage: "allow",
        },
      ],
    });
    const offering = await created("/v1/offerings", {
      name: "Pay as you go",
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
    const customer = await created("/v1/customers", {
      name: "Ada",
      email: "ada@example.com",
      currency: "USD",
    });
    const subscribe = (startAt: string) =>
      created("/v1/subscriptions", { customer_id: customer.id, offering_id: offering.id, start_at: startAt });
    const meter = async (quantity: string, timestamp: string) => {
      counter += 1;
      const response = await as("POST", "/v1/meter", {
        customer_id: customer.id,
        metric_id: "calls",
        quantity,
        timestamp,
        idempotency_key: `tz-${counter}`,
      });
      expect(response.statusCode, response.body).toBe(202);
      expect(response.json().flags ?? []).not.toContain("RECONCILIATION");
    };
    const billRun = async () => {
      const response = await as("POST", "/v1/bill_runs", {});
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toMatchObject({ status: "COMPLETED" });
      return response.json();
    };
    const invoices = async (subscriptionId: string) => {
      const response = await as("GET", `/v1/invoices?subscription_id=${subscriptionId}&limit=100`);
      expect(response.statusCode, response.body).toBe(200);
      return (response.json().data as Body[]).sort((a, b) =>
        String(a.period_start).localeCompare(String(b.period_start)),
      );
    };
    return { as, customer, subscribe, meter, billRun, invoices };
  }

  it("bills events just before and after New York midnight into the right invoices", async () => {
    const ny = await world("America/New_York");
    // Local midnight of 1 February 2026 in New York (EST, UTC−5).
    t.clock.set("2026-02-01T05:00:00Z");
    const subscription = await ny.subscribe("2026-02-01T05:00:00Z");
    expect(subscription).toMatchObject({
      timezone: "America/New_York",
      billing_anchor_day: 1,
      current_period_start: "2026-02-01T05:00:00.000Z",
      current_period_end: "2026-03-01T05:00:00.000Z",
    });

    t.clock.set("2026-03-01T05:30:00Z");
    await ny.meter("3", "2026-02-10T12:00:00Z");
    // 19:30 on 28 February in New York: February, although it is already March in UTC.
    await ny.meter("100", "2026-03-01T00:30:00Z");
    // 23:59:59.999 on 28 February in New York.
    await ny.meter("7", "2026-03-01T04:59:59.999Z");
    // Midnight on 1 March in New York: the next period.
    await ny.meter("11", "2026-03-01T05:00:00Z");

    const february = await ny.billRun();
    expect(february.invoices_created).toBe(1);
    const [feb] = await ny.invoices(subscription.id);
    expect(feb).toMatchObject({
      period_start: "2026-02-01T05:00:00.000Z",
      period_end: "2026-03-01T05:00:00.000Z",
      total: 110,
    });
    expect(feb?.lines).toEqual([
      expect.objectContaining({ type: "USAGE_FEE", billable_unit: "calls", quantity: "110", amount: 110 }),
    ]);

    // March holds the switch to daylight saving time (8 March): it ends at 04:00Z, an hour short.
    const current = (await ny.as("GET", `/v1/subscriptions/${subscription.id}`)).json();
    expect(current).toMatchObject({
      current_period_start: "2026-03-01T05:00:00.000Z",
      current_period_end: "2026-04-01T04:00:00.000Z",
    });
    // Quotas that reset each billing period reset at the same instant.
    const entitlements = (await ny.as("GET", `/v1/entitlements?customer_id=${ny.customer.id}`)).json();
    expect(entitlements.data).toEqual([
      expect.objectContaining({ feature: "calls", used: 11, reset_at: "2026-04-01T04:00:00.000Z" }),
    ]);

    t.clock.set("2026-04-01T04:30:00Z");
    // 23:59:59 on 31 March in New York (EDT, UTC−4), then midnight on 1 April.
    await ny.meter("5", "2026-04-01T03:59:59Z");
    await ny.meter("13", "2026-04-01T04:00:00Z");
    expect((await ny.billRun()).invoices_created).toBe(1);
    const [, mar] = await ny.invoices(subscription.id);
    expect(mar).toMatchObject({
      period_start: "2026-03-01T05:00:00.000Z",
      period_end: "2026-04-01T04:00:00.000Z",
      total: 16,
    });
    expect(mar?.lines).toEqual([expect.objectContaining({ type: "USAGE_FEE", quantity: "16", amount: 16 })]);
  });

  it("cuts periods at local midnight east of UTC too, and names their local dates (Asia/Kolkata)", async () => {
    const india = await world("Asia/Kolkata", [
      { model: "FLAT_RATE", flat_amount: "1.00", timing: "in_arrears" },
    ]);
    // Midnight on 1 March 2026 in Kolkata (UTC+05:30) is 18:30Z on 28 February.
    t.clock.set("2026-02-28T18:30:00Z");
    const subscription = await india.subscribe("2026-02-28T18:30:00Z");
    expect(subscription).toMatchObject({
      timezone: "Asia/Kolkata",
      billing_anchor_day: 1,
      current_period_end: "2026-03-31T18:30:00.000Z",
    });
    t.clock.set("2026-03-31T19:00:00Z");
    await india.meter("4", "2026-03-31T18:29:59Z");
    await india.meter("9", "2026-03-31T18:30:00Z");
    await india.billRun();
    const [march] = await india.invoices(subscription.id);
    expect(march).toMatchObject({
      period_start: "2026-02-28T18:30:00.000Z",
      period_end: "2026-03-31T18:30:00.000Z",
      total: 104,
    });
    // The fee names the customer's month, not the UTC dates its boundaries fall on (28 Feb – 31 Mar).
    expect(march?.lines).toEqual([
      expect.objectContaining({ type: "USAGE_FEE", quantity: "4", amount: 4 }),
      expect.objectContaining({
        type: "CHARGE",
        amount: 100,
        description: expect.stringContaining("(in arrears, 2026-03-01 – 2026-04-01)"),
      }),
    ]);
  });

  it("keeps UTC periods without a billing entity, and keeps a subscription's zone when the entity changes", async () => {
    const plain = await world(null);
    t.clock.set("2026-02-01T00:00:00Z");
    const subscription = await plain.subscribe("2026-02-01T00:00:00Z");
    expect(subscription).toMatchObject({
      timezone: "UTC",
      current_period_start: "2026-02-01T00:00:00.000Z",
      current_period_end: "2026-03-01T00:00:00.000Z",
    });

    const ny = await world("America/New_York");
    t.clock.set("2026-02-01T05:00:00Z");
    const before = await ny.subscribe("2026-02-01T05:00:00Z");
    const entities = (await ny.as("GET", "/v1/billing_entities")).json();
    const changed = await ny.as("PATCH", `/v1/billing_entities/${entities.data[0].id}`, {
      timezone: "Europe/Berlin",
    });
    expect(changed.statusCode, changed.body).toBe(200);
    // Periods already billed never move: the subscription keeps the zone it started with.
    const reread = (await ny.as("GET", `/v1/subscriptions/${before.id}`)).json();
    expect(reread).toMatchObject({
      timezone: "America/New_York",
      current_period_end: "2026-03-01T05:00:00.000Z",
    });
    // A new subscription takes the entity's new zone: midnight in Berlin is 23:00Z the day before.
    const after = await ny.subscribe("2026-02-01T05:00:00Z");
    expect(after).toMatchObject({
      timezone: "Europe/Berlin",
      current_period_end: "2026-02-28T23:00:00.000Z",
    });
  });
});
