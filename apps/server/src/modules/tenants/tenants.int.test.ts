import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";

describe("tenants", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("creates a tenant with a live and a sandbox key shown once", async () => {
    const response = await t.request("POST", "/v1/tenants", {
      key: t.operatorKey,
      body: { name: "Acme Corp." },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({ object: "tenant", name: "Acme Corp.", slug: "acme-corp" });
    expect(body.id).toMatch(/^ten_/);
    expect(body.api_keys.live).toMatch(/^sk_live_[A-Za-z0-9]{40}$/);
    expect(body.api_keys.test).toMatch(/^sk_test_[A-Za-z0-9]{40}$/);

    const fetched = await t.request("GET", `/v1/tenants/${body.slug}`, { key: t.operatorKey });
    expect(fetched.json()).toEqual({
      id: body.id,
      object: "tenant",
      name: "Acme Corp.",
      slug: "acme-corp",
      created_at: body.created_at,
    });
    expect(fetched.body).not.toContain("sk_live_");
  });

  it("refuses a slug that is taken with 409", async () => {
    await t.request("POST", "/v1/tenants", { key: t.operatorKey, body: { name: "One", slug: "taken-slug" } });
    const again = await t.request("POST", "/v1/tenants", {
      key: t.operatorKey,
      body: { name: "Two", slug: "taken-slug" },
    });
    expect(again.statusCode).toBe(409);
    expect(again.headers["content-type"]).toContain("application/problem+json");
  });

  it("accepts the tenant's secret key with X-Tenant-Id as id or slug", async () => {
    const tenant = await t.createTenant();
    for (const ref of [tenant.id, tenant.slug]) {
      const response = await t.request("GET", "/v1/api_keys", { key: tenant.testKey, tenant: ref });
      expect(response.statusCode).toBe(200);
    }
  });

  it("manages tenants only with an operator key", async () => {
    const tenant = await t.createTenant();
    const response = await t.request("POST", "/v1/tenants", {
      key: tenant.liveKey,
      body: { name: "Sneaky" },
    });
    expect(response.statusCode).toBe(401);
    const list = await t.request("GET", "/v1/tenants", { key: t.operatorKey, query: { limit: "1" } });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ has_more: true });
    expect(list.json().data).toHaveLength(1);
  });

  it("applies a tenant's rate-limit overrides to its keys, with a key's own overrides winning", async () => {
    const tenant = await t.createTenant();
    const patched = await t.request("PATCH", `/v1/tenants/${tenant.id}`, {
      key: t.operatorKey,
      body: { rate_limits: { management: { limit: 60, burst: 1 } } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().rate_limits).toEqual({ management: { limit: 60, burst: 1 } });
    const as = { key: tenant.testKey, tenant: tenant.id };
    const first = await t.request("GET", "/v1/api_keys", as);
    expect(first.headers["x-ratelimit-limit"]).toBe("60");
    expect((await t.request("GET", "/v1/api_keys", as)).statusCode).toBe(429);

    t.clock.advance(2_000);
    const generous = await t.request("POST", "/v1/api_keys", {
      ...as,
      body: { mode: "test", rate_limits: { management: { limit: 6000, burst: 100 } } },
    });
    expect(generous.statusCode).toBe(201);
    const own = { key: generous.json().key, tenant: tenant.id };
    for (let i = 0; i < 5; i++) expect((await t.request("GET", "/v1/api_keys", own)).statusCode).toBe(200);
  });
});
