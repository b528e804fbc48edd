import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

describe("tax rates", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let scope: TenantScope;
  const create = (body: Record<string, unknown>, on = tenant) =>
    t.request("POST", "/v1/tax_rates", { key: on.testKey, tenant: on.id, body });
  const lines = [{ lineId: "0", amountMinor: 1000n }];
  const calculate = (country: string, region: string | null = null, exempt = false) =>
    t.context.taxes.calculate(scope, { country, region, exempt, taxId: null }, "USD", lines, t.clock.now());

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    scope = { tenantId: tenant.id, mode: "test" };
  });
  afterAll(() => t.close());

  it("creates a rate with defaults and returns its percent as a decimal string", async () => {
    const response = await create({ name: "NY sales tax", country: "US", region: "ny", percent: 8.875 });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.id).toMatch(/^txr_/);
    expect(body).toMatchObject({
      object: "tax_rate",
      name: "NY sales tax",
      country: "US",
      region: "NY",
      jurisdiction: "US-NY",
      percent: "8.875",
      inclusive: false,
      active: true,
      description: null,
    });
    const fetched = await t.request("GET", `/v1/tax_rates/${body.id}`, {
      key: tenant.testKey,
      tenant: tenant.id,
    });
    expect(fetched.json()).toEqual(body);
    expect((await calculate("US", "NY")).exclusiveTaxMinor).toBe(89n);
  });

  it("answers 400 for schema violations and 422 for a percent outside 0..100", async () => {
    expect((await create({ country: "US", percent: "5" })).statusCode).toBe(400);
    expect((await create({ name: "x", country: "usa", percent: "5" })).statusCode).toBe(400);
    expect((await create({ name: "x", country: "US", percent: "five" })).statusCode).toBe(400);
    expect((await create({ name: "x", country: "US", percent: "5", inclusive: "yes" })).statusCode).toBe(400);
    const tooHigh = await create({ name: "x", country: "US", percent: "150" });
    expect(tooHigh.statusCode).toBe(422);
    expect(tooHigh.json().errors[0].field).toBe("percent");
  });

  it("applies inclusive VAT and stops applying a rate once archived", async () => {
    const vat = (await create({ name: "MwSt", country: "DE", percent: "19", inclusive: true })).json();
    const before = await t.context.taxes.calculate(
      scope,
      { country: "DE", region: null, exempt: false, taxId: null },
      "EUR",
      [{ lineId: "0", amountMinor: 11900n }],
      t.clock.now(),
    );
    expect(before.inclusiveTaxMinor).toBe(1900n);
    expect(before.exclusiveTaxMinor).toBe(0n);
    expect((await calculate("DE", null, true)).lines).toEqual([]);

    const archived = await t.request("POST", `/v1/tax_rates/${vat.id}/archive`, {
      key: tenant.testKey,
      tenant: tenant.id,
    });
    expect(archived.json().active).toBe(false);
    expect((await calculate("DE")).lines).toEqual([]);

    const restored = await t.request("PATCH", `/v1/tax_rates/${vat.id}`, {
      key: tenant.testKey,
      tenant: tenant.id,
      body: { active: true, percent: "7" },
    });
    expect(restored.json()).toMatchObject({ active: true, percent: "7" });
    expect((await calculate("DE")).inclusiveTaxMinor).toBe(65n);
  });

  it("prefers the buyer's regional rates over the country-wide ones", async () => {
    await create({ name: "GST", country: "CA", percent: "5" });
    await create({ name: "GST", country: "CA", region: "BC", percent: "5" });
    await create({ name: "PST", country: "CA", region: "BC", percent: "7" });
    expect((await calculate("CA", "BC")).exclusiveTaxMinor).toBe(120n);
    expect((await calculate("CA", "ON")).exclusiveTaxMinor).toBe(50n);
    expect((await calculate("CA")).exclusiveTaxMinor).toBe(50n);
    expect((await calculate("JP")).lines).toEqual([]);
  });

  it("keeps tenants and modes apart: 404 across, and no rates leak into calculations", async () => {
    const other = await t.createTenant();
    const own = (await create({ name: "VAT", country: "FR", percent: "20" })).json();
    const cross = await t.request("GET", `/v1/tax_rates/${own.id}`, { key: other.testKey, tenant: other.id });
    expect(cross.statusCode).toBe(404);
    const live = await t.request("GET", `/v1/tax_rates/${own.id}`, {
      key: tenant.liveKey,
      tenant: tenant.id,
    });
    expect(live.statusCode).toBe(404);
    const archive = await t.request("DELETE", `/v1/tax_rates/${own.id}`, {
      key: other.testKey,
      tenant: other.id,
    });
    expect(archive.statusCode).toBe(404);
    const otherScope = { tenantId: other.id, mode: "test" as const };
    const foreign = await t.context.taxes.calculate(
      otherScope,
      { country: "FR", region: null, exempt: false, taxId: null },
      "EUR",
      lines,
      t.clock.now(),
    );
    expect(foreign.lines).toEqual([]);
  });

  it("lists rates newest first and filters by active and country", async () => {
    const list = await t.request("GET", "/v1/tax_rates", {
      key: tenant.testKey,
      tenant: tenant.id,
      query: { country: "CA", active: "true", limit: "2" },
    });
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body.has_more).toBe(true);
    expect(body.data.map((rate: { name: string }) => rate.name)).toEqual(["PST", "GST"]);
  });

  it("computes inside a caller's transaction without touching the database", async () => {
    const result = await t.database.db.transaction().execute(() => calculate("US", "NY"));
    expect(result.exclusiveTaxMinor).toBe(89n);
  });
});
