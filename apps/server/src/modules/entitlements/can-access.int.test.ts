import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContext } from "../../context.ts";
import {
  createCustomer,
  createUnit,
  type Fixture,
  publishedOffering,
  sandbox,
} from "../../testing/fixtures.ts";
import { createTestApp, TEST_PUBLIC_URL, type TestApp, testConfig } from "../../testing/test-app.ts";
import { EntitlementService } from "./service.ts";

type Plan = Awaited<ReturnType<typeof publishedOffering>>;

async function post(t: TestApp, f: Fixture, url: string, body: unknown, expected = 201) {
  const response = await t.request("POST", url, { ...f.as, body });
  if (response.statusCode !== expected)
    throw new Error(`POST ${url} answered ${response.statusCode}: ${response.body}`);
  return response.json();
}

describe("POST /v1/canAccess", () => {
  let t: TestApp;
  let f: Fixture;
  let pro: Plan;
  let starter: Plan;
  const check = (body: Record<string, unknown>) => t.request("POST", "/v1/canAccess", { ...f.as, body });

  async function subscribedCustomer(plan: Plan = pro) {
    const customer = await createCustomer(t, f);
    const subscription = await post(t, f, "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: plan.offeringId,
    });
    return { customerId: customer.id as string, subscriptionId: subscription.id as string };
  }

  beforeAll(async () => {
    t = await createTestApp({ config: {} });
    t.clock.set("2026-11-15T12:00:00Z");
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    await createUnit(t, f, { key: "tokens", aggregation: "SUM", field: "tokens" });
    pro = await publishedOffering(t, f, "Pro", [
      { feature: "sso", type: "boolean" },
      {
        feature: "search",
        type: "metered",
        billable_unit: "api_calls",
        limit: "50",
        reset: "billing_period",
        overage: "block",
      },
      {
        feature: "llm",
        type: "metered",
        billable_unit: "tokens",
        limit: "1000",
        reset: "day",
        overage: "throttle",
      },
      { feature: "export", type: "rate_limit", limit: 2, per_seconds: 60, burst: 2 },
    ]);
    starter = await publishedOffering(t, f, "Starter", [
      {
        feature: "search",
        type: "metered",
        billable_unit: "api_calls",
        limit: "5",
        reset: "minute",
        overage: "allow",
      },
    ]);
  });
  afterAll(() => t.close());

  it("allows a boolean feature of the plan and answers like the contract", async () => {
    const { customerId } = await subscribedCustomer();
    const response = await check({ customer_id: customerId, feature: "sso" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ allowed: true, decision: "allow", plan: "Pro", feature: "sso" });
  });

  it("refuses a feature not in the plan with 403 and a customer without a subscription with 403", async () => {
    const { customerId } = await subscribedCustomer();
    const missing = await check({ customer_id: customerId, feature: "teleport" });
    expect(missing.statusCode).toBe(403);
    expect(missing.headers["content-type"]).toContain("application/problem+json");
    expect(missing.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/feature-not-entitled`,
      allowed: false,
      decision: "block",
      reason: "feature_not_in_plan",
      customer_id: customerId,
      tenant_id: f.tenant.id,
    });
    const unsubscribed = await createCustomer(t, f);
    const inactive = await check({ customer_id: unsubscribed.id, feature: "sso" });
    expect(inactive.statusCode).toBe(403);
    expect(inactive.json().reason).toBe("subscription_inactive");
  });

  it("counts a quota down with consume and blocks past it with 429 quota-exceeded", async () => {
    const { customerId } = await subscribedCustomer();
    const first = await check({ customer_id: customerId, feature: "search", consume: true });
    expect(first.json()).toMatchObject({
      allowed: true,
      remaining_quota: 49,
      quota_reset: "2026-12-15T00:00:00.000Z",
    });
    const peek = await check({ customer_id: customerId, feature: "search" });
    expect(peek.json().remaining_quota).toBe(49);
    for (let i = 0; i < 49; i++) await check({ customer_id: customerId, feature: "search", consume: true });
    const refused = await check({ customer_id: customerId, feature: "search", consume: true });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/quota-exceeded`,
      title: "Quota Exceeded",
      allowed: false,
      decision: "block",
      reason: "quota_exceeded",
      remaining: 0,
      reset_at: "2026-12-15T00:00:00.000Z",
    });
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("allows exactly N of many concurrent consuming checks", async () => {
    const { customerId } = await subscribedCustomer();
    const answers = await Promise.all(
      Array.from({ length: 120 }, () => check({ customer_id: customerId, feature: "search", consume: true })),
    );
    expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(50);
    expect(answers.filter((a) => a.statusCode === 429)).toHaveLength(70);
    await t.context.entitlements.settle();
    const stored = await t.database.db
      .selectFrom("usage_events")
      .select("id")
      .where("customer_id", "=", customerId)
      .execute();
    expect(stored).toHaveLength(50);
  });

  it("sees an event accepted by /v1/meter in the very next decision, and mixes metering with consumption exactly", async () => {
    const { customerId } = await subscribedCustomer();
    for (let i = 0; i < 20; i++) {
      const metered = await t.request("POST", "/v1/meter", {
        ...f.as,
        body: { customer_id: customerId, metric_id: "api_calls", idempotency_key: `mix-${customerId}-${i}` },
      });
      expect(metered.statusCode).toBe(202);
    }
    expect((await check({ customer_id: customerId, feature: "search" })).json().remaining_quota).toBe(30);
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => check({ customer_id: customerId, feature: "search", consume: true })),
    );
    expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(30);
  });

  it("throttles past a quota whose overage is throttle, with X-Aforo-Throttle", async () => {
    const { customerId } = await subscribedCustomer();
    const within = await check({ customer_id: customerId, feature: "llm", quantity: 1000, consume: true });
    expect(within.json()).toMatchObject({ decision: "allow", remaining_quota: 0 });
    const over = await check({ customer_id: customerId, feature: "llm", quantity: 10, consume: true });
    expect(over.statusCode).toBe(200);
    expect(over.headers["x-aforo-throttle"]).toBe("true");
    expect(over.json()).toMatchObject({ allowed: true, decision: "throttle" });
  });

  it("refuses past a feature's rate limit with 429 and allows again once it refills", async () => {
    const { customerId } = await subscribedCustomer();
    expect((await check({ customer_id: customerId, feature: "export" })).statusCode).toBe(200);
    expect((await check({ customer_id: customerId, feature: "export" })).statusCode).toBe(200);
    const limited = await check({ customer_id: customerId, feature: "export" });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({
      reason: "rate_limited",
      type: `${TEST_PUBLIC_URL}/problems/feature-rate-limited`,
    });
    t.clock.advance(30_000);
    expect((await check({ customer_id: customerId, feature: "export" })).statusCode).toBe(200);
  });

  it("renews quotas at the boundary instant of their window", async () => {
    const { customerId } = await subscribedCustomer();
    t.clock.set("2026-11-15T23:59:59.000Z");
    await check({ customer_id: customerId, feature: "llm", quantity: 1000, consume: true });
    expect((await check({ customer_id: customerId, feature: "llm", quantity: 1 })).json().decision).toBe(
      "throttle",
    );
    t.clock.set("2026-11-16T00:00:00.000Z");
    expect((await check({ customer_id: customerId, feature: "llm", quantity: 1 })).json()).toMatchObject({
      decision: "allow",
      remaining_quota: 1000,
    });

    const monthly = await subscribedCustomer();
    const periodEnd = (await t.request("GET", `/v1/subscriptions/${monthly.subscriptionId}`, f.as)).json()
      .current_period_end;
    for (let i = 0; i < 50; i++)
      await check({ customer_id: monthly.customerId, feature: "search", consume: true });
    t.clock.set(new Date(new Date(periodEnd).getTime() - 1).toISOString());
    expect((await check({ customer_id: monthly.customerId, feature: "search" })).statusCode).toBe(429);
    t.clock.set(periodEnd);
    expect((await check({ customer_id: monthly.customerId, feature: "search" })).json().remaining_quota).toBe(
      50,
    );
    t.clock.set("2026-11-16T00:00:00.000Z");
  });

  it("shows a plan change in the very next decision", async () => {
    const { customerId, subscriptionId } = await subscribedCustomer(starter);
    expect((await check({ customer_id: customerId, feature: "sso" })).statusCode).toBe(403);
    await post(t, f, `/v1/subscriptions/${subscriptionId}/change_plan`, { offering_id: pro.offeringId }, 200);
    expect((await check({ customer_id: customerId, feature: "sso" })).statusCode).toBe(200);
  });

  it("resolves consumer keys, refuses a revoked one at once, and revokes keys when the subscription ends", async () => {
    const { customerId, subscriptionId } = await subscribedCustomer();
    const first = await post(t, f, `/v1/subscriptions/${subscriptionId}/api_keys`, { name: "gateway" });
    const second = await post(t, f, `/v1/subscriptions/${subscriptionId}/api_keys`, { name: "backup" });
    expect(first.key).toMatch(/^ak_test_/);
    const viaKey = await check({ api_key: first.key, feature: "sso" });
    expect(viaKey.json()).toMatchObject({ allowed: true, customer_id: customerId });
    await post(t, f, `/v1/api_keys/${first.id}/revoke`, {}, 200);
    const revoked = await check({ api_key: first.key, feature: "sso" });
    expect(revoked.statusCode).toBe(403);
    expect(revoked.json().type).toBe(`${TEST_PUBLIC_URL}/problems/key-revoked`);
    expect((await check({ api_key: second.key, feature: "sso" })).statusCode).toBe(200);
    await post(t, f, `/v1/subscriptions/${subscriptionId}/cancel`, {}, 200);
    expect((await check({ api_key: second.key, feature: "sso" })).statusCode).toBe(403);
    expect((await check({ customer_id: customerId, feature: "sso" })).json().reason).toBe(
      "subscription_inactive",
    );
  });

  it("meters with a consumer key instead of a customer id", async () => {
    const { customerId, subscriptionId } = await subscribedCustomer();
    const key = await post(t, f, `/v1/subscriptions/${subscriptionId}/api_keys`, {});
    const metered = await t.request("POST", "/v1/meter", {
      ...f.as,
      body: { api_key: key.key, metric_id: "api_calls" },
    });
    expect(metered.statusCode).toBe(202);
    expect((await check({ customer_id: customerId, feature: "search" })).json().remaining_quota).toBe(49);
  });

  it("does not count a retried consuming check with the same idempotency key twice", async () => {
    const { customerId } = await subscribedCustomer();
    await check({ customer_id: customerId, feature: "search", consume: true, idempotency_key: "once" });
    await t.context.entitlements.settle();
    await check({ customer_id: customerId, feature: "search", consume: true, idempotency_key: "once" });
    await t.context.entitlements.settle();
    expect((await check({ customer_id: customerId, feature: "search" })).json().remaining_quota).toBe(49);
  });

  it("rebuilds counters after a restart equal to the usage in the database", async () => {
    const { customerId } = await subscribedCustomer();
    for (let i = 0; i < 7; i++) await check({ customer_id: customerId, feature: "search", consume: true });
    await t.request("POST", "/v1/meter", {
      ...f.as,
      body: { customer_id: customerId, metric_id: "tokens", properties: { tokens: 250 } },
    });
    await t.context.entitlements.settle();
    // One rollup hour per query: the rebuild must page through them all.
    EntitlementService.rebuildPageRows = 1;
    const restarted = await createContext(testConfig(), t.database, t.clock).finally(() => {
      EntitlementService.rebuildPageRows = 50_000;
    });
    try {
      const scope = { tenantId: f.tenant.id, mode: "test" as const };
      const before = t.context.entitlements.entitlementsOf(scope, customerId).features;
      const after = restarted.entitlements.entitlementsOf(scope, customerId).features;
      const used = (list: typeof before) => Object.fromEntries(list.map((f) => [f.grant.feature, f.used]));
      expect(used(after)).toEqual(used(before));
      expect(used(after)).toMatchObject({ search: 7, llm: 250 });
    } finally {
      await restarted.stop();
    }
  });

  it("rebuilds a per-minute quota after a restart in the middle of an hour", async () => {
    const { customerId } = await subscribedCustomer(starter);
    const startedAt = t.clock.now();
    const nextHour = Math.floor(startedAt.getTime() / 3_600_000 + 1) * 3_600_000;
    t.clock.set(new Date(nextHour + 5 * 60_000).toISOString());
    try {
      // Earlier in the hour: in the hour's total, not in the minute the restart happens in.
      await check({ customer_id: customerId, feature: "search", consume: true });
      t.clock.set(new Date(nextHour + 37 * 60_000 + 20_000).toISOString());
      for (let i = 0; i < 3; i++) await check({ customer_id: customerId, feature: "search", consume: true });
      await t.context.entitlements.settle();
      t.clock.advance(20_000);
      const restarted = await createContext(testConfig(), t.database, t.clock);
      try {
        const scope = { tenantId: f.tenant.id, mode: "test" as const };
        const search = restarted.entitlements
          .entitlementsOf(scope, customerId)
          .features.find((feature) => feature.grant.feature === "search");
        expect(search?.used).toBe(3);
      } finally {
        await restarted.stop();
      }
    } finally {
      t.clock.set(startedAt.toISOString());
    }
  });

  it("lists the customer's entitlements with usage", async () => {
    const { customerId } = await subscribedCustomer();
    await check({ customer_id: customerId, feature: "search", consume: true });
    const response = await t.request("GET", "/v1/entitlements", {
      ...f.as,
      query: { customer_id: customerId },
    });
    expect(response.statusCode).toBe(200);
    const search = response.json().data.find((e: { feature: string }) => e.feature === "search");
    expect(search).toMatchObject({
      type: "metered",
      enabled: true,
      limit: 50,
      used: 1,
      remaining: 49,
      overage: "block",
    });
    expect(
      response
        .json()
        .data.map((e: { feature: string }) => e.feature)
        .sort(),
    ).toEqual(["export", "llm", "search", "sso"]);
  });

  it("answers bad input with the contract's statuses, never 5xx", async () => {
    expect((await check({ customer_id: "cus_nobody", feature: "sso" })).statusCode).toBe(422);
    expect((await check({ api_key: `ak_test_${"x".repeat(40)}`, feature: "sso" })).statusCode).toBe(403);
    expect((await check({ feature: "sso" })).statusCode).toBe(400);
    expect((await check({ customer_id: "x" })).statusCode).toBe(400);
    expect((await check({ customer_id: "x", feature: "sso", quantity: -1 })).statusCode).toBe(400);
  });

  it("keeps an audit trail for chosen customers without slowing decisions", async () => {
    const { customerId } = await subscribedCustomer();
    const settings = await t.request("PUT", "/v1/entitlements/audit", {
      ...f.as,
      body: { sample_rate: 0, customer_ids: [customerId] },
    });
    expect(settings.statusCode).toBe(200);
    await check({ customer_id: customerId, feature: "sso" });
    await check({ customer_id: customerId, feature: "teleport" });
    const log = await t.request("GET", "/v1/entitlements/decisions", {
      ...f.as,
      query: { customer_id: customerId },
    });
    expect(
      log.json().data.map((d: { feature: string; decision: string }) => `${d.feature}:${d.decision}`),
    ).toEqual(["teleport:block", "sso:allow"]);
  });

  it("walls off tenants: another tenant's customer is unknown", async () => {
    const { customerId } = await subscribedCustomer();
    const other = await sandbox(t);
    const response = await t.request("POST", "/v1/canAccess", {
      ...other.as,
      body: { customer_id: customerId, feature: "sso" },
    });
    expect(response.statusCode).toBe(422);
  });
});
