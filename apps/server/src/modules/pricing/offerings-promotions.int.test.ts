import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

type Method = "GET" | "POST" | "PATCH";

describe("offerings and promotions", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let as: (method: Method, url: string, body?: unknown, key?: string) => ReturnType<TestApp["request"]>;
  let usdPlan: string;
  let usdPlan2: string;
  let eurPlan: string;

  async function createPlan(currency: string): Promise<string> {
    const response = await as("POST", "/v1/rate_plans", {
      name: `Plan ${currency}`,
      currency,
      billing_period: { interval: "month", count: 1 },
      items: [{ model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" }],
      entitlements: [],
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().id;
  }

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    as = (method, url, body, key = tenant.testKey) =>
      t.request(method, url, { key, tenant: tenant.id, body });
    usdPlan = await createPlan("USD");
    usdPlan2 = await createPlan("USD");
    eurPlan = await createPlan("EUR");
  });
  afterAll(() => t.close());

  describe("offerings", () => {
    it("creates a draft offering with the plans' currency and defaults", async () => {
      const response = await as("POST", "/v1/offerings", {
        name: "Starter",
        rate_plan_ids: [usdPlan],
        billing_mode: "POSTPAID",
      });
      expect(response.statusCode, response.body).toBe(201);
      const body = response.json();
      expect(body).toMatchObject({
        object: "offering",
        name: "Starter",
        description: null,
        rate_plan_ids: [usdPlan],
        billing_mode: "POSTPAID",
        trial_days: 0,
        escrow: null,
        initial_credits: null,
        currency: "USD",
        status: "DRAFT",
      });
      expect(body.id).toMatch(/^off_/);
      expect((await as("GET", `/v1/offerings/${body.id}`)).json()).toEqual(body);
    });

    it("gives PREPAID offerings an escrow that blocks when the wallet is empty", async () => {
      const response = await as("POST", "/v1/offerings", {
        name: "Credits",
        rate_plan_ids: [usdPlan],
        billing_mode: "PREPAID",
        initial_credits: "25.00",
        trial_days: 14,
      });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toMatchObject({
        escrow: { low_balance_threshold: "0", on_empty: "BLOCK" },
        initial_credits: "25",
        trial_days: 14,
      });
      const hybrid = await as("POST", "/v1/offerings", {
        name: "Hybrid",
        rate_plan_ids: [usdPlan],
        billing_mode: "HYBRID",
        escrow: { low_balance_threshold: 5, on_empty: "ALERT" },
      });
      expect(hybrid.json().escrow).toEqual({ low_balance_threshold: "5", on_empty: "ALERT" });
    });

    const invalid: [string, Record<string, unknown>, string, number][] = [
      ["an unknown rate plan", { rate_plan_ids: ["rp_nope"] }, "rate_plan_ids[0]", 422],
      ["plans in two currencies", { rate_plan_ids: ["USD", "EUR"] }, "rate_plan_ids[1]", 422],
      ["a currency the plans are not priced in", { currency: "EUR" }, "rate_plan_ids[0]", 422],
      [
        "escrow on a POSTPAID offering",
        { escrow: { low_balance_threshold: "1", on_empty: "BLOCK" } },
        "escrow",
        422,
      ],
      [
        "negative initial credits",
        { billing_mode: "PREPAID", initial_credits: "-5" },
        "initial_credits",
        422,
      ],
      ["the same plan twice", { rate_plan_ids: ["USD", "USD"] }, "rate_plan_ids[1]", 422],
      ["an unknown billing mode", { billing_mode: "FREE" }, "billing_mode", 400],
      ["no rate plans", { rate_plan_ids: [] }, "rate_plan_ids", 400],
      ["negative trial days", { trial_days: -1 }, "trial_days", 400],
    ];
    for (const [name, overrides, field, status] of invalid) {
      it(`refuses ${name} (${status})`, async () => {
        const planIds = (overrides.rate_plan_ids as string[] | undefined)?.map((id) =>
          id === "USD" ? usdPlan : id === "EUR" ? eurPlan : id,
        );
        const body = {
          name: "Bad",
          rate_plan_ids: [usdPlan],
          billing_mode: "POSTPAID",
          ...overrides,
          ...(planIds ? { rate_plan_ids: planIds } : {}),
        };
        const response = await as("POST", "/v1/offerings", body);
        expect(response.statusCode, response.body).toBe(status);
        expect(response.json().errors.map((error: { field: string }) => error.field)).toContain(field);
      });
    }

    it("updates with PATCH or POST, and moves DRAFT → PUBLISHED → ARCHIVED only", async () => {
      const id = (
        await as("POST", "/v1/offerings", {
          name: "Team",
          rate_plan_ids: [usdPlan],
          billing_mode: "POSTPAID",
        })
      ).json().id;
      const patched = await as("PATCH", `/v1/offerings/${id}`, {
        name: "Team+",
        rate_plan_ids: [usdPlan, usdPlan2],
        trial_days: 7,
      });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({
        name: "Team+",
        rate_plan_ids: [usdPlan, usdPlan2],
        trial_days: 7,
        status: "DRAFT",
      });
      const posted = await as("POST", `/v1/offerings/${id}`, { description: "For teams" });
      expect(posted.json()).toMatchObject({ name: "Team+", description: "For teams" });

      const published = await as("POST", `/v1/offerings/${id}/publish`);
      expect(published.json().status).toBe("PUBLISHED");
      expect((await as("POST", `/v1/offerings/${id}/publish`)).statusCode).toBe(200);
      const backToDraft = await as("PATCH", `/v1/offerings/${id}`, { status: "DRAFT" });
      expect(backToDraft.statusCode).toBe(409);
      expect(backToDraft.json().type).toContain("invalid-transition");

      expect((await as("PATCH", `/v1/offerings/${id}`, { status: "ARCHIVED" })).json().status).toBe(
        "ARCHIVED",
      );
      expect((await as("POST", `/v1/offerings/${id}/archive`)).statusCode).toBe(200);
      expect((await as("POST", `/v1/offerings/${id}/publish`)).statusCode).toBe(409);
      expect((await as("PATCH", `/v1/offerings/${id}`, { name: "Zombie" })).statusCode).toBe(409);
      expect((await as("GET", `/v1/offerings/${id}`)).json()).toMatchObject({
        name: "Team+",
        status: "ARCHIVED",
      });

      const archivedList = await t.request("GET", "/v1/offerings", {
        key: tenant.testKey,
        tenant: tenant.id,
        query: { status: "ARCHIVED" },
      });
      expect(archivedList.json().data.map((o: { id: string }) => o.id)).toEqual([id]);
    });

    it("refuses edits that would change what subscribers pay while the offering has subscriptions", async () => {
      const id = (
        await as("POST", "/v1/offerings", {
          name: "Guarded",
          rate_plan_ids: [usdPlan, usdPlan2],
          billing_mode: "POSTPAID",
        })
      ).json().id;
      t.context.pricing.setSubscriptionProbe(async (_scope, offeringId) => offeringId === id);
      try {
        const removal = await as("PATCH", `/v1/offerings/${id}`, { rate_plan_ids: [usdPlan] });
        expect(removal.statusCode).toBe(409);
        expect(removal.json()).toMatchObject({
          type: expect.stringContaining("resource-in-use"),
          errors: [{ field: "rate_plan_ids" }],
        });
        expect((await as("PATCH", `/v1/offerings/${id}`, { billing_mode: "HYBRID" })).statusCode).toBe(409);
        const harmless = await as("PATCH", `/v1/offerings/${id}`, { name: "Guarded 2", trial_days: 3 });
        expect(harmless.statusCode).toBe(200);
        expect((await as("GET", `/v1/offerings/${id}`)).json()).toMatchObject({
          rate_plan_ids: [usdPlan, usdPlan2],
          name: "Guarded 2",
        });
      } finally {
        t.context.pricing.setSubscriptionProbe(async () => false);
      }
    });

    it("answers 404 for another tenant's or the other mode's offering, and changes nothing", async () => {
      const id = (
        await as("POST", "/v1/offerings", {
          name: "Mine",
          rate_plan_ids: [usdPlan],
          billing_mode: "POSTPAID",
        })
      ).json().id;
      const intruder = await t.createTenant();
      for (const [key, tenantId] of [
        [intruder.testKey, intruder.id],
        [tenant.liveKey, tenant.id],
      ] as const) {
        const call = (method: Method, url: string, body?: unknown) =>
          t.request(method, url, { key, tenant: tenantId, body });
        expect((await call("GET", `/v1/offerings/${id}`)).statusCode).toBe(404);
        expect((await call("PATCH", `/v1/offerings/${id}`, { name: "Stolen" })).statusCode).toBe(404);
        expect((await call("POST", `/v1/offerings/${id}/publish`)).statusCode).toBe(404);
        expect((await call("POST", `/v1/offerings/${id}/archive`)).statusCode).toBe(404);
        expect((await call("GET", "/v1/offerings")).json().data).toEqual([]);
        // A plan of another tenant or mode is unknown when building an offering.
        const borrowed = await call("POST", "/v1/offerings", {
          name: "x",
          rate_plan_ids: [usdPlan],
          billing_mode: "POSTPAID",
        });
        expect(borrowed.statusCode).toBe(422);
      }
      expect((await as("GET", `/v1/offerings/${id}`)).json()).toMatchObject({
        name: "Mine",
        status: "DRAFT",
      });
    });
  });

  describe("promotions", () => {
    it("creates a percent-off code that is redeemable, with times_redeemed 0", async () => {
      const response = await as("POST", "/v1/promotions", {
        code: "Launch20",
        percent_off: 20,
        duration: "repeating",
        duration_in_periods: 3,
        max_redemptions: 100,
        expires_at: "2027-01-01T00:00:00Z",
      });
      expect(response.statusCode, response.body).toBe(201);
      const body = response.json();
      expect(body).toMatchObject({
        object: "promotion",
        code: "Launch20",
        percent_off: "20",
        amount_off: null,
        currency: null,
        duration: "repeating",
        duration_in_periods: 3,
        max_redemptions: 100,
        expires_at: "2027-01-01T00:00:00.000Z",
        offering_ids: [],
        status: "ACTIVE",
        times_redeemed: 0,
        redeemable: true,
      });
      expect(body.id).toMatch(/^promo_/);
      expect((await as("GET", `/v1/promotions/${body.id}`)).json()).toEqual(body);
    });

    it("creates an amount-off code for an offering, with its currency", async () => {
      const offering = (
        await as("POST", "/v1/offerings", { name: "P", rate_plan_ids: [usdPlan], billing_mode: "POSTPAID" })
      ).json().id;
      const response = await as("POST", "/v1/promotions", {
        code: "TENOFF",
        amount_off: "10.00",
        currency: "usd",
        duration: "once",
        offering_ids: [offering],
      });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toMatchObject({
        amount_off: "10",
        currency: "USD",
        percent_off: null,
        offering_ids: [offering],
      });
    });

    it("refuses a code already taken in any case with 409", async () => {
      await as("POST", "/v1/promotions", { code: "WELCOME", percent_off: "5", duration: "forever" });
      const again = await as("POST", "/v1/promotions", {
        code: "welcome",
        percent_off: "10",
        duration: "once",
      });
      expect(again.statusCode).toBe(409);
      // Codes are per tenant and mode: the live side may reuse it.
      const live = await as(
        "POST",
        "/v1/promotions",
        { code: "welcome", percent_off: "10", duration: "once" },
        tenant.liveKey,
      );
      expect(live.statusCode).toBe(201);
    });

    const invalid: [string, Record<string, unknown>, string, number][] = [
      [
        "both percent_off and amount_off",
        { percent_off: 5, amount_off: 5, currency: "USD" },
        "amount_off",
        422,
      ],
      ["neither percent_off nor amount_off", {}, "percent_off", 422],
      ["percent_off of 0", { percent_off: 0 }, "percent_off", 422],
      ["percent_off above 100", { percent_off: "100.5" }, "percent_off", 422],
      ["amount_off without a currency", { amount_off: 5 }, "currency", 422],
      ["an unknown currency", { amount_off: 5, currency: "ZZZ" }, "currency", 422],
      [
        "repeating without duration_in_periods",
        { percent_off: 5, duration: "repeating" },
        "duration_in_periods",
        422,
      ],
      [
        "duration_in_periods when not repeating",
        { percent_off: 5, duration_in_periods: 2 },
        "duration_in_periods",
        422,
      ],
      ["an expiry in the past", { percent_off: 5, expires_at: "2020-01-01T00:00:00Z" }, "expires_at", 422],
      ["an unknown offering", { percent_off: 5, offering_ids: ["off_nope"] }, "offering_ids[0]", 422],
      ["an unknown duration", { percent_off: 5, duration: "sometimes" }, "duration", 400],
      ["a code with spaces", { percent_off: 5, code: "NO SPACES" }, "code", 400],
      ["a missing code", { percent_off: 5, code: undefined }, "code", 400],
    ];
    for (const [name, overrides, field, status] of invalid) {
      it(`refuses ${name} (${status})`, async () => {
        const response = await as("POST", "/v1/promotions", {
          code: `BAD${Math.random().toString(36).slice(2, 8)}`,
          duration: "once",
          ...overrides,
        });
        expect(response.statusCode, response.body).toBe(status);
        expect(response.json().errors.map((error: { field: string }) => error.field)).toContain(field);
      });
    }

    it("archives a code for good; it is no longer redeemable and stays reserved", async () => {
      const id = (
        await as("POST", "/v1/promotions", { code: "BYE", percent_off: 50, duration: "once" })
      ).json().id;
      const archived = await as("POST", `/v1/promotions/${id}/archive`);
      expect(archived.statusCode).toBe(200);
      expect(archived.json()).toMatchObject({ status: "ARCHIVED", redeemable: false });
      expect(archived.json().archived_at).toBe(t.clock.now().toISOString());
      expect((await as("POST", `/v1/promotions/${id}/archive`)).json().archived_at).toBe(
        archived.json().archived_at,
      );
      expect(
        (await as("POST", "/v1/promotions", { code: "bye", percent_off: 5, duration: "once" })).statusCode,
      ).toBe(409);
    });

    it("shows an expired code as not redeemable once the clock passes expires_at", async () => {
      const id = (
        await as("POST", "/v1/promotions", {
          code: "SOON",
          percent_off: 5,
          duration: "once",
          expires_at: "2026-11-29T00:00:00Z",
        })
      ).json().id;
      expect((await as("GET", `/v1/promotions/${id}`)).json().redeemable).toBe(true);
      t.clock.set("2026-11-29T00:00:00Z");
      try {
        expect((await as("GET", `/v1/promotions/${id}`)).json().redeemable).toBe(false);
      } finally {
        t.clock.set("2026-11-28T10:00:00Z");
      }
    });

    it("lists promotions newest first", async () => {
      const list = await t.request("GET", "/v1/promotions", {
        key: tenant.testKey,
        tenant: tenant.id,
        query: { limit: "2" },
      });
      expect(list.statusCode).toBe(200);
      expect(list.json()).toMatchObject({ has_more: true });
      expect(list.json().data).toHaveLength(2);
    });

    it("answers 404 for another tenant's or the other mode's promotion, and changes nothing", async () => {
      const id = (
        await as("POST", "/v1/promotions", { code: "PRIVATE", percent_off: 5, duration: "once" })
      ).json().id;
      const intruder = await t.createTenant();
      for (const [key, tenantId] of [
        [intruder.testKey, intruder.id],
        [tenant.liveKey, tenant.id],
      ] as const) {
        const call = (method: Method, url: string) => t.request(method, url, { key, tenant: tenantId });
        expect((await call("GET", `/v1/promotions/${id}`)).statusCode).toBe(404);
        expect((await call("POST", `/v1/promotions/${id}/archive`)).statusCode).toBe(404);
      }
      expect(
        (await t.request("GET", "/v1/promotions", { key: intruder.testKey, tenant: intruder.id })).json()
          .data,
      ).toEqual([]);
      expect((await as("GET", `/v1/promotions/${id}`)).json()).toMatchObject({ status: "ACTIVE" });
    });
  });
});
