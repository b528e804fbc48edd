import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";
import { eventsWithEnrichment } from "./store/events.ts";

describe("enrichment at ingest", () => {
  let t: TestApp;
  let f: Fixture;
  let subscribed: { customerId: string; subscriptionId: string; ratePlanId: string; offeringId: string };
  let unsubscribedId: string;

  async function post(url: string, body: unknown) {
    const response = await t.request("POST", url, { ...f.as, body });
    if (response.statusCode >= 300) throw new Error(`POST ${url}: ${response.statusCode} ${response.body}`);
    return response.json();
  }
  const meter = async (customerId: string, key: string) =>
    (
      await t.request("POST", "/v1/meter", {
        ...f.as,
        body: { customer_id: customerId, metric_id: "api_calls", idempotency_key: key },
      })
    ).json();
  const stored = (id: string) =>
    eventsWithEnrichment(t.database.db)
      .selectAll("e")
      .select("n.enrichment")
      .where("e.id", "=", id)
      .executeTakeFirstOrThrow();

  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    const plan = await post("/v1/rate_plans", {
      name: "Graduated",
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items: [
        {
          model: "GRADUATED",
          billable_unit: "api_calls",
          tiers: [
            { up_to: "2", unit_price: "0.10" },
            { up_to: null, unit_price: "0.01" },
          ],
        },
      ],
      entitlements: [],
    });
    const offering = await post("/v1/offerings", {
      name: "Graduated",
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      trial_days: 0,
      status: "PUBLISHED",
    });
    const customer = await createCustomer(t, f);
    const subscription = await post("/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offering.id,
    });
    subscribed = {
      customerId: customer.id,
      subscriptionId: subscription.id,
      ratePlanId: plan.id,
      offeringId: offering.id,
    };
    unsubscribedId = (await createCustomer(t, f)).id;
  });
  afterAll(() => t.close());

  it("records the subscription, the pinned plan version and each event's marginal revenue", async () => {
    const estimates: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const event = await meter(subscribed.customerId, `enrich-${i}`);
      const row = await stored(event.id);
      expect(row.enrichment).toMatchObject({
        subscription_id: subscribed.subscriptionId,
        rate_plan_id: subscribed.ratePlanId,
        rate_plan_version: 1,
        pricing_model: "GRADUATED",
        currency: "USD",
      });
      estimates.push(row.estimated_revenue);
    }
    // The first two events fall in the 0.10 tier, the third in the 0.01 tier.
    expect(estimates.map(Number)).toEqual([0.1, 0.1, 0.01]);
  });

  it("estimates each event of one batch after the ones before it, across a tier boundary", async () => {
    const customer = await createCustomer(t, f);
    await post("/v1/subscriptions", { customer_id: customer.id, offering_id: subscribed.offeringId });
    const response = await t.request("POST", "/v1/meter/batch", {
      ...f.as,
      body: {
        events: Array.from({ length: 4 }, (_, i) => ({
          customer_id: customer.id,
          metric_id: "api_calls",
          idempotency_key: `batch-enrich-${i}`,
        })),
      },
    });
    expect(response.statusCode).toBe(200);
    const estimates: number[] = [];
    for (const result of response.json().results as { id: string }[]) {
      estimates.push(Number((await stored(result.id)).estimated_revenue));
    }
    // Not yet counted when the batch arrives, the earlier events still come first.
    expect(estimates).toEqual([0.1, 0.1, 0.01, 0.01]);
  });

  it("leaves an event of a customer without a subscription unenriched", async () => {
    const event = await meter(unsubscribedId, "enrich-none");
    const row = await stored(event.id);
    expect(row.enrichment_id).toBeNull();
    expect(row.enrichment).toBeNull();
    expect(row.estimated_revenue).toBeNull();
  });
});
