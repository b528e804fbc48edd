import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

describe("products", () => {
  let t: TestApp;
  let tenant: TestTenant;
  const as = () => ({ key: tenant.testKey, tenant: tenant.id });

  async function createProduct(body: Record<string, unknown> = {}) {
    const response = await t.request("POST", "/v1/products", {
      ...as(),
      body: { name: "Translation API", type: "API", ...body },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  async function createUnit(key: string) {
    const response = await t.request("POST", "/v1/billable_units", {
      ...as(),
      body: { key, name: key, unit_label: "call", aggregation: "COUNT" },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("creates a product as a DRAFT, GA, EXTERNAL product by default", async () => {
    const product = await createProduct({ description: "Translates text" });
    expect(product).toEqual({
      id: expect.stringMatching(/^prod_/),
      object: "product",
      name: "Translation API",
      type: "API",
      description: "Translates text",
      audience: "EXTERNAL",
      lifecycle: "GA",
      status: "DRAFT",
      metadata: {},
      billable_unit_ids: [],
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const fetched = await t.request("GET", `/v1/products/${product.id}`, as());
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(product);
  });

  it("creates a product with every field given", async () => {
    const unit = await createUnit("agent_sessions");
    const product = await createProduct({
      name: "Support Agent",
      type: "AI_AGENT",
      status: "IN_REVIEW",
      audience: "PARTNER",
      lifecycle: "BETA",
      metadata: { team: "support" },
      billable_unit_ids: [unit.key],
    });
    expect(product).toMatchObject({
      type: "AI_AGENT",
      status: "IN_REVIEW",
      audience: "PARTNER",
      lifecycle: "BETA",
      metadata: { team: "support" },
      billable_unit_ids: [unit.id],
    });
  });

  it("refuses a schema violation with 400 and field errors", async () => {
    for (const body of [
      { type: "API" },
      { name: "x", type: "SOAP" },
      { name: "x", type: "API", status: "LIVE" },
    ]) {
      const response = await t.request("POST", "/v1/products", { ...as(), body });
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().errors.length).toBeGreaterThan(0);
    }
  });

  it("refuses a blank name and unknown billable units with 422 and field errors", async () => {
    const blank = await t.request("POST", "/v1/products", { ...as(), body: { name: "  ", type: "API" } });
    expect(blank.statusCode).toBe(422);
    expect(blank.json().errors).toEqual([{ field: "name", message: expect.any(String) }]);

    const unknown = await t.request("POST", "/v1/products", {
      ...as(),
      body: { name: "x", type: "API", billable_unit_ids: ["nope"] },
    });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().errors).toEqual([{ field: "billable_unit_ids[0]", message: expect.any(String) }]);
  });

  it("updates with PATCH and with POST alike, changing only the fields given", async () => {
    const product = await createProduct({ description: "first" });
    t.clock.advance(1000);
    const patched = await t.request("PATCH", `/v1/products/${product.id}`, {
      ...as(),
      body: { name: "Renamed", metadata: { a: "1" } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ name: "Renamed", description: "first", metadata: { a: "1" } });
    expect(patched.json().updated_at).not.toBe(product.updated_at);

    const posted = await t.request("POST", `/v1/products/${product.id}`, {
      ...as(),
      body: { description: null, audience: "INTERNAL" },
    });
    expect(posted.statusCode).toBe(200);
    expect(posted.json()).toMatchObject({ name: "Renamed", description: null, audience: "INTERNAL" });
  });

  it("archives with POST /archive and with DELETE, softly and idempotently", async () => {
    for (const [method, suffix] of [
      ["POST", "/archive"],
      ["DELETE", ""],
    ] as const) {
      const product = await createProduct({ status: "PUBLISHED" });
      const archived = await t.request(method, `/v1/products/${product.id}${suffix}`, as());
      expect(archived.statusCode).toBe(200);
      expect(archived.json()).toMatchObject({ id: product.id, status: "ARCHIVED" });
      const again = await t.request(method, `/v1/products/${product.id}${suffix}`, as());
      expect(again.statusCode).toBe(200);
      const fetched = await t.request("GET", `/v1/products/${product.id}`, as());
      expect(fetched.json().status).toBe("ARCHIVED");
    }
  });

  it("answers 404 for an unknown product", async () => {
    for (const [method, url] of [
      ["GET", "/v1/products/prod_nope"],
      ["PATCH", "/v1/products/prod_nope"],
      ["POST", "/v1/products/prod_nope/archive"],
      ["DELETE", "/v1/products/prod_nope"],
    ] as const) {
      const response = await t.request(method, url, { ...as(), ...(method === "PATCH" ? { body: {} } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
  });

  describe("lifecycle transitions", () => {
    const allowed: [string, string][] = [
      ["EXPERIMENTAL", "BETA"],
      ["EXPERIMENTAL", "GA"],
      ["EXPERIMENTAL", "RETIRED"],
      ["BETA", "GA"],
      ["BETA", "DEPRECATED"],
      ["GA", "DEPRECATED"],
      ["DEPRECATED", "GA"],
      ["DEPRECATED", "RETIRED"],
    ];
    const refused: [string, string][] = [
      ["GA", "RETIRED"],
      ["GA", "BETA"],
      ["GA", "EXPERIMENTAL"],
      ["BETA", "EXPERIMENTAL"],
      ["BETA", "RETIRED"],
      ["DEPRECATED", "BETA"],
      ["DEPRECATED", "EXPERIMENTAL"],
      ["EXPERIMENTAL", "DEPRECATED"],
      ["RETIRED", "GA"],
      ["RETIRED", "DEPRECATED"],
      ["RETIRED", "EXPERIMENTAL"],
      ["RETIRED", "BETA"],
    ];

    it.each(allowed)("allows %s → %s", async (from, to) => {
      const product = await createProduct({ lifecycle: from });
      const response = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { lifecycle: to },
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().lifecycle).toBe(to);
    });

    it.each(refused)("refuses %s → %s with 409 invalid-transition naming both", async (from, to) => {
      const product = await createProduct({ lifecycle: from });
      const response = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { lifecycle: to, name: "Should not stick" },
      });
      expect(response.statusCode).toBe(409);
      const problem = response.json();
      expect(problem.type).toMatch(/\/problems\/invalid-transition$/);
      expect(problem.detail).toContain(from);
      expect(problem.detail).toContain(to);
      const fetched = await t.request("GET", `/v1/products/${product.id}`, as());
      expect(fetched.json()).toMatchObject({ lifecycle: from, name: "Translation API" });
    });

    it("tells the caller to deprecate a GA product before retiring it, then allows it", async () => {
      const product = await createProduct();
      const refusal = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { lifecycle: "RETIRED" },
      });
      expect(refusal.statusCode).toBe(409);
      expect(refusal.json().detail).toMatch(/deprecate/i);
      for (const step of ["DEPRECATED", "RETIRED"]) {
        const response = await t.request("PATCH", `/v1/products/${product.id}`, {
          ...as(),
          body: { lifecycle: step },
        });
        expect(response.statusCode).toBe(200);
      }
    });

    it("accepts the current lifecycle repeated", async () => {
      const product = await createProduct({ lifecycle: "RETIRED" });
      const response = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { lifecycle: "RETIRED", name: "Still here" },
      });
      expect(response.statusCode).toBe(200);
    });
  });

  describe("publish status transitions", () => {
    const allowed: [string, string][] = [
      ["DRAFT", "IN_REVIEW"],
      ["DRAFT", "PUBLISHED"],
      ["DRAFT", "ARCHIVED"],
      ["IN_REVIEW", "DRAFT"],
      ["IN_REVIEW", "PUBLISHED"],
      ["IN_REVIEW", "ARCHIVED"],
      ["PUBLISHED", "ARCHIVED"],
      ["PUBLISHED", "DRAFT"],
      ["ARCHIVED", "DRAFT"],
    ];
    const refused: [string, string][] = [
      ["PUBLISHED", "IN_REVIEW"],
      ["ARCHIVED", "PUBLISHED"],
      ["ARCHIVED", "IN_REVIEW"],
    ];

    it.each(allowed)("allows %s → %s", async (from, to) => {
      const product = await createProduct({ status: from });
      const response = await t.request("POST", `/v1/products/${product.id}`, {
        ...as(),
        body: { status: to },
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().status).toBe(to);
    });

    it.each(refused)("refuses %s → %s with 409 invalid-transition naming both", async (from, to) => {
      const product = await createProduct({ status: from });
      const response = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { status: to },
      });
      expect(response.statusCode).toBe(409);
      expect(response.json().type).toMatch(/invalid-transition$/);
      expect(response.json().detail).toContain(from);
      expect(response.json().detail).toContain(to);
    });

    it("restores an archived product to DRAFT", async () => {
      const product = await createProduct({ status: "PUBLISHED" });
      await t.request("DELETE", `/v1/products/${product.id}`, as());
      const restored = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { status: "DRAFT" },
      });
      expect(restored.json().status).toBe("DRAFT");
    });
  });

  describe("billable units of a product", () => {
    it("attaches units by id or key, idempotently, and detaches them", async () => {
      const calls = await createUnit("p_api_calls");
      const bytes = await createUnit("p_bytes_out");
      const product = await createProduct();

      const attached = await t.request("POST", `/v1/products/${product.id}/billable_units`, {
        ...as(),
        body: { billable_unit_ids: [calls.id, "p_bytes_out", calls.key] },
      });
      expect(attached.statusCode, attached.body).toBe(200);
      expect(attached.json().billable_unit_ids).toEqual([calls.id, bytes.id].sort());

      const again = await t.request("POST", `/v1/products/${product.id}/billable_units`, {
        ...as(),
        body: { billable_unit_ids: [calls.id] },
      });
      expect(again.json().billable_unit_ids).toHaveLength(2);

      const unit = await t.request("GET", `/v1/billable_units/${calls.id}`, as());
      expect(unit.json().product_ids).toEqual([product.id]);
      const listed = await t.request("GET", "/v1/billable_units", {
        ...as(),
        query: { product_id: product.id },
      });
      expect(
        listed
          .json()
          .data.map((u: { id: string }) => u.id)
          .sort(),
      ).toEqual([calls.id, bytes.id].sort());

      const detached = await t.request(
        "DELETE",
        `/v1/products/${product.id}/billable_units/${calls.key}`,
        as(),
      );
      expect(detached.statusCode).toBe(200);
      expect(detached.json().billable_unit_ids).toEqual([bytes.id]);
      const detachedAgain = await t.request(
        "DELETE",
        `/v1/products/${product.id}/billable_units/${calls.id}`,
        as(),
      );
      expect(detachedAgain.statusCode).toBe(200);
      expect(detachedAgain.json().billable_unit_ids).toEqual([bytes.id]);
    });

    it("replaces the attached set when an update gives billable_unit_ids", async () => {
      const a = await createUnit("p_replace_a");
      const b = await createUnit("p_replace_b");
      const product = await createProduct({ billable_unit_ids: [a.id] });
      const updated = await t.request("PATCH", `/v1/products/${product.id}`, {
        ...as(),
        body: { billable_unit_ids: [b.key] },
      });
      expect(updated.json().billable_unit_ids).toEqual([b.id]);
    });

    it("refuses unknown and archived units with 422 naming each", async () => {
      const archived = await createUnit("p_archived_unit");
      await t.request("DELETE", `/v1/billable_units/${archived.id}`, as());
      const product = await createProduct();
      const response = await t.request("POST", `/v1/products/${product.id}/billable_units`, {
        ...as(),
        body: { billable_unit_ids: ["missing_unit", archived.id] },
      });
      expect(response.statusCode).toBe(422);
      expect(response.json().errors.map((e: { field: string }) => e.field)).toEqual([
        "billable_unit_ids[0]",
        "billable_unit_ids[1]",
      ]);
      expect((await t.request("GET", `/v1/products/${product.id}`, as())).json().billable_unit_ids).toEqual(
        [],
      );
    });

    it("answers 404 when detaching an unknown unit", async () => {
      const product = await createProduct();
      const response = await t.request(
        "DELETE",
        `/v1/products/${product.id}/billable_units/nothing_here`,
        as(),
      );
      expect(response.statusCode).toBe(404);
    });
  });

  describe("lists", () => {
    it("pages newest first with limit, starting_after and has_more", async () => {
      const own = await t.createTenant();
      const key = { key: own.testKey, tenant: own.id };
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await t.request("POST", "/v1/products", {
          ...key,
          body: { name: `P${i}`, type: "API" },
        });
        ids.push(response.json().id);
      }
      const first = await t.request("GET", "/v1/products", { ...key, query: { limit: "2" } });
      expect(first.json().has_more).toBe(true);
      expect(first.json().data.map((p: { id: string }) => p.id)).toEqual([ids[4], ids[3]]);
      const second = await t.request("GET", "/v1/products", {
        ...key,
        query: { limit: "2", starting_after: ids[3] as string },
      });
      expect(second.json().data.map((p: { id: string }) => p.id)).toEqual([ids[2], ids[1]]);
      expect(second.json().has_more).toBe(true);
      const last = await t.request("GET", "/v1/products", {
        ...key,
        query: { limit: "2", starting_after: ids[1] as string },
      });
      expect(last.json()).toMatchObject({ has_more: false, data: [{ id: ids[0] }] });
    });

    it("filters by status and type", async () => {
      const own = await t.createTenant();
      const key = { key: own.testKey, tenant: own.id };
      const make = (body: Record<string, unknown>) =>
        t.request("POST", "/v1/products", { ...key, body: { name: "x", ...body } }).then((r) => r.json().id);
      const publishedMcp = await make({ type: "MCP_SERVER", status: "PUBLISHED" });
      const draftMcp = await make({ type: "MCP_SERVER" });
      const publishedApi = await make({ type: "API", status: "PUBLISHED" });
      const ids = async (query: Record<string, string>) =>
        (await t.request("GET", "/v1/products", { ...key, query }))
          .json()
          .data.map((p: { id: string }) => p.id);
      expect(await ids({ status: "PUBLISHED" })).toEqual([publishedApi, publishedMcp]);
      expect(await ids({ type: "MCP_SERVER" })).toEqual([draftMcp, publishedMcp]);
      expect(await ids({ type: "MCP_SERVER", status: "DRAFT" })).toEqual([draftMcp]);
      const bad = await t.request("GET", "/v1/products", { ...key, query: { status: "LIVE" } });
      expect(bad.statusCode).toBe(400);
    });
  });
});
