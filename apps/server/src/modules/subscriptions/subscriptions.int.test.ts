import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";
import type { Subscription } from "./domain/subscription.ts";

type Method = "GET" | "POST" | "PATCH" | "DELETE";
const BASE = "2026-11-28T10:00:00.000Z";
const DAY = 86_400_000;

describe("subscriptions", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let other: TestTenant;
  let as: (method: Method, url: string, body?: unknown, key?: string) => ReturnType<TestApp["request"]>;
  let customerId: string;
  let monthlyPlan: string;
  let offering: string; // no trial
  let trialOffering: string; // 14-day trial
  let upgradeOffering: string;
  let weeklyOffering: string;
  let draftOffering: string;
  let eurOffering: string;
  const changes: Subscription[] = [];

  async function created(response: Awaited<ReturnType<TestApp["request"]>>) {
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  async function plan(currency: string, interval = "month", flat = "49"): Promise<string> {
    return (
      await created(
        await as("POST", "/v1/rate_plans", {
          name: `Plan ${currency} ${interval}`,
          currency,
          billing_period: { interval, count: 1 },
          items: [{ model: "FLAT_RATE", flat_amount: flat, timing: "in_advance" }],
          entitlements: [{ feature: "search", type: "boolean" }],
        }),
      )
    ).id;
  }

  async function offeringOf(ratePlanIds: string[], extra: Record<string, unknown> = {}): Promise<string> {
    return (
      await created(
        await as("POST", "/v1/offerings", {
          name: "Offering",
          rate_plan_ids: ratePlanIds,
          billing_mode: "POSTPAID",
          status: "PUBLISHED",
          ...extra,
        }),
      )
    ).id;
  }

  async function subscribe(body: Record<string, unknown> = {}) {
    return created(
      await as("POST", "/v1/subscriptions", { customer_id: customerId, offering_id: offering, ...body }),
    );
  }

  async function newCustomer(externalId?: string): Promise<string> {
    const body = {
      name: "Ada",
      email: "ada@example.com",
      currency: "USD",
      ...(externalId ? { external_id: externalId } : {}),
    };
    return (await created(await as("POST", "/v1/customers", body))).id;
  }

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    other = await t.createTenant();
    as = (method, url, body, key = tenant.testKey) =>
      t.request(method, url, { key, tenant: tenant.id, body });
    customerId = await newCustomer("ext-ada");
    monthlyPlan = await plan("USD");
    const secondPlan = await plan("USD", "month", "10");
    offering = await offeringOf([monthlyPlan, secondPlan]);
    trialOffering = await offeringOf([monthlyPlan], { trial_days: 14 });
    upgradeOffering = await offeringOf([await plan("USD", "month", "99")]);
    weeklyOffering = await offeringOf([await plan("USD", "week")]);
    draftOffering = await offeringOf([monthlyPlan], { status: "DRAFT" });
    eurOffering = await offeringOf([await plan("EUR")]);
    t.context.subscriptions.onChange((subscription) => changes.push(subscription));
  });
  afterAll(() => t.close());
  beforeEach(() => t.clock.set(BASE));

  describe("creating", () => {
    it("starts ACTIVE now, pinned to the latest version of every plan of the offering", async () => {
      const body = await subscribe({ metadata: { seat: "1" }, price_overrides: { note: "vip" } });
      expect(body).toEqual({
        id: expect.stringMatching(/^sub_/),
        object: "subscription",
        customer_id: customerId,
        offering_id: offering,
        status: "ACTIVE",
        items: [
          { rate_plan_id: monthlyPlan, version: 1 },
          { rate_plan_id: expect.any(String), version: 1 },
        ],
        billing_period: { interval: "month", count: 1 },
        currency: "USD",
        start_at: BASE,
        trial_end_at: null,
        current_period_start: BASE,
        current_period_end: "2026-12-28T00:00:00.000Z",
        billing_anchor_day: 28,
        timezone: "UTC",
        cancel_at_period_end: false,
        cancel_at: null,
        canceled_at: null,
        paused_at: null,
        ended_at: null,
        promotion_code: null,
        price_overrides: { note: "vip" },
        metadata: { seat: "1" },
        created_at: BASE,
        updated_at: BASE,
      });
      expect((await as("GET", `/v1/subscriptions/${body.id}`)).json()).toEqual(body);
    });

    it("pins the newest version when a plan has several", async () => {
      const planId = await plan("USD");
      const version2 = await as("POST", `/v1/rate_plans/${planId}/versions`, {
        name: "Plan v2",
        currency: "USD",
        billing_period: { interval: "month", count: 1 },
        items: [{ model: "FLAT_RATE", flat_amount: "59", timing: "in_advance" }],
        entitlements: [],
      });
      expect(version2.statusCode, version2.body).toBe(201);
      const body = await subscribe({ offering_id: await offeringOf([planId]) });
      expect(body.items).toEqual([{ rate_plan_id: planId, version: 2 }]);
    });

    it("starts a trial from the offering's trial_days", async () => {
      const body = await subscribe({ offering_id: trialOffering });
      expect(body).toMatchObject({
        status: "TRIALING",
        trial_end_at: "2026-12-12T10:00:00.000Z",
        current_period_start: BASE,
        current_period_end: "2026-12-12T10:00:00.000Z",
        billing_anchor_day: 12,
      });
    });

    it("waits in CREATED for a future start_at, then starts on tick exactly then", async () => {
      const body = await subscribe({ offering_id: trialOffering, start_at: "2026-12-01T00:00:00Z" });
      expect(body).toMatchObject({
        status: "CREATED",
        start_at: "2026-12-01T00:00:00.000Z",
        trial_end_at: "2026-12-15T00:00:00.000Z",
        current_period_start: "2026-12-01T00:00:00.000Z",
      });
      await t.context.subscriptions.tick(new Date("2026-11-30T23:59:59.999Z"));
      expect(t.context.subscriptions.getCached({ tenantId: tenant.id, mode: "test" }, body.id)?.status).toBe(
        "CREATED",
      );
      await t.context.subscriptions.tick(new Date("2026-12-01T00:00:00Z"));
      t.clock.set("2026-12-01T00:00:00Z");
      expect((await as("GET", `/v1/subscriptions/${body.id}`)).json().status).toBe("TRIALING");
    });

    it("makes a past start_at ACTIVE from then, without a trial, in the period containing now", async () => {
      const body = await subscribe({ offering_id: trialOffering, start_at: "2026-08-15T12:00:00Z" });
      expect(body).toMatchObject({
        status: "ACTIVE",
        trial_end_at: null,
        billing_anchor_day: 15,
        current_period_start: "2026-11-15T00:00:00.000Z",
        current_period_end: "2026-12-15T00:00:00.000Z",
      });
      const phases = (await as("GET", `/v1/subscriptions/${body.id}/phases`)).json().data;
      expect(phases).toEqual([
        expect.objectContaining({
          status: "ACTIVE",
          reason: "subscribed",
          started_at: "2026-08-15T12:00:00.000Z",
          ended_at: null,
        }),
      ]);
    });

    it("clamps billing_anchor_day 31 to the end of February", async () => {
      t.clock.set("2027-01-31T09:00:00Z");
      const body = await subscribe({ billing_anchor_day: 31 });
      expect(body).toMatchObject({ billing_anchor_day: 31, current_period_end: "2027-02-28T00:00:00.000Z" });
      t.clock.set("2027-03-01T00:00:00Z");
      expect((await as("GET", `/v1/subscriptions/${body.id}`)).json()).toMatchObject({
        current_period_start: "2027-02-28T00:00:00.000Z",
        current_period_end: "2027-03-31T00:00:00.000Z",
      });
    });

    it("accepts the customer's external id", async () => {
      expect((await subscribe({ customer_id: "ext-ada" })).customer_id).toBe(customerId);
    });

    it("refuses unknown and archived customers with 422 unknown-customer", async () => {
      const unknown = await as("POST", "/v1/subscriptions", {
        customer_id: "cus_nope",
        offering_id: offering,
      });
      expect(unknown.statusCode).toBe(422);
      expect(unknown.json()).toMatchObject({
        type: expect.stringContaining("unknown-customer"),
        errors: [{ field: "customer_id" }],
      });
      const archived = await newCustomer();
      expect((await as("DELETE", `/v1/customers/${archived}`)).statusCode).toBe(200);
      const response = await as("POST", "/v1/subscriptions", {
        customer_id: archived,
        offering_id: offering,
      });
      expect(response.statusCode).toBe(422);
      expect(response.json().type).toContain("unknown-customer");
    });

    it("refuses offerings that are not PUBLISHED, or unknown, with 422 on offering_id", async () => {
      for (const offeringId of [draftOffering, "off_nope"]) {
        const response = await as("POST", "/v1/subscriptions", {
          customer_id: customerId,
          offering_id: offeringId,
        });
        expect(response.statusCode).toBe(422);
        expect(response.json().errors).toEqual([{ field: "offering_id", message: expect.any(String) }]);
      }
    });

    it("redeems a promotion code until it is exhausted", async () => {
      const promotion = await as("POST", "/v1/promotions", {
        code: "LAUNCH",
        percent_off: "20",
        duration: "once",
        max_redemptions: 1,
      });
      expect(promotion.statusCode, promotion.body).toBe(201);
      expect((await subscribe({ promotion_code: "launch" })).promotion_code).toBe("LAUNCH");
      const exhausted = await as("POST", "/v1/subscriptions", {
        customer_id: customerId,
        offering_id: offering,
        promotion_code: "LAUNCH",
      });
      expect(exhausted.statusCode).toBe(422);
      expect(exhausted.json().errors).toEqual([
        { field: "promotion_code", message: expect.stringContaining("exhausted") },
      ]);
      const unknown = await as("POST", "/v1/subscriptions", {
        customer_id: customerId,
        offering_id: offering,
        promotion_code: "NOPE",
      });
      expect(unknown.statusCode).toBe(422);
      expect(unknown.json().errors[0].field).toBe("promotion_code");
    });

    it("answers 400 for bodies that break the schema and 422 for an anchor on a weekly plan", async () => {
      for (const body of [
        { offering_id: offering },
        { customer_id: customerId, offering_id: offering, billing_anchor_day: 32 },
        { customer_id: customerId, offering_id: offering, billing_anchor_day: 0 },
        { customer_id: customerId, offering_id: offering, start_at: "yesterday" },
        { customer_id: customerId, offering_id: 5 },
        { customer_id: customerId, offering_id: offering, metadata: { seat: 1 } },
      ]) {
        expect((await as("POST", "/v1/subscriptions", body)).statusCode, JSON.stringify(body)).toBe(400);
      }
      const weekly = await as("POST", "/v1/subscriptions", {
        customer_id: customerId,
        offering_id: weeklyOffering,
        billing_anchor_day: 3,
      });
      expect(weekly.statusCode).toBe(422);
      expect(weekly.json().errors[0].field).toBe("billing_anchor_day");
      const ok = await subscribe({ offering_id: weeklyOffering });
      expect(ok).toMatchObject({ billing_anchor_day: null, current_period_end: "2026-12-05T00:00:00.000Z" });
    });
  });

  describe("listing", () => {
    it("filters by customer (id or external id) and status, newest first", async () => {
      const customer = await newCustomer("ext-list");
      const first = await subscribe({ customer_id: customer });
      const second = await subscribe({ customer_id: customer, offering_id: trialOffering });
      const byExternal = (
        await t.request("GET", "/v1/subscriptions", {
          key: tenant.testKey,
          tenant: tenant.id,
          query: { customer_id: "ext-list" },
        })
      ).json();
      expect(byExternal.data.map((s: { id: string }) => s.id)).toEqual([second.id, first.id]);
      const trialing = (
        await t.request("GET", "/v1/subscriptions", {
          key: tenant.testKey,
          tenant: tenant.id,
          query: { customer_id: customer, status: "TRIALING" },
        })
      ).json();
      expect(trialing.data.map((s: { id: string }) => s.id)).toEqual([second.id]);
      const paged = (
        await t.request("GET", "/v1/subscriptions", {
          key: tenant.testKey,
          tenant: tenant.id,
          query: { limit: "1" },
        })
      ).json();
      expect(paged.has_more).toBe(true);
      expect(paged.data).toHaveLength(1);
    });
  });

  describe("actions", () => {
    it("cancels now, then refuses every further action with 409", async () => {
      const body = await subscribe();
      t.clock.advance(DAY);
      const cancelled = await as("POST", `/v1/subscriptions/${body.id}/cancel`, {});
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      expect(cancelled.json()).toMatchObject({
        status: "CANCELLED",
        canceled_at: "2026-11-29T10:00:00.000Z",
        ended_at: "2026-11-29T10:00:00.000Z",
      });
      for (const action of ["cancel", "pause", "resume"]) {
        const refused = await as("POST", `/v1/subscriptions/${body.id}/${action}`);
        expect(refused.statusCode, action).toBe(409);
        expect(refused.json().type).toContain("invalid-transition");
      }
      const change = await as("POST", `/v1/subscriptions/${body.id}/change_plan`, {
        offering_id: upgradeOffering,
      });
      expect(change.statusCode).toBe(409);
    });

    it("cancels at period end: EXPIRING_SOON, then EXPIRED on tick exactly at the period's end", async () => {
      const body = await subscribe();
      const scheduled = (
        await as("POST", `/v1/subscriptions/${body.id}/cancel`, { at_period_end: true })
      ).json();
      expect(scheduled).toMatchObject({
        status: "EXPIRING_SOON",
        cancel_at_period_end: true,
        cancel_at: "2026-12-28T00:00:00.000Z",
        canceled_at: BASE,
      });
      const scope = { tenantId: tenant.id, mode: "test" as const };
      await t.context.subscriptions.tick(new Date("2026-12-27T23:59:59.999Z"));
      expect(t.context.subscriptions.directory.get(scope, body.id)?.status).toBe("EXPIRING_SOON");
      await t.context.subscriptions.tick(new Date("2026-12-28T00:00:00Z"));
      const expired = t.context.subscriptions.directory.get(scope, body.id);
      expect(expired).toMatchObject({ status: "EXPIRED", endedAt: new Date("2026-12-28T00:00:00Z") });
      expect(
        changes.at(-1)?.id === body.id || changes.some((c) => c.id === body.id && c.status === "EXPIRED"),
      ).toBe(true);
    });

    it("resume withdraws a scheduled cancellation", async () => {
      const body = await subscribe();
      await as("POST", `/v1/subscriptions/${body.id}/cancel`, { at_period_end: true });
      const resumed = (await as("POST", `/v1/subscriptions/${body.id}/resume`)).json();
      expect(resumed).toMatchObject({
        status: "ACTIVE",
        cancel_at_period_end: false,
        cancel_at: null,
        canceled_at: null,
      });
    });

    it("pauses and resumes, and refuses moves the machine does not allow", async () => {
      const body = await subscribe();
      expect((await as("POST", `/v1/subscriptions/${body.id}/resume`)).statusCode).toBe(409);
      const paused = (await as("POST", `/v1/subscriptions/${body.id}/pause`)).json();
      expect(paused).toMatchObject({ status: "PAUSED", paused_at: BASE });
      expect((await as("POST", `/v1/subscriptions/${body.id}/pause`)).statusCode).toBe(409);
      expect(
        (await as("POST", `/v1/subscriptions/${body.id}/cancel`, { at_period_end: true })).statusCode,
      ).toBe(409);
      t.clock.advance(DAY);
      const resumed = (await as("POST", `/v1/subscriptions/${body.id}/resume`)).json();
      expect(resumed).toMatchObject({ status: "ACTIVE", paused_at: null });
      const future = await subscribe({ start_at: "2027-01-01T00:00:00Z" });
      expect((await as("POST", `/v1/subscriptions/${future.id}/pause`)).statusCode).toBe(409);
      expect(
        (await as("POST", `/v1/subscriptions/${future.id}/cancel`, { at_period_end: true })).statusCode,
      ).toBe(409);
    });

    it("changes plan now, keeps the period, and records the share of the period left", async () => {
      t.clock.set("2026-12-01T00:00:00Z");
      const body = await subscribe();
      t.clock.set("2026-12-11T00:00:00Z");
      const changed = await as("POST", `/v1/subscriptions/${body.id}/change_plan`, {
        offering_id: upgradeOffering,
      });
      expect(changed.statusCode, changed.body).toBe(200);
      expect(changed.json()).toMatchObject({
        offering_id: upgradeOffering,
        status: "ACTIVE",
        current_period_start: "2026-12-01T00:00:00.000Z",
        current_period_end: "2027-01-01T00:00:00.000Z",
      });
      const phases = (await as("GET", `/v1/subscriptions/${body.id}/phases`)).json().data;
      expect(phases).toHaveLength(2);
      expect(phases[0]).toMatchObject({
        reason: "subscribed",
        ended_at: "2026-12-11T00:00:00.000Z",
        offering_id: offering,
      });
      expect(phases[1]).toEqual({
        object: "subscription_phase",
        subscription_id: body.id,
        status: "ACTIVE",
        offering_id: upgradeOffering,
        items: changed.json().items,
        reason: "plan_changed",
        started_at: "2026-12-11T00:00:00.000Z",
        ended_at: null,
        previous_offering_id: offering,
        previous_items: body.items,
        period_start: "2026-12-01T00:00:00.000Z",
        period_end: "2027-01-01T00:00:00.000Z",
        fraction_remaining: "0.6774193548387096774193548387096774193548",
      });
      for (const offeringId of [draftOffering, eurOffering]) {
        const refused = await as("POST", `/v1/subscriptions/${body.id}/change_plan`, {
          offering_id: offeringId,
        });
        expect(refused.statusCode).toBe(422);
        expect(refused.json().errors[0].field).toBe("offering_id");
      }
      expect((await as("POST", `/v1/subscriptions/${body.id}/change_plan`, {})).statusCode).toBe(400);
    });

    it("records every status change as a phase", async () => {
      const body = await subscribe({ offering_id: trialOffering });
      t.clock.advance(DAY);
      await as("POST", `/v1/subscriptions/${body.id}/pause`);
      t.clock.advance(DAY);
      await as("POST", `/v1/subscriptions/${body.id}/resume`);
      t.clock.advance(DAY);
      await as("POST", `/v1/subscriptions/${body.id}/cancel`);
      const phases = (await as("GET", `/v1/subscriptions/${body.id}/phases`)).json().data;
      expect(
        phases.map((p: { status: string; reason: string; started_at: string; ended_at: string | null }) => [
          p.status,
          p.reason,
          p.started_at,
          p.ended_at,
        ]),
      ).toEqual([
        ["TRIALING", "subscribed", BASE, "2026-11-29T10:00:00.000Z"],
        ["PAUSED", "paused", "2026-11-29T10:00:00.000Z", "2026-11-30T10:00:00.000Z"],
        ["ACTIVE", "resumed", "2026-11-30T10:00:00.000Z", "2026-12-01T10:00:00.000Z"],
        ["CANCELLED", "cancelled", "2026-12-01T10:00:00.000Z", null],
      ]);
    });
  });

  describe("time", () => {
    it("ends the trial on tick exactly at trial_end_at and rolls into the first paid period", async () => {
      const body = await subscribe({ offering_id: trialOffering });
      const scope = { tenantId: tenant.id, mode: "test" as const };
      const before = changes.length;
      await t.context.subscriptions.tick(new Date("2026-12-12T09:59:59.999Z"));
      expect(t.context.subscriptions.directory.get(scope, body.id)?.status).toBe("TRIALING");
      const result = await t.context.subscriptions.tick(new Date("2026-12-12T10:00:00.000Z"));
      expect(result.advanced).toBeGreaterThanOrEqual(1);
      expect(t.context.subscriptions.directory.get(scope, body.id)).toMatchObject({
        status: "ACTIVE",
        currentPeriodStart: new Date("2026-12-12T10:00:00Z"),
        currentPeriodEnd: new Date("2027-01-12T00:00:00Z"),
      });
      expect(changes.slice(before).some((c) => c.id === body.id && c.status === "ACTIVE")).toBe(true);
      t.clock.set("2026-12-12T10:00:00Z");
      const phases = (await as("GET", `/v1/subscriptions/${body.id}/phases`)).json().data;
      expect(phases.at(-1)).toMatchObject({
        status: "ACTIVE",
        reason: "trial_ended",
        started_at: "2026-12-12T10:00:00.000Z",
      });
    });

    it("rolls the period over on tick, and lazily on read", async () => {
      const body = await subscribe();
      const scope = { tenantId: tenant.id, mode: "test" as const };
      await t.context.subscriptions.tick(new Date("2026-12-28T00:00:00Z"));
      expect(t.context.subscriptions.directory.get(scope, body.id)?.currentPeriodStart).toEqual(
        new Date("2026-12-28T00:00:00Z"),
      );
      t.clock.set("2027-03-05T00:00:00Z");
      expect((await as("GET", `/v1/subscriptions/${body.id}`)).json()).toMatchObject({
        current_period_start: "2027-02-28T00:00:00.000Z",
        current_period_end: "2027-03-28T00:00:00.000Z",
        updated_at: "2027-03-05T00:00:00.000Z",
      });
    });
  });

  describe("consumer keys", () => {
    it("issues ak_ keys to an entitled subscription and revokes them when it is cancelled", async () => {
      const customer = await newCustomer();
      const body = await subscribe({ customer_id: customer });
      const issued = await created(
        await as("POST", `/v1/subscriptions/${body.id}/api_keys`, { name: "gateway" }),
      );
      expect(issued).toMatchObject({
        kind: "consumer",
        mode: "test",
        name: "gateway",
        status: "active",
        subscription_id: body.id,
      });
      expect(issued.key).toMatch(/^ak_test_/);
      expect(t.context.keys.authenticate(issued.key)).toMatchObject({
        subscriptionId: body.id,
        customerId: customer,
      });
      const unnamed = await created(await as("POST", `/v1/subscriptions/${body.id}/api_keys`));

      const rotated = await created(await as("POST", `/v1/api_keys/${issued.id}/rotate`));
      expect(rotated).toMatchObject({ kind: "consumer", subscription_id: body.id });
      expect(t.context.keys.authenticate(rotated.key)?.customerId).toBe(customer);

      const listed = (await as("GET", `/v1/subscriptions/${body.id}/api_keys`)).json();
      expect(listed.data.map((k: { id: string }) => k.id).sort()).toEqual(
        [issued.id, unnamed.id, rotated.id].sort(),
      );
      expect(JSON.stringify(listed)).not.toContain(issued.key);
      const all = (
        await t.request("GET", "/v1/api_keys", {
          key: tenant.testKey,
          tenant: tenant.id,
          query: { limit: "100" },
        })
      ).json();
      expect(all.data.find((k: { id: string }) => k.id === unnamed.id)).toMatchObject({ kind: "consumer" });

      expect((await as("POST", `/v1/subscriptions/${body.id}/cancel`)).statusCode).toBe(200);
      for (const key of [issued.key, unnamed.key, rotated.key])
        expect(t.context.keys.authenticate(key)).toBeUndefined();
      const after = (await as("GET", `/v1/subscriptions/${body.id}/api_keys`)).json();
      expect(after.data.every((k: { status: string }) => k.status === "revoked")).toBe(true);
      expect((await as("POST", `/v1/subscriptions/${body.id}/api_keys`, {})).statusCode).toBe(409);
    });

    it("revokes keys when a scheduled cancellation expires on tick", async () => {
      const body = await subscribe();
      const issued = await created(await as("POST", `/v1/subscriptions/${body.id}/api_keys`, {}));
      await as("POST", `/v1/subscriptions/${body.id}/cancel`, { at_period_end: true });
      expect(t.context.keys.authenticate(issued.key)).toBeDefined();
      const result = await t.context.subscriptions.tick(new Date("2026-12-28T00:00:00Z"));
      expect(result.keysRevoked).toBeGreaterThanOrEqual(1);
      expect(t.context.keys.authenticate(issued.key)).toBeUndefined();
    });

    it("refuses keys for a subscription that has not started", async () => {
      const body = await subscribe({ start_at: "2027-01-01T00:00:00Z" });
      expect((await as("POST", `/v1/subscriptions/${body.id}/api_keys`, {})).statusCode).toBe(409);
    });
  });

  describe("memory", () => {
    it("lists a customer's subscriptions from memory as they change", async () => {
      const customer = await newCustomer();
      const scope = { tenantId: tenant.id, mode: "test" as const };
      const subscriptions = t.context.subscriptions;
      expect(subscriptions.listForCustomerCached(scope, customer)).toEqual([]);
      const first = await subscribe({ customer_id: customer });
      const second = await subscribe({ customer_id: customer, offering_id: trialOffering });
      expect(subscriptions.listForCustomerCached(scope, customer).map((s) => s.id)).toEqual([
        first.id,
        second.id,
      ]);
      await as("POST", `/v1/subscriptions/${first.id}/pause`);
      expect(subscriptions.getCached(scope, first.id)?.status).toBe("PAUSED");
      expect(changes.at(-1)).toMatchObject({ id: first.id, status: "PAUSED" });
      expect(subscriptions.listForCustomerCached({ tenantId: tenant.id, mode: "live" }, customer)).toEqual(
        [],
      );
      expect(subscriptions.getCached({ tenantId: other.id, mode: "test" }, first.id)).toBeUndefined();
      // Memory applies time on read, so the edge sees the trial end at its instant, before any tick.
      t.clock.set("2026-12-12T10:00:00Z");
      expect(subscriptions.getCached(scope, second.id)?.status).toBe("ACTIVE");
    });

    it("keeps offerings with live subscriptions from guarded edits", async () => {
      const guarded = await offeringOf([monthlyPlan, await plan("USD")]);
      const removeAPlan = { rate_plan_ids: [monthlyPlan] };
      const body = await subscribe({ offering_id: guarded });
      const refused = await as("PATCH", `/v1/offerings/${guarded}`, removeAPlan);
      expect(refused.statusCode, refused.body).toBe(409);
      expect(refused.json().type).toContain("resource-in-use");
      await as("POST", `/v1/subscriptions/${body.id}/cancel`);
      expect((await as("PATCH", `/v1/offerings/${guarded}`, removeAPlan)).statusCode).toBe(200);
    });
  });

  describe("concurrency", () => {
    it("lets exactly one of several simultaneous cancels through; the others answer 409", async () => {
      const body = await subscribe();
      const responses = await Promise.all(
        Array.from({ length: 5 }, () => as("POST", `/v1/subscriptions/${body.id}/cancel`, {})),
      );
      expect(responses.map((response) => response.statusCode).sort()).toEqual([200, 409, 409, 409, 409]);
      const phases = (await as("GET", `/v1/subscriptions/${body.id}/phases`)).json().data;
      expect(phases.map((phase: { status: string }) => phase.status)).toEqual(["ACTIVE", "CANCELLED"]);
    });

    it("never redeems a promotion more often than max_redemptions, even at once", async () => {
      await created(
        await as("POST", "/v1/promotions", {
          code: "RUSH",
          amount_off: "5",
          currency: "USD",
          duration: "forever",
          max_redemptions: 2,
        }),
      );
      const responses = await Promise.all(
        Array.from({ length: 5 }, () =>
          as("POST", "/v1/subscriptions", {
            customer_id: customerId,
            offering_id: offering,
            promotion_code: "RUSH",
          }),
        ),
      );
      expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 201, 422, 422, 422]);
    });

    it("tick revokes consumer keys an ended subscription still has", async () => {
      const body = await subscribe();
      await as("POST", `/v1/subscriptions/${body.id}/cancel`, {});
      // As if the process had died between the cancellation's commit and the revocation.
      const stray = await t.context.keys.create({
        tenantId: tenant.id,
        mode: "test",
        kind: "consumer",
        subscriptionId: body.id,
        customerId,
      });
      expect(t.context.keys.authenticate(stray.secret)).toBeDefined();
      await t.context.subscriptions.tick();
      expect(t.context.keys.authenticate(stray.secret)).toBeUndefined();
    });
  });

  describe("isolation and auth", () => {
    it("answers 404 on every route for another tenant's or the other mode's subscription", async () => {
      const body = await subscribe();
      const strangers = [
        { key: other.testKey, tenant: other.id },
        { key: tenant.liveKey, tenant: tenant.id },
      ];
      const routes: [Method, string, unknown][] = [
        ["GET", `/v1/subscriptions/${body.id}`, undefined],
        ["GET", `/v1/subscriptions/${body.id}/phases`, undefined],
        ["GET", `/v1/subscriptions/${body.id}/api_keys`, undefined],
        ["POST", `/v1/subscriptions/${body.id}/api_keys`, {}],
        ["POST", `/v1/subscriptions/${body.id}/cancel`, {}],
        ["POST", `/v1/subscriptions/${body.id}/pause`, undefined],
        ["POST", `/v1/subscriptions/${body.id}/resume`, undefined],
        ["POST", `/v1/subscriptions/${body.id}/change_plan`, { offering_id: upgradeOffering }],
      ];
      for (const stranger of strangers) {
        for (const [method, url, payload] of routes) {
          const response = await t.request(method, url, { ...stranger, body: payload });
          expect(response.statusCode, `${method} ${url}`).toBe(404);
        }
        const list = await t.request("GET", "/v1/subscriptions", stranger);
        expect(list.json().data.map((s: { id: string }) => s.id)).not.toContain(body.id);
        const create = await t.request("POST", "/v1/subscriptions", {
          ...stranger,
          body: { customer_id: customerId, offering_id: offering },
        });
        expect(create.statusCode).toBe(422);
      }
      expect((await as("GET", `/v1/subscriptions/${body.id}`)).json().status).toBe("ACTIVE");
    });

    it("needs billing:write to act and billing:read to read", async () => {
      const readOnly = await created(
        await as("POST", "/v1/api_keys", { mode: "test", scopes: ["billing:read"] }),
      );
      const body = await subscribe();
      expect((await as("GET", `/v1/subscriptions/${body.id}`, undefined, readOnly.key)).statusCode).toBe(200);
      expect(
        (await as("POST", `/v1/subscriptions/${body.id}/pause`, undefined, readOnly.key)).statusCode,
      ).toBe(403);
      expect(
        (
          await as(
            "POST",
            "/v1/subscriptions",
            { customer_id: customerId, offering_id: offering },
            readOnly.key,
          )
        ).statusCode,
      ).toBe(403);
      const noBilling = await created(
        await as("POST", "/v1/api_keys", { mode: "test", scopes: ["catalog:read"] }),
      );
      expect((await as("GET", "/v1/subscriptions", undefined, noBilling.key)).statusCode).toBe(403);
    });
  });
});
