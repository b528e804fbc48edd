import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

/** Every catalog call is scoped by tenant and mode: another tenant's or mode's ids answer 404. */
describe("catalog isolation", () => {
  let t: TestApp;
  let a: TestTenant;
  let b: TestTenant;
  const asA = () => ({ key: a.testKey, tenant: a.id });
  const asB = () => ({ key: b.testKey, tenant: b.id });
  let product: Record<string, unknown>;
  let unit: Record<string, unknown>;
  let liveProduct: Record<string, unknown>;
  let liveUnit: Record<string, unknown>;

  beforeAll(async () => {
    t = await createTestApp();
    a = await t.createTenant();
    b = await t.createTenant();
    unit = (
      await t.request("POST", "/v1/billable_units", {
        ...asA(),
        body: { key: "a_calls", name: "Calls", unit_label: "call", aggregation: "COUNT" },
      })
    ).json();
    product = (
      await t.request("POST", "/v1/products", {
        ...asA(),
        body: { name: "A's API", type: "API", billable_unit_ids: [unit.id] },
      })
    ).json();
    // Re-read: attaching it to the product above changed its product_ids.
    unit = (await t.request("GET", `/v1/billable_units/${unit.id}`, asA())).json();
    liveUnit = (
      await t.request("POST", "/v1/billable_units", {
        key: a.liveKey,
        tenant: a.id,
        body: { key: "live_calls", name: "Calls", unit_label: "call", aggregation: "COUNT" },
      })
    ).json();
    liveProduct = (
      await t.request("POST", "/v1/products", {
        key: a.liveKey,
        tenant: a.id,
        body: { name: "Live API", type: "API" },
      })
    ).json();
  });
  afterAll(() => t.close());

  it("answers 404 to another tenant's key on a product, and changes nothing", async () => {
    const bUnit = (
      await t.request("POST", "/v1/billable_units", {
        ...asB(),
        body: { key: "b_calls", name: "Calls", unit_label: "call", aggregation: "COUNT" },
      })
    ).json();
    const calls: [string, string, unknown?][] = [
      ["GET", `/v1/products/${product.id}`],
      ["PATCH", `/v1/products/${product.id}`, { name: "Hijacked", lifecycle: "DEPRECATED" }],
      ["POST", `/v1/products/${product.id}`, { name: "Hijacked" }],
      ["POST", `/v1/products/${product.id}/archive`],
      ["DELETE", `/v1/products/${product.id}`],
      ["POST", `/v1/products/${product.id}/billable_units`, { billable_unit_ids: [bUnit.id] }],
      ["DELETE", `/v1/products/${product.id}/billable_units/${unit.id}`],
    ];
    for (const [method, url, body] of calls) {
      const response = await t.request(method as "GET", url, { ...asB(), body });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    const list = await t.request("GET", "/v1/products", asB());
    expect(list.json().data).toEqual([]);
    const after = await t.request("GET", `/v1/products/${product.id}`, asA());
    expect(after.json()).toEqual(product);
  });

  it("answers 404 to another tenant's key on a billable unit, by id or key, and changes nothing", async () => {
    for (const ref of [unit.id, unit.key]) {
      const calls: [string, string, unknown?][] = [
        ["GET", `/v1/billable_units/${ref}`],
        ["PATCH", `/v1/billable_units/${ref}`, { name: "Hijacked", aggregation: "SUM" }],
        ["POST", `/v1/billable_units/${ref}`, { name: "Hijacked" }],
        ["POST", `/v1/billable_units/${ref}/archive`],
        ["DELETE", `/v1/billable_units/${ref}`],
      ];
      for (const [method, url, body] of calls) {
        const response = await t.request(method as "GET", url, { ...asB(), body });
        expect(response.statusCode, `${method} ${url}`).toBe(404);
      }
    }
    const after = await t.request("GET", `/v1/billable_units/${unit.id}`, asA());
    expect(after.json()).toEqual(unit);
  });

  it("never lets another tenant link to A's products or units (422, nothing linked)", async () => {
    const withAUnit = await t.request("POST", "/v1/products", {
      ...asB(),
      body: { name: "B", type: "API", billable_unit_ids: [unit.id] },
    });
    expect(withAUnit.statusCode).toBe(422);
    const withAProduct = await t.request("POST", "/v1/billable_units", {
      ...asB(),
      body: { key: "b_sneaky", name: "x", unit_label: "x", aggregation: "COUNT", product_ids: [product.id] },
    });
    expect(withAProduct.statusCode).toBe(422);
    const listed = await t.request("GET", "/v1/billable_units", {
      ...asB(),
      query: { product_id: product.id as string },
    });
    expect(listed.json().data).toEqual([]);
    expect((await t.request("GET", `/v1/products/${product.id}`, asA())).json().billable_unit_ids).toEqual([
      unit.id,
    ]);
  });

  it("keeps live and test apart: a sandbox key cannot see live products or units, and vice versa", async () => {
    const live = { key: a.liveKey, tenant: a.id };
    for (const url of [
      `/v1/products/${liveProduct.id}`,
      `/v1/billable_units/${liveUnit.id}`,
      "/v1/billable_units/live_calls",
    ]) {
      expect((await t.request("GET", url, asA())).statusCode, url).toBe(404);
    }
    for (const url of [
      `/v1/products/${product.id}`,
      `/v1/billable_units/${unit.id}`,
      "/v1/billable_units/a_calls",
    ]) {
      expect((await t.request("GET", url, live)).statusCode, url).toBe(404);
    }
    const patch = await t.request("PATCH", `/v1/products/${liveProduct.id}`, {
      ...asA(),
      body: { name: "x" },
    });
    expect(patch.statusCode).toBe(404);
    const archive = await t.request("DELETE", `/v1/billable_units/${liveUnit.id}`, asA());
    expect(archive.statusCode).toBe(404);

    const testProducts = (await t.request("GET", "/v1/products", asA()))
      .json()
      .data.map((p: { id: string }) => p.id);
    const liveProducts = (await t.request("GET", "/v1/products", live))
      .json()
      .data.map((p: { id: string }) => p.id);
    expect(testProducts).toEqual([product.id]);
    expect(liveProducts).toEqual([liveProduct.id]);
    const liveUnits = (await t.request("GET", "/v1/billable_units", live))
      .json()
      .data.map((u: { id: string }) => u.id);
    expect(liveUnits).toEqual([liveUnit.id]);

    const crossAttach = await t.request("POST", `/v1/products/${liveProduct.id}/billable_units`, {
      ...live,
      body: { billable_unit_ids: [unit.id] },
    });
    expect(crossAttach.statusCode).toBe(422);
  });

  it("lets a catalog:read key read but answers 403 to its writes", async () => {
    const issued = await t.request("POST", "/v1/api_keys", {
      ...asA(),
      body: { mode: "test", scopes: ["catalog:read"] },
    });
    expect(issued.statusCode, issued.body).toBe(201);
    const reader = { key: issued.json().key as string, tenant: a.id };

    expect((await t.request("GET", "/v1/products", reader)).statusCode).toBe(200);
    expect((await t.request("GET", `/v1/products/${product.id}`, reader)).statusCode).toBe(200);
    expect((await t.request("GET", "/v1/billable_units", reader)).statusCode).toBe(200);
    expect((await t.request("GET", `/v1/billable_units/${unit.key}`, reader)).statusCode).toBe(200);

    const writes: [string, string, unknown?][] = [
      ["POST", "/v1/products", { name: "x", type: "API" }],
      ["PATCH", `/v1/products/${product.id}`, { name: "x" }],
      ["POST", `/v1/products/${product.id}`, { name: "x" }],
      ["POST", `/v1/products/${product.id}/archive`],
      ["DELETE", `/v1/products/${product.id}`],
      ["POST", `/v1/products/${product.id}/billable_units`, { billable_unit_ids: [unit.id] }],
      ["DELETE", `/v1/products/${product.id}/billable_units/${unit.id}`],
      ["POST", "/v1/billable_units", { key: "nope", name: "x", unit_label: "x", aggregation: "COUNT" }],
      ["PATCH", `/v1/billable_units/${unit.id}`, { name: "x" }],
      ["POST", `/v1/billable_units/${unit.id}`, { name: "x" }],
      ["POST", `/v1/billable_units/${unit.id}/archive`],
      ["DELETE", `/v1/billable_units/${unit.id}`],
    ];
    for (const [method, url, body] of writes) {
      const response = await t.request(method as "GET", url, { ...reader, body });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await t.request("GET", `/v1/products/${product.id}`, asA())).json()).toEqual(product);
  });

  it("answers 403 to a key without any catalog scope, even for reads", async () => {
    const issued = await t.request("POST", "/v1/api_keys", {
      ...asA(),
      body: { mode: "test", scopes: ["pricing:read"] },
    });
    const other = { key: issued.json().key as string, tenant: a.id };
    expect((await t.request("GET", "/v1/products", other)).statusCode).toBe(403);
    expect((await t.request("GET", "/v1/billable_units", other)).statusCode).toBe(403);
  });

  it("answers 401 without a key", async () => {
    expect((await t.request("GET", "/v1/products", { tenant: a.id })).statusCode).toBe(401);
  });
});
