import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestApp, type TestApp, type TestTenant, testDatabaseKind } from "../../testing/test-app.ts";
import { CustomerService } from "./service.ts";

const acme = {
  name: "Acme Inc.",
  email: "billing@acme.example",
  currency: "USD",
  address: { line1: "1 Main St", city: "Springfield", postal_code: "12345", country: "US" },
  tax: { country: "US", region: "CA" },
  metadata: { plan: "gold" },
};

describe("customers", () => {
  let t: TestApp;
  let tenant: TestTenant;
  const as = () => ({ key: tenant.testKey, tenant: tenant.id });
  let sequence = 0;
  const externalId = (prefix = "ext") => `${prefix}_${++sequence}`;

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("creates, reads, updates and archives a customer through the API", async () => {
    const ext = externalId();
    const created = await t.request("POST", "/v1/customers", {
      ...as(),
      body: { ...acme, external_id: ext },
    });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^cus_/),
      object: "customer",
      name: "Acme Inc.",
      email: "billing@acme.example",
      external_id: ext,
      currency: "USD",
      address: {
        line1: "1 Main St",
        line2: null,
        city: "Springfield",
        state: null,
        postal_code: "12345",
        country: "US",
      },
      tax: { country: "US", region: "CA", exempt: false, tax_id: null },
      metadata: { plan: "gold" },
      status: "ACTIVE",
      created_at: "2026-11-28T10:00:00.000Z",
      updated_at: "2026-11-28T10:00:00.000Z",
    });

    const fetched = await t.request("GET", `/v1/customers/${body.id}`, as());
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(body);

    t.clock.advance(60_000);
    const patched = await t.request("PATCH", `/v1/customers/${body.id}`, {
      ...as(),
      body: { name: "Acme Corp.", tax: null, metadata: { plan: "platinum" } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({
      name: "Acme Corp.",
      email: "billing@acme.example",
      tax: null,
      metadata: { plan: "platinum" },
      updated_at: "2026-11-28T10:01:00.000Z",
      created_at: body.created_at,
    });

    const posted = await t.request("POST", `/v1/customers/${body.id}`, {
      ...as(),
      body: { currency: "eur" },
    });
    expect(posted.statusCode).toBe(200);
    expect(posted.json()).toMatchObject({ name: "Acme Corp.", currency: "EUR" });

    const deleted = await t.request("DELETE", `/v1/customers/${body.id}`, as());
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toMatchObject({ id: body.id, status: "ARCHIVED" });

    const afterDelete = await t.request("GET", `/v1/customers/${ext}`, as());
    expect(afterDelete.statusCode).toBe(200);
    expect(afterDelete.json()).toMatchObject({ id: body.id, status: "ARCHIVED" });
    expect(t.context.customers.resolveCached({ tenantId: tenant.id, mode: "test" }, ext)?.status).toBe(
      "ARCHIVED",
    );

    const again = await t.request("DELETE", `/v1/customers/${body.id}`, as());
    expect(again.json()).toEqual(deleted.json());

    const refused = await t.request("PATCH", `/v1/customers/${body.id}`, {
      ...as(),
      body: { name: "Zombie" },
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().type).toBe("http://aforo.test/problems/invalid-transition");
  });

  it("gets a customer by external_id and lists with external_id and email filters", async () => {
    const ext = externalId("lookup");
    const email = `Lookup.${sequence}@example.com`;
    const created = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, email, external_id: ext } })
    ).json();
    await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: externalId() } });

    const byExternal = await t.request("GET", `/v1/customers/${ext}`, as());
    expect(byExternal.statusCode).toBe(200);
    expect(byExternal.json().id).toBe(created.id);

    const patched = await t.request("PATCH", `/v1/customers/${ext}`, { ...as(), body: { name: "By ext" } });
    expect(patched.json()).toMatchObject({ id: created.id, name: "By ext" });

    const list = await t.request("GET", "/v1/customers", { ...as(), query: { external_id: ext } });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ data: [expect.objectContaining({ id: created.id })], has_more: false });

    const byEmail = await t.request("GET", "/v1/customers", {
      ...as(),
      query: { email: email.toUpperCase() },
    });
    expect(byEmail.json().data.map((c: { id: string }) => c.id)).toEqual([created.id]);

    const page = await t.request("GET", "/v1/customers", { ...as(), query: { limit: "1" } });
    expect(page.json()).toMatchObject({ has_more: true });
    expect(page.json().data).toHaveLength(1);

    const missing = await t.request("GET", "/v1/customers/no_such_customer", as());
    expect(missing.statusCode).toBe(404);
  });

  it("refuses a duplicate external_id in the same tenant and mode with 409, on create and on update", async () => {
    const ext = externalId("dup");
    const first = await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: ext } });
    expect(first.statusCode).toBe(201);
    const second = await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: ext } });
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ type: "http://aforo.test/problems/conflict" });

    const other = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: externalId() } })
    ).json();
    const clash = await t.request("PATCH", `/v1/customers/${other.id}`, {
      ...as(),
      body: { external_id: ext },
    });
    expect(clash.statusCode).toBe(409);

    // The same external id in live mode, or in another tenant, is another customer.
    const live = await t.request("POST", "/v1/customers", {
      key: tenant.liveKey,
      tenant: tenant.id,
      body: { ...acme, external_id: ext },
    });
    expect(live.statusCode).toBe(201);
  });

  it("answers 422 unknown-currency with the field for a currency that is not ISO 4217", async () => {
    const response = await t.request("POST", "/v1/customers", {
      ...as(),
      body: { ...acme, currency: "XYZ" },
    });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      type: "http://aforo.test/problems/unknown-currency",
      errors: [{ field: "currency" }],
    });
    const created = (await t.request("POST", "/v1/customers", { ...as(), body: acme })).json();
    const update = await t.request("PATCH", `/v1/customers/${created.id}`, {
      ...as(),
      body: { currency: "ZZZ" },
    });
    expect(update.statusCode).toBe(422);
    expect(update.json().errors).toEqual([expect.objectContaining({ field: "currency" })]);
  });

  it("answers 400 to a malformed email, a lower-case country and a missing name", async () => {
    const bodies = [
      { ...acme, email: "not-an-email" },
      { ...acme, address: { ...acme.address, country: "us" } },
      { ...acme, tax: { country: "USA" } },
      { email: acme.email, currency: "USD" },
    ];
    for (const body of bodies) {
      const response = await t.request("POST", "/v1/customers", { ...as(), body });
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers["content-type"]).toContain("application/problem+json");
    }
  });

  it("needs customers:write to change and customers:read to read", async () => {
    const readOnly = await t.request("POST", "/v1/api_keys", {
      ...as(),
      body: { mode: "test", scopes: ["customers:read"] },
    });
    const key = readOnly.json().key as string;
    const list = await t.request("GET", "/v1/customers", { key, tenant: tenant.id });
    expect(list.statusCode).toBe(200);
    const create = await t.request("POST", "/v1/customers", { key, tenant: tenant.id, body: acme });
    expect(create.statusCode).toBe(403);
    const unrelated = (
      await t.request("POST", "/v1/api_keys", { ...as(), body: { mode: "test", scopes: ["catalog:read"] } })
    ).json().key as string;
    const denied = await t.request("GET", "/v1/customers", { key: unrelated, tenant: tenant.id });
    expect(denied.statusCode).toBe(403);
  });
});

describe("customer directory (resolveCached)", () => {
  let t: TestApp;
  let tenant: TestTenant;
  const as = () => ({ key: tenant.testKey, tenant: tenant.id });

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("resolves a customer from memory right after creation, by id and by external_id", async () => {
    const created = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: "cached-1" } })
    ).json();
    const scope = { tenantId: tenant.id, mode: "test" as const };
    expect(t.context.customers.resolveCached(scope, created.id)).toMatchObject({
      id: created.id,
      externalId: "cached-1",
      currency: "USD",
    });
    expect(t.context.customers.resolveCached(scope, "cached-1")?.id).toBe(created.id);
    expect(t.context.customers.resolveCached(scope, "cached-unknown")).toBeUndefined();
  });

  it("follows updates: a changed external_id resolves and the old one no longer does", async () => {
    const scope = { tenantId: tenant.id, mode: "test" as const };
    const created = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: "before" } })
    ).json();
    await t.request("PATCH", `/v1/customers/${created.id}`, {
      ...as(),
      body: { external_id: "after", name: "Renamed" },
    });
    expect(t.context.customers.resolveCached(scope, "before")).toBeUndefined();
    expect(t.context.customers.resolveCached(scope, "after")).toMatchObject({
      id: created.id,
      name: "Renamed",
    });
    expect(t.context.customers.resolveCached(scope, created.id)?.name).toBe("Renamed");

    // The freed external id can be taken by another customer.
    const taker = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: "before" } })
    ).json();
    expect(t.context.customers.resolveCached(scope, "before")?.id).toBe(taker.id);

    await t.request("PATCH", `/v1/customers/${created.id}`, { ...as(), body: { external_id: null } });
    expect(t.context.customers.resolveCached(scope, "after")).toBeUndefined();
    expect(t.context.customers.resolveCached(scope, created.id)?.externalId).toBeNull();
  });

  it("is scoped by tenant and mode", async () => {
    const other = await t.createTenant();
    const created = (
      await t.request("POST", "/v1/customers", { ...as(), body: { ...acme, external_id: "scoped" } })
    ).json();
    const customers = t.context.customers;
    expect(customers.resolveCached({ tenantId: tenant.id, mode: "live" }, created.id)).toBeUndefined();
    expect(customers.resolveCached({ tenantId: tenant.id, mode: "live" }, "scoped")).toBeUndefined();
    expect(customers.resolveCached({ tenantId: other.id, mode: "test" }, created.id)).toBeUndefined();
    expect(customers.resolveCached({ tenantId: other.id, mode: "test" }, "scoped")).toBeUndefined();
  });

  it("reloads every customer from the database when a fresh service starts", async () => {
    const other = await t.createTenant();
    const made: { id: string; external_id: string; tenant: string; mode: "live" | "test" }[] = [];
    for (const [owner, key, mode] of [
      [tenant, tenant.testKey, "test"],
      [tenant, tenant.liveKey, "live"],
      [other, other.testKey, "test"],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const external_id = `reload-${mode}-${i}`;
        const body = (
          await t.request("POST", "/v1/customers", {
            key,
            tenant: owner.id,
            body: { ...acme, external_id },
          })
        ).json();
        made.push({ id: body.id, external_id, tenant: owner.id, mode });
      }
    }
    const archivedOne = made[0];
    if (!archivedOne) throw new Error("no customer made");
    await t.request("DELETE", `/v1/customers/${archivedOne.id}`, as());

    const fresh = new CustomerService(t.database, t.clock);
    expect(fresh.resolveCached({ tenantId: tenant.id, mode: "test" }, archivedOne.id)).toBeUndefined();
    const stop = await fresh.start();
    try {
      for (const customer of made) {
        const scope = { tenantId: customer.tenant, mode: customer.mode };
        expect(fresh.resolveCached(scope, customer.id)?.externalId).toBe(customer.external_id);
        expect(fresh.resolveCached(scope, customer.external_id)?.id).toBe(customer.id);
      }
      expect(fresh.resolveCached({ tenantId: tenant.id, mode: "test" }, archivedOne.id)?.status).toBe(
        "ARCHIVED",
      );
      expect(fresh.directory.size).toBe(t.context.customers.directory.size);
    } finally {
      await stop();
    }
  });
});

describe.runIf(testDatabaseKind() === "postgres")("customer directory across processes", () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("learns of customers created, changed and archived by another process through NOTIFY", async () => {
    // Another process: its own service and directory on the same database.
    const other = new CustomerService(t.database, t.clock);
    const stop = await other.start();
    try {
      const as = { key: tenant.testKey, tenant: tenant.id };
      const scope = { tenantId: tenant.id, mode: "test" as const };
      const created = (
        await t.request("POST", "/v1/customers", { ...as, body: { ...acme, external_id: "elsewhere" } })
      ).json();
      await vi.waitFor(() => expect(other.resolveCached(scope, "elsewhere")?.id).toBe(created.id));

      await t.request("PATCH", `/v1/customers/${created.id}`, { ...as, body: { external_id: "moved" } });
      await vi.waitFor(() => expect(other.resolveCached(scope, "moved")?.id).toBe(created.id));
      expect(other.resolveCached(scope, "elsewhere")).toBeUndefined();

      await t.request("DELETE", `/v1/customers/${created.id}`, as);
      await vi.waitFor(() => expect(other.resolveCached(scope, created.id)?.status).toBe("ARCHIVED"));
    } finally {
      await stop();
    }
  });
});

describe("customer isolation", () => {
  let t: TestApp;
  let a: TestTenant;
  let b: TestTenant;
  let customer: Record<string, unknown>;
  let liveCustomer: Record<string, unknown>;

  beforeAll(async () => {
    t = await createTestApp();
    a = await t.createTenant();
    b = await t.createTenant();
    customer = (
      await t.request("POST", "/v1/customers", {
        key: a.testKey,
        tenant: a.id,
        body: { ...acme, external_id: "a-test" },
      })
    ).json();
    liveCustomer = (
      await t.request("POST", "/v1/customers", {
        key: a.liveKey,
        tenant: a.id,
        body: { ...acme, external_id: "a-live" },
      })
    ).json();
  });
  afterAll(() => t.close());

  const attacks = (ref: unknown): [string, string, unknown?][] => [
    ["GET", `/v1/customers/${ref}`],
    ["PATCH", `/v1/customers/${ref}`, { name: "Hijacked", external_id: "stolen" }],
    ["POST", `/v1/customers/${ref}`, { name: "Hijacked" }],
    ["DELETE", `/v1/customers/${ref}`],
  ];

  it("answers 404 to another tenant's key, by id or external_id, and changes nothing", async () => {
    for (const ref of [customer.id, customer.external_id]) {
      for (const [method, url, body] of attacks(ref)) {
        const response = await t.request(method as "GET", url, { key: b.testKey, tenant: b.id, body });
        expect(response.statusCode, `${method} ${url}`).toBe(404);
      }
    }
    const list = await t.request("GET", "/v1/customers", { key: b.testKey, tenant: b.id });
    expect(list.json().data).toEqual([]);
    const filtered = await t.request("GET", "/v1/customers", {
      key: b.testKey,
      tenant: b.id,
      query: { external_id: "a-test" },
    });
    expect(filtered.json().data).toEqual([]);
    const after = await t.request("GET", `/v1/customers/${customer.id}`, { key: a.testKey, tenant: a.id });
    expect(after.json()).toEqual(customer);
  });

  it("keeps test and live customers apart in both directions", async () => {
    const crossings: [string, Record<string, unknown>][] = [
      [a.liveKey, customer],
      [a.testKey, liveCustomer],
    ];
    for (const [key, target] of crossings) {
      for (const ref of [target.id, target.external_id]) {
        for (const [method, url, body] of attacks(ref)) {
          const response = await t.request(method as "GET", url, { key, tenant: a.id, body });
          expect(response.statusCode, `${method} ${url}`).toBe(404);
        }
      }
    }
    const testList = (await t.request("GET", "/v1/customers", { key: a.testKey, tenant: a.id })).json();
    expect(testList.data.map((c: { id: string }) => c.id)).toEqual([customer.id]);
    const liveList = (await t.request("GET", "/v1/customers", { key: a.liveKey, tenant: a.id })).json();
    expect(liveList.data.map((c: { id: string }) => c.id)).toEqual([liveCustomer.id]);
    expect(
      (await t.request("GET", `/v1/customers/${customer.id}`, { key: a.testKey, tenant: a.id })).json(),
    ).toEqual(customer);
    expect(
      (await t.request("GET", `/v1/customers/${liveCustomer.id}`, { key: a.liveKey, tenant: a.id })).json(),
    ).toEqual(liveCustomer);
  });
});
