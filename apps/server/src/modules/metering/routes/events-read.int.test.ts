import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../../testing/test-app.ts";

describe("GET /v1/events", () => {
  let t: TestApp;
  let f: Fixture;
  let alice: { id: string };
  let bob: { id: string };
  let tokensUnit: { id: string };
  const ids: Record<string, string> = {};
  const hoursAgo = (hours: number) => new Date(t.clock.now().getTime() - hours * 3_600_000).toISOString();

  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, {
      key: "api_calls",
      aggregation: "COUNT",
      filters: [{ field: "status", operator: "LESS_THAN", value: "400" }],
    });
    tokensUnit = await createUnit(t, f, { key: "tokens", aggregation: "SUM", field: "tokens.input" });
    alice = await createCustomer(t, f, { external_id: "crm-alice" });
    bob = await createCustomer(t, f);
    const send = async (name: string, body: Record<string, unknown>) => {
      const response = await t.request("POST", "/v1/meter", {
        ...f.as,
        body: { idempotency_key: name, ...body },
      });
      expect(response.statusCode).toBe(202);
      ids[name] = response.json().id;
    };
    await send("plain", {
      customer_id: alice.id,
      metric_id: "api_calls",
      timestamp: hoursAgo(1),
      event_type: "call",
      properties: { status: 200 },
    });
    await send("late", {
      customer_id: alice.id,
      metric_id: "api_calls",
      timestamp: hoursAgo(30),
      properties: { status: 200 },
    });
    await send("filtered", { customer_id: bob.id, metric_id: "api_calls", properties: { status: 503 } });
    await send("ancient", {
      customer_id: bob.id,
      metric_id: "api_calls",
      timestamp: hoursAgo(40 * 24),
      properties: { status: 200 },
    });
    await send("tokens", {
      customer_id: "crm-alice",
      metric_id: "tokens",
      quantity: "2.50",
      timestamp: hoursAgo(2),
      properties: { tokens: { input: "120.500" }, model: "gpt-4o" },
    });
  });
  afterAll(() => t.close());

  const list = async (query: Record<string, string> = {}, fixture: Fixture = f) => {
    const response = await t.request("GET", "/v1/events", { ...fixture.as, query });
    expect(response.statusCode, response.body).toBe(200);
    return response.json() as { data: { id: string; [key: string]: unknown }[]; has_more: boolean };
  };
  const idsOf = (page: { data: { id: string }[] }) => page.data.map((event) => event.id);

  it("lists every stored event newest first with its provenance", async () => {
    const page = await list();
    expect(idsOf(page)).toEqual(["tokens", "ancient", "filtered", "late", "plain"].map((name) => ids[name]));
    expect(page.has_more).toBe(false);
    expect(page.data[0]).toEqual({
      id: ids.tokens,
      object: "event",
      customer_id: alice.id,
      metric_id: "tokens",
      billable_unit_id: tokensUnit.id,
      event_type: null,
      quantity: "2.5",
      value: "120.5",
      properties: { tokens: { input: "120.500" }, model: "gpt-4o" },
      timestamp: hoursAgo(2),
      idempotency_key: "tokens",
      status: "ACCEPTED",
      flags: [],
      source: "api",
      received_at: t.clock.now().toISOString(),
      provenance: {
        source: "api",
        received_at: t.clock.now().toISOString(),
        validation: { result: "ACCEPTED", flags: [] },
        enrichment: {},
        estimated_revenue: null,
        estimated_cost: null,
        counted: true,
      },
    });
  });

  it("shows each event's flags and whether it counts", async () => {
    const byId = new Map((await list()).data.map((event) => [event.id, event.provenance]));
    expect(byId.get(ids.late ?? "")).toMatchObject({ validation: { flags: ["LATE"] }, counted: true });
    expect(byId.get(ids.filtered ?? "")).toMatchObject({
      validation: { flags: ["FILTERED"] },
      counted: false,
    });
    expect(byId.get(ids.ancient ?? "")).toMatchObject({
      validation: { flags: ["LATE", "RECONCILIATION"] },
      counted: false,
      enrichment: { reconciliation_reason: expect.any(String) },
    });
  });

  it("filters by customer (id or external id), metric (key or id), flag, status and time range", async () => {
    expect(idsOf(await list({ customer_id: alice.id }))).toEqual([ids.tokens, ids.late, ids.plain]);
    expect(idsOf(await list({ customer_id: "crm-alice" }))).toEqual([ids.tokens, ids.late, ids.plain]);
    expect(idsOf(await list({ metric_id: "tokens" }))).toEqual([ids.tokens]);
    expect(idsOf(await list({ metric_id: tokensUnit.id }))).toEqual([ids.tokens]);
    expect(idsOf(await list({ flag: "LATE" }))).toEqual([ids.ancient, ids.late]);
    expect(idsOf(await list({ flag: "RECONCILIATION" }))).toEqual([ids.ancient]);
    expect(idsOf(await list({ flag: "FILTERED" }))).toEqual([ids.filtered]);
    expect(idsOf(await list({ status: "ACCEPTED" }))).toHaveLength(5);
    // Duplicates and rejections are answered (or dead-lettered), never stored as events.
    expect(idsOf(await list({ status: "DUPLICATE" }))).toEqual([]);
    expect(idsOf(await list({ status: "REJECTED" }))).toEqual([]);
    expect(idsOf(await list({ from: hoursAgo(3), to: hoursAgo(0.5) }))).toEqual([ids.tokens, ids.plain]);
    expect(idsOf(await list({ customer_id: bob.id, metric_id: "api_calls", flag: "FILTERED" }))).toEqual([
      ids.filtered,
    ]);
    expect(idsOf(await list({ customer_id: "crm-nobody" }))).toEqual([]);
    expect(idsOf(await list({ metric_id: "nothing" }))).toEqual([]);
  });

  it("pages with limit and starting_after", async () => {
    const first = await list({ limit: "2" });
    expect(idsOf(first)).toEqual([ids.tokens, ids.ancient]);
    expect(first.has_more).toBe(true);
    const second = await list({ limit: "2", starting_after: ids.ancient ?? "" });
    expect(idsOf(second)).toEqual([ids.filtered, ids.late]);
    const last = await list({ limit: "2", starting_after: ids.late ?? "" });
    expect(idsOf(last)).toEqual([ids.plain]);
    expect(last.has_more).toBe(false);
  });

  it("refuses unknown statuses and flags with 400", async () => {
    const queries: Record<string, string>[] = [
      { status: "PENDING" },
      { flag: "EARLY" },
      { from: "soon" },
      { limit: "0" },
    ];
    for (const query of queries) {
      const response = await t.request("GET", "/v1/events", { ...f.as, query });
      expect(response.statusCode, JSON.stringify(query)).toBe(400);
    }
  });

  it("gets one event, and answers 404 to another tenant and to the other mode", async () => {
    const one = await t.request("GET", `/v1/events/${ids.late}`, f.as);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: ids.late, object: "event", idempotency_key: "late" });
    const other = await sandbox(t);
    expect((await t.request("GET", `/v1/events/${ids.late}`, other.as)).statusCode).toBe(404);
    expect(await list({}, other)).toEqual({ data: [], has_more: false });
    const live = { key: f.tenant.liveKey, tenant: f.tenant.id };
    expect((await t.request("GET", `/v1/events/${ids.late}`, live)).statusCode).toBe(404);
    expect((await t.request("GET", "/v1/events/evt_missing", f.as)).statusCode).toBe(404);
  });
});
