import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

describe("billable units", () => {
  let t: TestApp;
  let tenant: TestTenant;
  const as = () => ({ key: tenant.testKey, tenant: tenant.id });
  const scope = () => ({ tenantId: tenant.id, mode: "test" as const });

  async function createUnit(body: Record<string, unknown>) {
    const response = await t.request("POST", "/v1/billable_units", {
      ...as(),
      body: { name: "Unit", unit_label: "unit", aggregation: "COUNT", ...body },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  const post = (body: Record<string, unknown>) =>
    t.request("POST", "/v1/billable_units", {
      ...as(),
      body: { name: "Unit", unit_label: "unit", aggregation: "COUNT", ...body },
    });

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("creates a unit and reads it by id and by key", async () => {
    const unit = await createUnit({
      key: "input_tokens",
      name: "Input tokens",
      unit_label: "token",
      aggregation: "SUM",
      field: "tokens.input",
      filters: [{ field: "model", operator: "IN", value: ["gpt-4o", "gpt-4o-mini"] }],
    });
    expect(unit).toEqual({
      id: expect.stringMatching(/^bu_/),
      object: "billable_unit",
      key: "input_tokens",
      name: "Input tokens",
      unit_label: "token",
      aggregation: "SUM",
      field: "tokens.input",
      filters: [{ field: "model", operator: "IN", value: ["gpt-4o", "gpt-4o-mini"] }],
      status: "ACTIVE",
      product_ids: [],
      in_use: false,
      first_used_at: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    for (const ref of [unit.id, unit.key]) {
      const fetched = await t.request("GET", `/v1/billable_units/${ref}`, as());
      expect(fetched.statusCode).toBe(200);
      expect(fetched.json()).toEqual(unit);
    }
  });

  it("lets SUM, MAX, AVG, LATEST and PERCENTILE_95 omit the field (the event's quantity counts)", async () => {
    for (const aggregation of ["SUM", "MAX", "AVG", "LATEST", "PERCENTILE_95"]) {
      const unit = await createUnit({ key: `no_field_${aggregation.toLowerCase()}`, aggregation });
      expect(unit.field).toBeNull();
    }
  });

  it("attaches to products given at creation", async () => {
    const product = (
      await t.request("POST", "/v1/products", { ...as(), body: { name: "Agent", type: "AI_AGENT" } })
    ).json();
    const unit = await createUnit({ key: "agent_calls", product_ids: [product.id] });
    expect(unit.product_ids).toEqual([product.id]);
    const fetched = await t.request("GET", `/v1/products/${product.id}`, as());
    expect(fetched.json().billable_unit_ids).toEqual([unit.id]);
  });

  it("refuses a duplicate key with 409 conflict", async () => {
    await createUnit({ key: "dup_key" });
    const again = await post({ key: "dup_key", aggregation: "SUM" });
    expect(again.statusCode).toBe(409);
    expect(again.json().type).toMatch(/\/problems\/conflict$/);
  });

  it("creates exactly one unit when the same key is posted concurrently", async () => {
    const responses = await Promise.all(Array.from({ length: 5 }, () => post({ key: "raced_key" })));
    const codes = responses.map((response) => response.statusCode).sort();
    expect(codes).toEqual([201, 409, 409, 409, 409]);
  });

  it("allows the same key in the other mode and in another tenant", async () => {
    await createUnit({ key: "shared_key" });
    const live = await t.request("POST", "/v1/billable_units", {
      key: tenant.liveKey,
      tenant: tenant.id,
      body: { key: "shared_key", name: "x", unit_label: "x", aggregation: "COUNT" },
    });
    expect(live.statusCode).toBe(201);
    const other = await t.createTenant();
    const elsewhere = await t.request("POST", "/v1/billable_units", {
      key: other.testKey,
      tenant: other.id,
      body: { key: "shared_key", name: "x", unit_label: "x", aggregation: "COUNT" },
    });
    expect(elsewhere.statusCode).toBe(201);
  });

  it("answers 400 for schema violations", async () => {
    const cases: Record<string, unknown>[] = [
      { key: "Bad Key" },
      { key: "9lives" },
      { key: "ok_key", aggregation: "MEDIAN" },
      { key: "ok_key", filters: [{ field: "x", operator: "LIKE", value: "a" }] },
      { key: "ok_key", name: "" },
      { key: "ok_key", unit_label: 5 },
      { key: `k${"x".repeat(64)}` },
    ];
    for (const body of cases) {
      const response = await post(body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().errors.length).toBeGreaterThan(0);
    }
  });

  it("answers 422 with field paths for business rules", async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ key: "uniq_no_field", aggregation: "UNIQUE" }, ["field"]],
      [{ key: "bad_in", filters: [{ field: "region", operator: "IN", value: "eu" }] }, ["filters[0].value"]],
      [
        {
          key: "bad_gt",
          filters: [
            { field: "status_code", operator: "LESS_THAN", value: "400" },
            { field: "latency", operator: "GREATER_THAN", value: "slow" },
          ],
        },
        ["filters[1].value"],
      ],
      [{ key: "bad_eq", filters: [{ field: "model", operator: "EQUALS" }] }, ["filters[0].value"]],
      [{ key: "bad_path", aggregation: "SUM", field: "tokens..input" }, ["field"]],
      [{ key: "bu_looks_like_an_id" }, ["key"]],
      [{ key: "unknown_product", product_ids: ["prod_nope"] }, ["product_ids[0]"]],
      [{ key: "blank_name", name: "   " }, ["name"]],
    ];
    for (const [body, fields] of cases) {
      const response = await post(body);
      expect(response.statusCode, JSON.stringify(body)).toBe(422);
      expect(response.json().errors.map((e: { field: string }) => e.field)).toEqual(fields);
    }
    const missing = await t.request("GET", "/v1/billable_units/unknown_product", as());
    expect(missing.statusCode).toBe(404);
  });

  it("updates with PATCH and with POST, only the fields given", async () => {
    const unit = await createUnit({ key: "upd_unit", aggregation: "SUM", field: "bytes" });
    t.clock.advance(1000);
    const patched = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { name: "Bytes out", filters: [{ field: "direction", operator: "EQUALS", value: "out" }] },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({
      name: "Bytes out",
      aggregation: "SUM",
      field: "bytes",
      filters: [{ field: "direction", operator: "EQUALS", value: "out" }],
    });
    expect(patched.json().updated_at).not.toBe(unit.updated_at);

    const posted = await t.request("POST", "/v1/billable_units/upd_unit", {
      ...as(),
      body: { aggregation: "MAX", field: null, unit_label: "byte" },
    });
    expect(posted.statusCode, posted.body).toBe(200);
    expect(posted.json()).toMatchObject({
      aggregation: "MAX",
      field: null,
      unit_label: "byte",
      name: "Bytes out",
    });
  });

  it("refuses to change the key and checks the rules on the updated definition", async () => {
    const unit = await createUnit({ key: "rules_unit", aggregation: "UNIQUE", field: "agent_id" });
    const key = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { key: "other" },
    });
    expect(key.statusCode).toBe(422);
    const same = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { key: "rules_unit" },
    });
    expect(same.statusCode).toBe(200);
    const noField = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { field: null },
    });
    expect(noField.statusCode).toBe(422);
    expect(noField.json().errors).toEqual([{ field: "field", message: expect.any(String) }]);
    const badFilter = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { filters: [{ field: "x", operator: "NOT_IN", value: 1 }] },
    });
    expect(badFilter.statusCode).toBe(422);
    expect(badFilter.json().errors[0].field).toBe("filters[0].value");
  });

  it("freezes the aggregation and field once the unit is used, but not its name or filters", async () => {
    const unit = await createUnit({ key: "frozen_unit", aggregation: "SUM", field: "tokens.output" });
    await t.context.catalog.markBillableUnitsUsed(scope(), [unit.id]);

    const fetched = (await t.request("GET", `/v1/billable_units/${unit.id}`, as())).json();
    expect(fetched.in_use).toBe(true);
    expect(fetched.first_used_at).toEqual(expect.any(String));

    for (const body of [{ aggregation: "MAX" }, { field: "tokens.input" }, { field: null }]) {
      const response = await t.request("PATCH", `/v1/billable_units/${unit.id}`, { ...as(), body });
      expect(response.statusCode, JSON.stringify(body)).toBe(409);
      expect(response.json().type).toMatch(/\/problems\/resource-in-use$/);
    }
    const aggregationChange = await t.request("POST", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { aggregation: "COUNT" },
    });
    expect(aggregationChange.json().detail).toMatch(/aggregation of a unit in use cannot change/);

    const unchanged = await t.request("GET", `/v1/billable_units/${unit.id}`, as());
    expect(unchanged.json()).toMatchObject({ aggregation: "SUM", field: "tokens.output" });

    const allowed = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: {
        aggregation: "SUM",
        field: "tokens.output",
        name: "Output tokens",
        filters: [{ field: "cached", operator: "NOT_EQUALS", value: true }],
      },
    });
    expect(allowed.statusCode, allowed.body).toBe(200);
    expect(allowed.json().name).toBe("Output tokens");
  });

  it("keeps first_used_at from the first use", async () => {
    const unit = await createUnit({ key: "first_use" });
    await t.context.catalog.markBillableUnitsUsed(scope(), [unit.id]);
    const first = (await t.request("GET", `/v1/billable_units/${unit.id}`, as())).json().first_used_at;
    t.clock.advance(60_000);
    await t.context.catalog.markBillableUnitsUsed(scope(), [unit.id]);
    expect((await t.request("GET", `/v1/billable_units/${unit.id}`, as())).json().first_used_at).toBe(first);
  });

  it("replaces the product links when an update gives product_ids", async () => {
    const make = async (name: string) =>
      (await t.request("POST", "/v1/products", { ...as(), body: { name, type: "API" } })).json().id as string;
    const first = await make("First");
    const second = await make("Second");
    const unit = await createUnit({ key: "relinked", product_ids: [first] });
    const updated = await t.request("PATCH", `/v1/billable_units/${unit.id}`, {
      ...as(),
      body: { product_ids: [second] },
    });
    expect(updated.json().product_ids).toEqual([second]);
    expect((await t.request("GET", `/v1/products/${first}`, as())).json().billable_unit_ids).toEqual([]);
    expect((await t.request("GET", `/v1/products/${second}`, as())).json().billable_unit_ids).toEqual([
      unit.id,
    ]);
  });

  it("archives with POST /archive and with DELETE, softly and idempotently", async () => {
    for (const [method, suffix, key] of [
      ["POST", "/archive", "archive_post"],
      ["DELETE", "", "archive_delete"],
    ] as const) {
      const unit = await createUnit({ key });
      const archived = await t.request(method, `/v1/billable_units/${unit.id}${suffix}`, as());
      expect(archived.statusCode).toBe(200);
      expect(archived.json()).toMatchObject({ id: unit.id, status: "ARCHIVED" });
      expect((await t.request(method, `/v1/billable_units/${key}${suffix}`, as())).statusCode).toBe(200);
      expect((await t.request("GET", `/v1/billable_units/${unit.id}`, as())).json().status).toBe("ARCHIVED");
    }
    const duplicate = await post({ key: "archive_post" });
    expect(duplicate.statusCode).toBe(409);
  });

  it("pages newest first and filters by status and product", async () => {
    const own = await t.createTenant();
    const key = { key: own.testKey, tenant: own.id };
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await t.request("POST", "/v1/billable_units", {
        ...key,
        body: { key: `page_${i}`, name: "x", unit_label: "x", aggregation: "COUNT" },
      });
      ids.push(response.json().id);
    }
    const first = await t.request("GET", "/v1/billable_units", { ...key, query: { limit: "3" } });
    expect(first.json().data.map((u: { id: string }) => u.id)).toEqual([ids[4], ids[3], ids[2]]);
    expect(first.json().has_more).toBe(true);
    const rest = await t.request("GET", "/v1/billable_units", {
      ...key,
      query: { limit: "3", starting_after: ids[2] as string },
    });
    expect(rest.json()).toMatchObject({ has_more: false });
    expect(rest.json().data.map((u: { id: string }) => u.id)).toEqual([ids[1], ids[0]]);

    await t.request("DELETE", `/v1/billable_units/${ids[0]}`, key);
    const active = await t.request("GET", "/v1/billable_units", { ...key, query: { status: "ACTIVE" } });
    expect(active.json().data).toHaveLength(4);
    const archived = await t.request("GET", "/v1/billable_units", { ...key, query: { status: "ARCHIVED" } });
    expect(archived.json().data.map((u: { id: string }) => u.id)).toEqual([ids[0]]);

    const product = (
      await t.request("POST", "/v1/products", {
        ...key,
        body: { name: "P", type: "API", billable_unit_ids: ["page_3"] },
      })
    ).json();
    const byProduct = await t.request("GET", "/v1/billable_units", {
      ...key,
      query: { product_id: product.id },
    });
    expect(byProduct.json()).toMatchObject({
      has_more: false,
      data: [{ id: ids[3], product_ids: [product.id] }],
    });
  });
});
