import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";
import { eventually, TestReceiver } from "./test-receiver.ts";

type Method = "GET" | "POST" | "PUT";
const DAY = 86_400_000;

interface Delivered {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/** The events each service announces, as a subscribed endpoint receives them. */
describe("webhook events from the services", () => {
  let t: TestApp;
  let f: Fixture;
  let scope: TenantScope;
  let receiver: TestReceiver;
  let secret: string;
  let counter = 0;

  const as = (method: Method, url: string, body?: unknown) => t.request(method, url, { ...f.as, body });
  async function ok(method: Method, url: string, body?: unknown, status = method === "POST" ? 201 : 200) {
    const response = await as(method, url, body);
    if (response.statusCode !== status)
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  /** Every event received so far, each verified with the endpoint's secret. */
  function delivered(): Delivered[] {
    return receiver
      .at("/events")
      .map((request) => new Webhook(secret).verify(request.body, request.headers) as Delivered);
  }

  async function waitForEvent(type: string, match: (data: Record<string, unknown>) => boolean = () => true) {
    const events = await eventually(
      async () => delivered().filter((event) => event.type === type && match(event.data)),
      (found) => found.length > 0,
    );
    return events[0] as Delivered;
  }

  /**
   * The types of the events received for this object id, sorted (deliveries run concurrently, so
   * arrival order is not event order); waits for the deliveries under way first.
   */
  async function typesFor(id: string, types: string[]): Promise<string[]> {
    await t.context.webhooks.usageThresholds?.settle();
    await t.context.webhooks.sweep();
    await eventually(
      () =>
        t.database.db
          .selectFrom("webhook_deliveries")
          .select("id")
          .where("tenant_id", "=", f.tenant.id)
          .where("status", "=", "pending")
          .execute(),
      (pending) => pending.length === 0,
    );
    return delivered()
      .filter((event) => types.includes(event.type) && JSON.stringify(event.data).includes(id))
      .map((event) => event.type)
      .sort();
  }

  async function offering(name: string, items: unknown[], extra: Record<string, unknown> = {}) {
    counter += 1;
    const plan = await ok("POST", "/v1/rate_plans", {
      name: `${name} ${counter}`,
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items,
      ...extra,
    });
    return ok("POST", "/v1/offerings", {
      name: `${name} ${counter}`,
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    t = await createTestApp();
    t.clock.set("2026-11-15T12:00:00Z");
    f = await sandbox(t);
    scope = { tenantId: f.tenant.id, mode: "test" };
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    secret = (await ok("POST", "/v1/webhook_endpoints", { url: receiver.url("/events"), events: ["*"] }))
      .secret;
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it("announces subscription.created, updated and cancelled, and the consumer keys' lifecycle", async () => {
    const plan = await offering("Flat", [{ model: "FLAT_RATE", flat_amount: "20", timing: "in_advance" }]);
    const customer = await createCustomer(t, f);
    const subscription = await ok("POST", "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: plan.id,
    });
    const created = await waitForEvent("subscription.created", (data) => data.id === subscription.id);
    expect(created.data).toEqual(subscription);
    await ok("POST", `/v1/subscriptions/${subscription.id}/pause`, undefined, 200);
    await waitForEvent(
      "subscription.updated",
      (data) => data.id === subscription.id && data.status === "PAUSED",
    );
    await ok("POST", `/v1/subscriptions/${subscription.id}/resume`, undefined, 200);
    const key = await ok("POST", `/v1/subscriptions/${subscription.id}/api_keys`, { name: "device" });
    const keyCreated = await waitForEvent("api_key.created", (data) => data.id === key.id);
    expect(keyCreated.data).toMatchObject({ kind: "consumer", subscription_id: subscription.id });
    expect(JSON.stringify(keyCreated)).not.toContain(key.key);
    await ok("POST", `/v1/subscriptions/${subscription.id}/cancel`, {}, 200);
    const cancelled = await waitForEvent("subscription.cancelled", (data) => data.id === subscription.id);
    expect(cancelled.data).toMatchObject({ status: "CANCELLED" });
    await waitForEvent("api_key.revoked", (data) => data.id === key.id);
    expect(
      await typesFor(subscription.id, [
        "subscription.created",
        "subscription.updated",
        "subscription.cancelled",
      ]),
    ).toEqual([
      "subscription.cancelled",
      "subscription.created",
      "subscription.updated",
      "subscription.updated",
    ]);
  });

  it("announces invoice.created and invoice.finalized, then voided and marked_uncollectible", async () => {
    t.clock.set("2026-11-28T00:00:00Z");
    const plan = await offering("Daily", [{ model: "FLAT_RATE", flat_amount: "10", timing: "in_arrears" }], {
      billing_period: { interval: "day", count: 1 },
    });
    const customer = await createCustomer(t, f);
    const start = new Date(t.clock.now().getTime() - 3 * DAY);
    const subscription = await ok("POST", "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: plan.id,
      start_at: start.toISOString(),
    });
    const period = (index: number) => ({
      start: new Date(start.getTime() + index * DAY),
      end: new Date(start.getTime() + (index + 1) * DAY),
    });
    const billing = t.context.billing;
    const finalized = await billing.invoicePeriod(scope, subscription.id, period(0), {});
    const open = await ok("GET", `/v1/invoices/${finalized.invoiceId}`);
    const finalizedEvent = await waitForEvent("invoice.finalized", (data) => data.id === finalized.invoiceId);
    expect(finalizedEvent.data).toMatchObject({
      id: open.id,
      status: "OPEN",
      number: open.number,
      total: 1000,
    });
    const createdEvent = await waitForEvent("invoice.created", (data) => data.id === finalized.invoiceId);
    expect(createdEvent.data).toMatchObject({ status: "DRAFT", number: null, total: 1000 });
    await ok("POST", `/v1/invoices/${finalized.invoiceId}/mark_uncollectible`, undefined, 200);
    await waitForEvent("invoice.marked_uncollectible", (data) => data.id === finalized.invoiceId);

    const draft = await billing.draftPeriod(scope, subscription.id, period(1));
    await ok("POST", `/v1/invoices/${draft.invoiceId}/void`, undefined, 200);
    const voided = await waitForEvent("invoice.voided", (data) => data.id === draft.invoiceId);
    expect(voided.data).toMatchObject({ status: "VOID" });

    const invoiceEvents = [
      "invoice.created",
      "invoice.finalized",
      "invoice.voided",
      "invoice.marked_uncollectible",
    ];
    expect(await typesFor(finalized.invoiceId, invoiceEvents)).toEqual([
      "invoice.created",
      "invoice.finalized",
      "invoice.marked_uncollectible",
    ]);
    expect(await typesFor(draft.invoiceId, invoiceEvents)).toEqual(["invoice.created", "invoice.voided"]);
    // Invoicing a period twice changes nothing and announces nothing.
    await billing.invoicePeriod(scope, subscription.id, period(0), {});
    expect(await typesFor(finalized.invoiceId, invoiceEvents)).toHaveLength(3);
  });

  it("announces wallet.low_balance once each time a movement takes the balance below its threshold", async () => {
    const customer = await createCustomer(t, f);
    const wallet = await ok("POST", `/v1/customers/${customer.id}/wallets`, { currency: "USD" });
    await ok("POST", `/v1/wallets/${wallet.id}/credits`, { amount: 1000, bucket: "CASH" });
    await ok("PUT", `/v1/wallets/${wallet.id}/auto_top_up`, { threshold: 500, amount: 1000, enabled: false });
    const debit = (amount: number) =>
      ok("POST", "/v1/wallets/debit", {
        customer_id: customer.id,
        amount,
        currency: "USD",
        strategy: "WATERFALL",
        idempotency_key: `debit-${++counter}`,
      });
    await debit(400); // 600: above
    await debit(200); // 400: crosses
    await debit(100); // 300: still below, no second event
    await ok("POST", `/v1/wallets/${wallet.id}/credits`, { amount: 1000, bucket: "CASH" }); // 1300
    await debit(1000); // 300: crosses again
    const lows = await eventually(
      async () =>
        delivered().filter(
          (event) => event.type === "wallet.low_balance" && event.data.wallet_id === wallet.id,
        ),
      (found) => found.length >= 2,
    );
    await typesFor(wallet.id, ["wallet.low_balance"]);
    const all = delivered().filter(
      (event) => event.type === "wallet.low_balance" && event.data.wallet_id === wallet.id,
    );
    expect(all).toHaveLength(2);
    expect(lows.map((event) => event.data.balance).sort()).toEqual([300, 400]);
    expect(all[0]?.data).toMatchObject({ customer_id: customer.id, currency: "USD", threshold: 500 });
  });

  it("announces usage.threshold_reached at 80% and 100% of a metered limit, once per period", async () => {
    t.clock.set("2026-12-01T12:00:00Z");
    const plan = await offering(
      "Metered",
      [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.01" }],
      {
        entitlements: [
          {
            feature: "search",
            type: "metered",
            billable_unit: "api_calls",
            limit: "10",
            reset: "billing_period",
            overage: "allow",
          },
        ],
      },
    );
    const customer = await createCustomer(t, f);
    await ok("POST", "/v1/subscriptions", { customer_id: customer.id, offering_id: plan.id });
    const meter = async (count: number) => {
      for (let i = 0; i < count; i++) {
        await ok(
          "POST",
          "/v1/meter",
          { customer_id: customer.id, metric_id: "api_calls", idempotency_key: `u-${++counter}` },
          202,
        );
      }
      await t.context.webhooks.usageThresholds?.settle();
    };
    const thresholds = async () => {
      await typesFor(customer.id, ["usage.threshold_reached"]);
      return delivered()
        .filter((event) => event.type === "usage.threshold_reached" && event.data.customer_id === customer.id)
        .map((event) => event.data.threshold_percent);
    };
    await meter(7);
    expect(await thresholds()).toEqual([]);
    await meter(1);
    expect(await thresholds()).toEqual([80]);
    await meter(1);
    expect(await thresholds()).toEqual([80]);
    await meter(1);
    expect(await thresholds()).toEqual(expect.arrayContaining([80, 100]));
    expect(await thresholds()).toHaveLength(2);
    await meter(5);
    expect(await thresholds()).toHaveLength(2);
    const reached = delivered().find(
      (event) => event.type === "usage.threshold_reached" && event.data.threshold_percent === 100,
    );
    expect(reached?.data).toMatchObject({
      customer_id: customer.id,
      feature: "search",
      billable_unit: "api_calls",
      limit: 10,
      used: 10,
      reset: "billing_period",
    });
  });
});
