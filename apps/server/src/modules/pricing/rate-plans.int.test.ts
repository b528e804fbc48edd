import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPrice } from "../../cli/price-command.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

const documentedTiers = [
  { up_to: "1000", unit_price: "0.010" },
  { up_to: 10000, unit_price: "0.008" },
  { up_to: null, unit_price: "0.005" },
];

describe("rate plans", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let as: (
    method: "GET" | "POST" | "PATCH",
    url: string,
    body?: unknown,
    key?: string,
  ) => ReturnType<TestApp["request"]>;

  async function createUnit(key: string, aggregation: string, apiKey = tenant.testKey) {
    const response = await t.request("POST", "/v1/billable_units", {
      key: apiKey,
      tenant: tenant.id,
      body: {
        key,
        name: key,
        unit_label: "unit",
        aggregation,
        ...(aggregation === "COUNT" ? {} : { field: "amount" }),
      },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: string; key: string };
  }

  function plan(overrides: Record<string, unknown> = {}) {
    return {
      name: "API Pro",
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items: [{ model: "GRADUATED", billable_unit: "api_calls", tiers: documentedTiers }],
      entitlements: [],
      ...overrides,
    };
  }

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    as = (method, url, body, key = tenant.testKey) =>
      t.request(method, url, { key, tenant: tenant.id, body });
    await createUnit("api_calls", "COUNT");
    await createUnit("gmv", "SUM");
  });
  afterAll(() => t.close());

  it("creates version 1 with decimals as strings and the unit stored by key and id", async () => {
    const response = await as(
      "POST",
      "/v1/rate_plans",
      plan({ minimum_commitment: 49, rounding: "half_even" }),
    );
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({
      object: "rate_plan",
      name: "API Pro",
      currency: "USD",
      version: 1,
      latest_version: 1,
      billing_period: { interval: "month", count: 1 },
      minimum_commitment: "49",
      maximum_spend: null,
      rounding: "half_even",
      status: "ACTIVE",
      entitlements: [],
    });
    expect(body.id).toMatch(/^rp_/);
    expect(body.items[0]).toMatchObject({
      model: "GRADUATED",
      billable_unit: "api_calls",
      tiers: [
        { up_to: "1000", unit_price: "0.01" },
        { up_to: "10000", unit_price: "0.008" },
        { up_to: null, unit_price: "0.005" },
      ],
    });
    expect(body.items[0].billable_unit_id).toMatch(/^bu_/);
  });

  it("defaults the billing period to one month and entitlements to none", async () => {
    const response = await as("POST", "/v1/rate_plans", { name: "Bare", currency: "eur", items: [] });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({
      currency: "EUR",
      billing_period: { interval: "month", count: 1 },
      items: [],
      entitlements: [],
      rounding: "half_up",
    });
  });

  it("prices the documented example: 15,000 units are 107.00 graduated and 75.00 volume", async () => {
    const graduated = (await as("POST", "/v1/rate_plans", plan())).json();
    const volume = (
      await as(
        "POST",
        "/v1/rate_plans",
        plan({ items: [{ model: "VOLUME", billable_unit: "api_calls", tiers: documentedTiers }] }),
      )
    ).json();

    const preview = await as("POST", `/v1/rate_plans/${graduated.id}/price_preview`, {
      quantities: { api_calls: "15000" },
    });
    expect(preview.statusCode, preview.body).toBe(200);
    expect(preview.json()).toMatchObject({
      currency: "USD",
      rate_plan_id: graduated.id,
      version: 1,
      total: 10700,
      lines: [
        {
          billable_unit: "api_calls",
          model: "GRADUATED",
          quantity: "15000",
          amount_decimal: "107",
          amount: 10700,
          tiers: [
            { up_to: "1000", quantity: "1000", unit_price: "0.01", amount_decimal: "10" },
            { up_to: "10000", quantity: "9000", unit_price: "0.008", amount_decimal: "72" },
            { up_to: null, quantity: "5000", unit_price: "0.005", amount_decimal: "25" },
          ],
        },
      ],
    });

    const byId = graduated.items[0].billable_unit_id as string;
    const volumePreview = await as("POST", `/v1/rate_plans/${volume.id}/price_preview`, {
      quantities: { [byId]: 15000 },
    });
    expect(volumePreview.json()).toMatchObject({
      total: 7500,
      lines: [
        {
          model: "VOLUME",
          amount: 7500,
          amount_decimal: "75",
          unit_price: "0.005",
        },
      ],
    });
  });

  it("includes FLAT_RATE lines and plan-level commitment lines in the preview", async () => {
    const created = await as(
      "POST",
      "/v1/rate_plans",
      plan({
        items: [
          { model: "FLAT_RATE", flat_amount: "20.00", timing: "in_advance" },
          { model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.001" },
        ],
        minimum_commitment: "50.00",
        maximum_spend: "100",
      }),
    );
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id;
    const low = (
      await as("POST", `/v1/rate_plans/${id}/price_preview`, { quantities: { api_calls: "1000" } })
    ).json();
    expect(low.lines.map((line: { model: string; amount: number }) => [line.model, line.amount])).toEqual([
      ["FLAT_RATE", 2000],
      ["PER_UNIT", 100],
      ["MINIMUM_COMMITMENT", 2900],
    ]);
    expect(low.total).toBe(5000);
    const high = (
      await as("POST", `/v1/rate_plans/${id}/price_preview`, { quantities: { api_calls: "200000" } })
    ).json();
    expect(high.lines.at(-1)).toMatchObject({ model: "MAXIMUM_SPEND", amount: -12000, billable_unit: null });
    expect(high.total).toBe(10000);
  });

  it("makes immutable versions: v2 leaves v1 as it was", async () => {
    const v1 = (await as("POST", "/v1/rate_plans", plan())).json();
    const v2Response = await as(
      "POST",
      `/v1/rate_plans/${v1.id}/versions`,
      plan({
        name: "API Pro 2",
        items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.002" }],
      }),
    );
    expect(v2Response.statusCode, v2Response.body).toBe(201);
    expect(v2Response.json()).toMatchObject({ id: v1.id, version: 2, latest_version: 2, name: "API Pro 2" });

    const latest = (await as("GET", `/v1/rate_plans/${v1.id}`)).json();
    expect(latest).toMatchObject({ version: 2, items: [{ model: "PER_UNIT", unit_price: "0.002" }] });
    const first = await as("GET", `/v1/rate_plans/${v1.id}/versions/1`);
    expect(first.statusCode).toBe(200);
    expect({ ...first.json(), latest_version: 1 }).toEqual(v1);

    const versions = (await as("GET", `/v1/rate_plans/${v1.id}/versions`)).json();
    expect(versions.data.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const paged = (
      await t.request("GET", `/v1/rate_plans/${v1.id}/versions`, {
        key: tenant.testKey,
        tenant: tenant.id,
        query: { limit: "1", starting_after: "2" },
      })
    ).json();
    expect(paged).toMatchObject({ has_more: false, data: [{ version: 1 }] });

    const oldPrice = (
      await as("POST", `/v1/rate_plans/${v1.id}/price_preview`, {
        quantities: { api_calls: "15000" },
        version: 1,
      })
    ).json();
    expect(oldPrice).toMatchObject({ version: 1, total: 10700 });
    const newPrice = (
      await as("POST", `/v1/rate_plans/${v1.id}/price_preview`, { quantities: { api_calls: "15000" } })
    ).json();
    expect(newPrice).toMatchObject({ version: 2, total: 3000 });
    expect((await as("GET", `/v1/rate_plans/${v1.id}/versions/3`)).statusCode).toBe(404);
  });

  it("lists plans at their latest version, newest first", async () => {
    const list = await t.request("GET", "/v1/rate_plans", {
      key: tenant.testKey,
      tenant: tenant.id,
      query: { limit: "2" },
    });
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body.data).toHaveLength(2);
    expect(body.has_more).toBe(true);
    expect(body.data[0].id > body.data[1].id).toBe(true);
  });

  it("marks the plan's billable units as used, which freezes their aggregation", async () => {
    const unit = await createUnit("storage_gb", "MAX");
    await as(
      "POST",
      "/v1/rate_plans",
      plan({ items: [{ model: "PER_UNIT", billable_unit: "storage_gb", unit_price: "0.1" }] }),
    );
    const fetched = (await as("GET", `/v1/billable_units/${unit.id}`)).json();
    expect(fetched.first_used_at).not.toBeNull();
  });

  it("stores entitlements with their unit resolved and defaults filled in", async () => {
    const response = await as(
      "POST",
      "/v1/rate_plans",
      plan({
        entitlements: [
          { feature: "sso", type: "boolean" },
          {
            feature: "calls",
            type: "metered",
            billable_unit: "api_calls",
            limit: 10000,
            reset: "day",
            overage: "throttle",
          },
          { feature: "search", type: "metered", billable_unit: "api_calls", limit: "500" },
          { feature: "burst", type: "rate_limit", limit: 100, per_seconds: 60 },
        ],
      }),
    );
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().entitlements).toEqual([
      { feature: "sso", type: "boolean" },
      expect.objectContaining({
        feature: "calls",
        type: "metered",
        billable_unit: "api_calls",
        limit: "10000",
        reset: "day",
        overage: "throttle",
      }),
      expect.objectContaining({ feature: "search", limit: "500", reset: "billing_period", overage: "block" }),
      { feature: "burst", type: "rate_limit", limit: 100, per_seconds: 60, burst: 100 },
    ]);
  });

  describe("refuses plans that break pricing rules with 422 and field paths", () => {
    const cases: [string, Record<string, unknown>, string[]][] = [
      [
        "overlapping tiers",
        {
          items: [
            {
              model: "GRADUATED",
              billable_unit: "api_calls",
              tiers: [
                { up_to: 1000, unit_price: "0.01" },
                { up_to: 500, unit_price: "0.008" },
                { up_to: null, unit_price: "0.005" },
              ],
            },
          ],
        },
        ["items[0].tiers[1].up_to"],
      ],
      [
        "a bounded last tier",
        {
          items: [
            { model: "VOLUME", billable_unit: "api_calls", tiers: [{ up_to: 1000, unit_price: "0.01" }] },
          ],
        },
        ["items[0].tiers[0].up_to"],
      ],
      [
        "a negative price",
        { items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "-0.01" }] },
        ["items[0].unit_price"],
      ],
      [
        "PERCENTAGE on a COUNT unit",
        { items: [{ model: "PERCENTAGE", billable_unit: "api_calls", percent: "2.9" }] },
        ["items[0].billable_unit"],
      ],
      [
        "an unknown billable unit",
        { items: [{ model: "PER_UNIT", billable_unit: "nope", unit_price: "1" }] },
        ["items[0].billable_unit"],
      ],
      [
        "a missing model parameter",
        { items: [{ model: "PER_UNIT", billable_unit: "api_calls" }] },
        ["items[0].unit_price"],
      ],
      [
        "a duplicate entitlement feature",
        {
          entitlements: [
            { feature: "sso", type: "boolean" },
            { feature: "sso", type: "boolean" },
          ],
        },
        ["entitlements[1].feature"],
      ],
      [
        "a metered entitlement on an unknown unit",
        { entitlements: [{ feature: "calls", type: "metered", billable_unit: "ghost", limit: 5 }] },
        ["entitlements[0].billable_unit"],
      ],
      ["a maximum below the minimum", { minimum_commitment: "100", maximum_spend: "50" }, ["maximum_spend"]],
      ["a commitment finer than cents", { minimum_commitment: "10.001" }, ["minimum_commitment"]],
    ];
    for (const [name, overrides, fields] of cases) {
      it(name, async () => {
        const response = await as("POST", "/v1/rate_plans", plan(overrides));
        expect(response.statusCode, response.body).toBe(422);
        expect(response.headers["content-type"]).toContain("application/problem+json");
        expect(response.json().errors.map((error: { field: string }) => error.field)).toEqual(fields);
      });
    }

    it("PERCENTAGE on a SUM unit is accepted", async () => {
      const response = await as(
        "POST",
        "/v1/rate_plans",
        plan({ items: [{ model: "PERCENTAGE", billable_unit: "gmv", percent: "2.9", min_fee: "0.30" }] }),
      );
      expect(response.statusCode, response.body).toBe(201);
    });

    it("an unknown currency", async () => {
      const response = await as("POST", "/v1/rate_plans", plan({ currency: "ZZZ" }));
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({
        type: "http://aforo.test/problems/unknown-currency",
        errors: [{ field: "currency" }],
      });
    });

    it("a new version that breaks a rule leaves the plan at its version", async () => {
      const created = (await as("POST", "/v1/rate_plans", plan())).json();
      const bad = await as(
        "POST",
        `/v1/rate_plans/${created.id}/versions`,
        plan({ items: [{ model: "PER_UNIT", billable_unit: "nope", unit_price: "1" }] }),
      );
      expect(bad.statusCode).toBe(422);
      expect((await as("GET", `/v1/rate_plans/${created.id}`)).json()).toMatchObject({ version: 1 });
    });
  });

  describe("refuses malformed bodies with 400", () => {
    const cases: [string, unknown, string][] = [
      ["a missing name", { currency: "USD", items: [] }, "name"],
      ["missing items", { name: "x", currency: "USD" }, "items"],
      [
        "an unknown model",
        plan({ items: [{ model: "MAGIC", billable_unit: "api_calls" }] }),
        "items[0].model",
      ],
      [
        "an unknown interval",
        plan({ billing_period: { interval: "fortnight", count: 1 } }),
        "billing_period.interval",
      ],
      ["an unknown rounding mode", plan({ rounding: "bankers" }), "rounding"],
      [
        "a price that is not a decimal",
        plan({ items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "cheap" }] }),
        "items[0].unit_price",
      ],
    ];
    for (const [name, body, field] of cases) {
      it(name, async () => {
        const response = await as("POST", "/v1/rate_plans", body);
        expect(response.statusCode, response.body).toBe(400);
        expect(response.json().errors.map((error: { field: string }) => error.field)).toContain(field);
      });
    }
  });

  it("refuses preview quantities for units the plan does not price, or negative ones, with 422", async () => {
    const created = (await as("POST", "/v1/rate_plans", plan())).json();
    const unknown = await as("POST", `/v1/rate_plans/${created.id}/price_preview`, {
      quantities: { gmv: "5" },
    });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().errors).toEqual([expect.objectContaining({ field: "quantities.gmv" })]);
    const negative = await as("POST", `/v1/rate_plans/${created.id}/price_preview`, {
      quantities: { api_calls: "-1" },
    });
    expect(negative.statusCode).toBe(422);
    const empty = await as("POST", `/v1/rate_plans/${created.id}/price_preview`, {});
    expect(empty.json()).toMatchObject({ total: 0, lines: [{ quantity: "0", amount: 0 }] });
  });

  it("needs pricing:write to create and pricing:read to read", async () => {
    const reader = await as("POST", "/v1/api_keys", { mode: "test", scopes: ["pricing:read"] });
    const readKey = reader.json().key as string;
    expect((await as("POST", "/v1/rate_plans", plan(), readKey)).statusCode).toBe(403);
    expect((await as("GET", "/v1/rate_plans", undefined, readKey)).statusCode).toBe(200);
    const other = (await as("POST", "/v1/api_keys", { mode: "test", scopes: ["catalog:read"] })).json()
      .key as string;
    expect((await as("GET", "/v1/rate_plans", undefined, other)).statusCode).toBe(403);
  });

  it("answers 404 for another tenant's or the other mode's plan, and changes nothing", async () => {
    const created = (await as("POST", "/v1/rate_plans", plan())).json();
    const intruder = await t.createTenant();
    const asIntruder = (method: "GET" | "POST", url: string, body?: unknown) =>
      t.request(method, url, { key: intruder.testKey, tenant: intruder.id, body });
    expect((await asIntruder("GET", `/v1/rate_plans/${created.id}`)).statusCode).toBe(404);
    expect((await asIntruder("GET", `/v1/rate_plans/${created.id}/versions/1`)).statusCode).toBe(404);
    expect((await asIntruder("GET", `/v1/rate_plans/${created.id}/versions`)).statusCode).toBe(404);
    expect(
      (await asIntruder("POST", `/v1/rate_plans/${created.id}/price_preview`, { quantities: {} })).statusCode,
    ).toBe(404);
    expect(
      (await asIntruder("POST", `/v1/rate_plans/${created.id}/versions`, plan({ items: [] }))).statusCode,
    ).toBe(404);
    expect((await asIntruder("GET", "/v1/rate_plans")).json().data).toEqual([]);

    const live = (method: "GET" | "POST", url: string, body?: unknown) =>
      as(method, url, body, tenant.liveKey);
    expect((await live("GET", `/v1/rate_plans/${created.id}`)).statusCode).toBe(404);
    expect(
      (await live("POST", `/v1/rate_plans/${created.id}/versions`, plan({ items: [] }))).statusCode,
    ).toBe(404);
    expect((await live("GET", "/v1/rate_plans")).json().data).toEqual([]);
    // The sandbox's unit does not exist in live mode either.
    const liveItem = await live("POST", "/v1/rate_plans", plan());
    expect(liveItem.statusCode).toBe(422);

    expect((await as("GET", `/v1/rate_plans/${created.id}`)).json()).toMatchObject({
      version: 1,
      latest_version: 1,
    });
  });

  it("aforo price rates a stored plan's versions through the pricing service", async () => {
    const created = (await as("POST", "/v1/rate_plans", plan())).json();
    await as(
      "POST",
      `/v1/rate_plans/${created.id}/versions`,
      plan({ items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "1" }] }),
    );
    const deps = { openContext: async () => ({ context: t.context, close: async () => {} }) };
    const common = { tenant: tenant.slug, mode: "test", ratePlan: created.id, quantity: ["api_calls=15000"] };
    const text = await runPrice({ ...common, version: "1" }, deps);
    expect(text.split("\n")[0]).toBe(`Rate plan ${created.id} version 1 (${tenant.slug}, test)`);
    expect(text).toMatch(/TOTAL\s+107\.00 USD/);
    const latest = JSON.parse(await runPrice({ ...common, json: true }, deps));
    expect(latest).toMatchObject({ version: 2, total: 1500000 });
    await expect(runPrice({ ...common, mode: "live" }, deps)).rejects.toThrow(/No rate plan/);
  });
});
