import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

describe("billing entities", () => {
  let t: TestApp;
  let tenant: TestTenant;
  const create = (body: Record<string, unknown>, key = tenant.testKey, tenantId = tenant.id) =>
    t.request("POST", "/v1/billing_entities", { key, tenant: tenantId, body });
  const scopeOf = (ofTenant: TestTenant): TenantScope => ({ tenantId: ofTenant.id, mode: "test" });

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant("Entity Corp");
  });
  afterAll(() => t.close());

  it("creates an entity with defaults, the first one of a mode being the default", async () => {
    const response = await create({ code: "US", name: "US", legal_name: "Acme Inc.", base_currency: "usd" });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.id).toMatch(/^be_/);
    expect(body).toMatchObject({
      object: "billing_entity",
      code: "US",
      legal_name: "Acme Inc.",
      base_currency: "USD",
      timezone: "UTC",
      invoice_prefix: "US",
      is_default: true,
      address: null,
      tax_id: null,
    });
    const fetched = await t.request("GET", `/v1/billing_entities/${body.id}`, {
      key: tenant.testKey,
      tenant: tenant.id,
    });
    expect(fetched.json()).toEqual(body);
  });

  it("moves the default flag when another entity claims it", async () => {
    const eu = await create({
      code: "EU",
      name: "EU",
      legal_name: "Acme GmbH",
      base_currency: "EUR",
      timezone: "Europe/Berlin",
      invoice_prefix: "ACME-EU",
      is_default: true,
      address: { line1: "Unter den Linden 1", city: "Berlin", postal_code: "10117", country: "DE" },
      tax_id: "DE123456789",
    });
    expect(eu.statusCode).toBe(201);
    expect(eu.json()).toMatchObject({ is_default: true, timezone: "Europe/Berlin", tax_id: "DE123456789" });
    expect(eu.json().address).toEqual({
      line1: "Unter den Linden 1",
      city: "Berlin",
      postal_code: "10117",
      country: "DE",
    });
    const list = await t.request("GET", "/v1/billing_entities", { key: tenant.testKey, tenant: tenant.id });
    const defaults = list.json().data.filter((entity: { is_default: boolean }) => entity.is_default);
    expect(defaults.map((entity: { code: string }) => entity.code)).toEqual(["EU"]);

    const us = list.json().data.find((entity: { code: string }) => entity.code === "US");
    const moved = await t.request("PATCH", `/v1/billing_entities/${us.id}`, {
      key: tenant.testKey,
      tenant: tenant.id,
      body: { is_default: true },
    });
    expect(moved.json().is_default).toBe(true);
    expect((await t.context.billingEntities.get(scopeOf(tenant), eu.json().id)).isDefault).toBe(false);
    expect((await t.context.billingEntities.defaultEntity(scopeOf(tenant))).code).toBe("US");
  });

  it("refuses changes to code and base currency with 422, and unknown zones with 422", async () => {
    const created = (
      await create({ code: "JP", name: "JP", legal_name: "Acme KK", base_currency: "JPY" })
    ).json();
    for (const body of [{ code: "JP2" }, { base_currency: "USD" }, { timezone: "Mars/Olympus" }]) {
      const response = await t.request("PATCH", `/v1/billing_entities/${created.id}`, {
        key: tenant.testKey,
        tenant: tenant.id,
        body,
      });
      expect(response.statusCode).toBe(422);
      expect(response.json().errors[0].field).toBe(Object.keys(body)[0]);
    }
    const renamed = await t.request("POST", `/v1/billing_entities/${created.id}`, {
      key: tenant.testKey,
      tenant: tenant.id,
      body: { name: "Japan", code: "JP", timezone: "Asia/Tokyo" },
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json()).toMatchObject({
      name: "Japan",
      code: "JP",
      timezone: "Asia/Tokyo",
      base_currency: "JPY",
    });
  });

  it("answers 400 for a malformed code and 409 for a taken code or prefix", async () => {
    const lower = await create({ code: "us", name: "x", legal_name: "x", base_currency: "USD" });
    expect(lower.statusCode).toBe(400);
    const missing = await create({ code: "MX", name: "x", base_currency: "MXN" });
    expect(missing.statusCode).toBe(400);
    const badCurrency = await create({ code: "MX", name: "x", legal_name: "x", base_currency: "XYZ" });
    expect(badCurrency.statusCode).toBe(422);
    const taken = await create({ code: "US", name: "x", legal_name: "x", base_currency: "USD" });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().errors[0].field).toBe("code");
    const prefix = await create({
      code: "UK",
      name: "x",
      legal_name: "x",
      base_currency: "GBP",
      invoice_prefix: "US",
    });
    expect(prefix.statusCode).toBe(409);
    expect(prefix.json().errors[0].field).toBe("invoice_prefix");
  });

  it("answers 404 for another tenant's entity and for the other mode", async () => {
    const other = await t.createTenant();
    const own = (
      await create({ code: "CA", name: "CA", legal_name: "Acme Canada", base_currency: "CAD" })
    ).json();
    const cross = await t.request("GET", `/v1/billing_entities/${own.id}`, {
      key: other.testKey,
      tenant: other.id,
    });
    expect(cross.statusCode).toBe(404);
    const live = await t.request("GET", `/v1/billing_entities/${own.id}`, {
      key: tenant.liveKey,
      tenant: tenant.id,
    });
    expect(live.statusCode).toBe(404);
    const patch = await t.request("PATCH", `/v1/billing_entities/${own.id}`, {
      key: other.testKey,
      tenant: other.id,
      body: { name: "Hijacked" },
    });
    expect(patch.statusCode).toBe(404);
  });

  it("creates the DEFAULT entity on first use, once, even when asked concurrently", async () => {
    const fresh = await t.createTenant("Fresh Tenant LLC");
    const scope = scopeOf(fresh);
    const entities = await Promise.all(
      Array.from({ length: 5 }, () => t.context.billingEntities.defaultEntity(scope)),
    );
    expect(new Set(entities.map((entity) => entity.id)).size).toBe(1);
    expect(entities[0]).toMatchObject({
      code: "DEFAULT",
      name: "Default",
      legalName: "Fresh Tenant LLC",
      baseCurrency: "USD",
      timezone: "UTC",
      invoicePrefix: "DEFAULT",
      isDefault: true,
    });
    const list = await t.request("GET", "/v1/billing_entities", { key: fresh.testKey, tenant: fresh.id });
    expect(list.json().data).toHaveLength(1);
    // A later entity does not take the default unless it asks to.
    const second = await create(
      { code: "EU", name: "EU", legal_name: "x", base_currency: "EUR" },
      fresh.testKey,
      fresh.id,
    );
    expect(second.json().is_default).toBe(false);
  });

  describe("invoice numbering", () => {
    it("numbers 20 concurrent transactions 1..20 without gaps or duplicates", async () => {
      const scope = scopeOf(tenant);
      const entity = (
        await create({ code: "SEQ", name: "Seq", legal_name: "Seq", base_currency: "USD" })
      ).json();
      const issuedAt = new Date("2026-06-01T00:00:00Z");
      const numbers = await Promise.all(
        Array.from({ length: 20 }, () =>
          t.database.db.transaction().execute(async (trx) => {
            const number = await t.context.billingEntities.nextInvoiceNumber(scope, entity.id, issuedAt, trx);
            await new Promise((resolve) => setTimeout(resolve, 2));
            return number;
          }),
        ),
      );
      const expected = Array.from({ length: 20 }, (_, i) => `SEQ-2026-${String(i + 1).padStart(4, "0")}`);
      expect([...numbers].sort()).toEqual(expected);
    });

    it("reuses the number of a rolled-back transaction and restarts at 0001 in a new year", async () => {
      const scope = scopeOf(tenant);
      const entity = (
        await create({ code: "ROLL", name: "Roll", legal_name: "Roll", base_currency: "USD" })
      ).json();
      const next = (at: string) =>
        t.database.db
          .transaction()
          .execute((trx) => t.context.billingEntities.nextInvoiceNumber(scope, entity.id, new Date(at), trx));
      expect(await next("2026-03-01T00:00:00Z")).toBe("ROLL-2026-0001");
      const failed = t.database.db.transaction().execute(async (trx) => {
        expect(
          await t.context.billingEntities.nextInvoiceNumber(scope, entity.id, new Date("2026-03-02"), trx),
        ).toBe("ROLL-2026-0002");
        throw new Error("finalisation failed");
      });
      await expect(failed).rejects.toThrow("finalisation failed");
      expect(await next("2026-12-31T23:59:59Z")).toBe("ROLL-2026-0002");
      expect(await next("2027-01-01T00:00:00Z")).toBe("ROLL-2027-0001");
      expect(await next("2026-12-31T12:00:00Z")).toBe("ROLL-2026-0003");
    });

    it("freezes the prefix once a number was issued, and refuses another tenant's entity", async () => {
      const scope = scopeOf(tenant);
      const entity = (await create({ code: "FRZ", name: "F", legal_name: "F", base_currency: "USD" })).json();
      const rename = (prefix: string) =>
        t.request("PATCH", `/v1/billing_entities/${entity.id}`, {
          key: tenant.testKey,
          tenant: tenant.id,
          body: { invoice_prefix: prefix },
        });
      expect((await rename("FRZ1")).statusCode).toBe(200);
      await t.database.db
        .transaction()
        .execute((trx) => t.context.billingEntities.nextInvoiceNumber(scope, entity.id, new Date(), trx));
      const refused = await rename("FRZ2");
      expect(refused.statusCode).toBe(422);
      expect(refused.json().errors[0].field).toBe("invoice_prefix");

      const other = await t.createTenant();
      const foreign = t.database.db
        .transaction()
        .execute((trx) =>
          t.context.billingEntities.nextInvoiceNumber(scopeOf(other), entity.id, new Date(), trx),
        );
      await expect(foreign).rejects.toMatchObject({ status: 404 });
    });
  });

  it("needs billing scopes", async () => {
    const keyResponse = await t.request("POST", "/v1/api_keys", {
      key: tenant.testKey,
      tenant: tenant.id,
      body: { mode: "test", scopes: ["billing:read"] },
    });
    const readOnly = keyResponse.json().key;
    const list = await t.request("GET", "/v1/billing_entities", { key: readOnly, tenant: tenant.id });
    expect(list.statusCode).toBe(200);
    const write = await create({ code: "RO", name: "x", legal_name: "x", base_currency: "USD" }, readOnly);
    expect(write.statusCode).toBe(403);
  });
});
