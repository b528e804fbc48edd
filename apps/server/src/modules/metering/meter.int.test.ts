import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, TEST_PUBLIC_URL, type TestApp } from "../../testing/test-app.ts";

describe("POST /v1/meter", () => {
  let t: TestApp;
  let f: Fixture;
  let customer: { id: string; external_id: string };
  const now = () => t.clock.now();
  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    await createUnit(t, f, { key: "tokens", aggregation: "SUM", field: "tokens.input" });
    await createUnit(t, f, {
      key: "ok_calls",
      aggregation: "COUNT",
      filters: [{ field: "status_code", operator: "LESS_THAN", value: "400" }],
    });
    customer = await createCustomer(t, f, { external_id: "crm-42" });
  });
  afterAll(() => t.close());

  const meter = (body: Record<string, unknown>) => t.request("POST", "/v1/meter", { ...f.as, body });

  it("accepts an event with 202 after it is stored, and answers DUPLICATE to its retry", async () => {
    const body = { customer_id: customer.id, metric_id: "api_calls", idempotency_key: "req-1" };
    const first = await meter(body);
    expect(first.statusCode).toBe(202);
    expect(first.json()).toEqual({ id: expect.stringMatching(/^evt_/), status: "ACCEPTED" });
    const retry = await meter(body);
    expect(retry.statusCode).toBe(202);
    expect(retry.json()).toEqual({ id: first.json().id, status: "DUPLICATE" });
    const rows = await t.database.db
      .selectFrom("usage_events")
      .select("id")
      .where("idempotency_key", "=", "req-1")
      .execute();
    expect(rows).toHaveLength(1);
  });

  it("stores keys and properties with quotes, backslashes, braces, commas and NULL exactly", async () => {
    const key = 'k "quoted" \\ back,slash {brace} NULL ünï';
    const properties = { path: '/a"b\\c', list: ["x,y", "{z}"], nothing: null, text: "NULL" };
    const response = await meter({
      customer_id: customer.id,
      metric_id: "api_calls",
      idempotency_key: key,
      properties,
    });
    expect(response.statusCode).toBe(202);
    const row = await t.database.db
      .selectFrom("usage_events")
      .select(["idempotency_key", "properties"])
      .where("id", "=", response.json().id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ idempotency_key: key, properties });
    expect(
      (await meter({ customer_id: customer.id, metric_id: "api_calls", idempotency_key: key })).json().status,
    ).toBe("DUPLICATE");
  });

  it("accepts the SDK's camelCase spellings and an external id", async () => {
    const response = await meter({
      customerId: "crm-42",
      metricName: "tokens",
      idempotencyKey: "sdk-1",
      occurredAt: now().toISOString(),
      properties: { tokens: { input: 120 } },
    });
    expect(response.statusCode).toBe(202);
    const row = await t.database.db
      .selectFrom("usage_events")
      .selectAll()
      .where("idempotency_key", "=", "sdk-1")
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      customer_id: customer.id,
      metric_key: "tokens",
      value: "120",
      counted: true,
    });
  });

  it("uses the Idempotency-Key header when the body has no key", async () => {
    const send = () =>
      t.request("POST", "/v1/meter", {
        ...f.as,
        body: { customer_id: customer.id, metric_id: "api_calls" },
        headers: { "idempotency-key": "hdr-7" },
      });
    expect((await send()).json().status).toBe("ACCEPTED");
    expect((await send()).json().status).toBe("DUPLICATE");
  });

  it("derives a key from the event itself, so an exact retry is not counted twice", async () => {
    const body = {
      customer_id: customer.id,
      metric_id: "api_calls",
      timestamp: now().toISOString(),
      properties: { path: "/x" },
    };
    expect((await meter(body)).json().status).toBe("ACCEPTED");
    expect((await meter(body)).json().status).toBe("DUPLICATE");
    expect((await meter({ ...body, properties: { path: "/y" } })).json().status).toBe("ACCEPTED");
  });

  it("answers 422 unknown-metric and unknown-customer, and stores nothing", async () => {
    const unknownMetric = await meter({
      customer_id: customer.id,
      metric_id: "nope",
      idempotency_key: "bad-1",
    });
    expect(unknownMetric.statusCode).toBe(422);
    expect(unknownMetric.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/unknown-metric`,
      errors: [{ field: "metric_id" }],
    });
    const unknownCustomer = await meter({
      customer_id: "cus_missing",
      metric_id: "api_calls",
      idempotency_key: "bad-2",
    });
    expect(unknownCustomer.statusCode).toBe(422);
    expect(unknownCustomer.json().type).toBe(`${TEST_PUBLIC_URL}/problems/unknown-customer`);
    const rows = await t.database.db
      .selectFrom("usage_events")
      .select("id")
      .where("idempotency_key", "in", ["bad-1", "bad-2"])
      .execute();
    expect(rows).toHaveLength(0);
  });

  it("refuses a timestamp more than 5 minutes ahead with 422 clock-skew, and allows 5 minutes", async () => {
    const ahead = (ms: number) => new Date(now().getTime() + ms).toISOString();
    const skewed = await meter({
      customer_id: customer.id,
      metric_id: "api_calls",
      timestamp: ahead(5 * 60_000 + 1_000),
    });
    expect(skewed.statusCode).toBe(422);
    expect(skewed.json().type).toBe(`${TEST_PUBLIC_URL}/problems/clock-skew`);
    expect(
      (await meter({ customer_id: customer.id, metric_id: "api_calls", timestamp: ahead(5 * 60_000) }))
        .statusCode,
    ).toBe(202);
  });

  it("accepts an event older than 24 hours flagged LATE, and one past the backdating limit into reconciliation", async () => {
    const ago = (hours: number) => new Date(now().getTime() - hours * 3_600_000).toISOString();
    const late = await meter({
      customer_id: customer.id,
      metric_id: "api_calls",
      timestamp: ago(25),
      idempotency_key: "late-1",
    });
    expect(late.json()).toMatchObject({ status: "ACCEPTED", flags: ["LATE"] });
    const ancient = await meter({
      customer_id: customer.id,
      metric_id: "api_calls",
      timestamp: ago(36 * 24),
      idempotency_key: "old-1",
    });
    expect(ancient.statusCode).toBe(202);
    expect(ancient.json()).toMatchObject({ status: "ACCEPTED", flags: ["LATE", "RECONCILIATION"] });
    const row = await t.database.db
      .selectFrom("usage_events")
      .selectAll()
      .where("idempotency_key", "=", "old-1")
      .executeTakeFirstOrThrow();
    expect(row.counted).toBe(false);
  });

  it("lets the unit's filters decide which events count", async () => {
    const ok = await meter({
      customer_id: customer.id,
      metric_id: "ok_calls",
      properties: { status_code: 200 },
      idempotency_key: "f-1",
    });
    const failed = await meter({
      customer_id: customer.id,
      metric_id: "ok_calls",
      properties: { status_code: 503 },
      idempotency_key: "f-2",
    });
    expect(ok.json().flags).toBeUndefined();
    expect(failed.json()).toMatchObject({ status: "ACCEPTED", flags: ["FILTERED"] });
    const rows = await t.database.db
      .selectFrom("usage_events")
      .select(["idempotency_key", "counted"])
      .where("idempotency_key", "in", ["f-1", "f-2"])
      .orderBy("idempotency_key")
      .execute();
    expect(rows).toEqual([
      { idempotency_key: "f-1", counted: true },
      { idempotency_key: "f-2", counted: false },
    ]);
  });

  it("answers 422 when a SUM unit's field is missing or not a number", async () => {
    const missing = await meter({ customer_id: customer.id, metric_id: "tokens", properties: {} });
    expect(missing.statusCode).toBe(422);
    expect(missing.json().errors).toEqual([
      { field: "properties.tokens.input", message: expect.any(String) },
    ]);
    expect(
      (
        await meter({
          customer_id: customer.id,
          metric_id: "tokens",
          properties: { tokens: { input: "many" } },
        })
      ).statusCode,
    ).toBe(422);
  });

  it("answers 400 to schema violations", async () => {
    for (const body of [
      {},
      { customer_id: customer.id },
      { customer_id: customer.id, metric_id: "api_calls", quantity: "abc" },
      { customer_id: customer.id, metric_id: "api_calls", quantity: -1 },
      { customer_id: customer.id, metric_id: "api_calls", timestamp: "yesterday" },
      { customer_id: 5, metric_id: "api_calls" },
    ]) {
      const response = await meter(body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers["content-type"]).toContain("application/problem+json");
    }
  });

  it("records the same idempotency key once when sent from many connections at once", async () => {
    const body = { customer_id: customer.id, metric_id: "api_calls", idempotency_key: "storm-1" };
    const answers = await Promise.all(Array.from({ length: 50 }, () => meter(body)));
    const statuses = answers.map((a) => a.json().status);
    expect(statuses.filter((s) => s === "ACCEPTED")).toHaveLength(1);
    expect(statuses.filter((s) => s === "DUPLICATE")).toHaveLength(49);
    expect(new Set(answers.map((a) => a.json().id)).size).toBe(1);
    const rows = await t.database.db
      .selectFrom("usage_events")
      .select("id")
      .where("idempotency_key", "=", "storm-1")
      .execute();
    expect(rows).toHaveLength(1);
  });

  it("walls off tenants and modes: another tenant's customer is unknown", async () => {
    const other = await sandbox(t);
    await createUnit(t, other, { key: "api_calls", aggregation: "COUNT" });
    const response = await t.request("POST", "/v1/meter", {
      ...other.as,
      body: { customer_id: customer.id, metric_id: "api_calls" },
    });
    expect(response.statusCode).toBe(422);
    const live = await t.request("POST", "/v1/meter", {
      key: f.tenant.liveKey,
      tenant: f.tenant.id,
      body: { customer_id: customer.id, metric_id: "api_calls" },
    });
    expect(live.statusCode).toBe(422);
  });
});

describe("POST /v1/meter/batch and CloudEvents", () => {
  let t: TestApp;
  let f: Fixture;
  let customerId: string;
  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    customerId = (await createCustomer(t, f)).id;
  });
  afterAll(() => t.close());

  it("answers per event; one bad event does not fail the others, and it is dead-lettered", async () => {
    const response = await t.request("POST", "/v1/meter/batch", {
      ...f.as,
      body: {
        events: [
          { customer_id: customerId, metric_id: "api_calls", idempotency_key: "b-1" },
          { customer_id: customerId, metric_id: "nope", idempotency_key: "b-2" },
          { customer_id: customerId, metric_id: "api_calls", idempotency_key: "b-1" },
          "not an event",
          { customer_id: customerId, metric_id: "api_calls", quantity: "x" },
        ],
      },
    });
    expect(response.statusCode).toBe(200);
    const { results } = response.json();
    expect(results.map((r: { status: string }) => r.status)).toEqual([
      "ACCEPTED",
      "REJECTED",
      "DUPLICATE",
      "REJECTED",
      "REJECTED",
    ]);
    expect(results[1]).toMatchObject({ index: 1, id: null, status: "REJECTED" });
    expect(results[1].error).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/unknown-metric`,
      status: 422,
    });
    expect(results[2].id).toBe(results[0].id);
    expect(results[3].error.status).toBe(400);
    const dead = await t.database.db.selectFrom("dead_letters").selectAll().execute();
    expect(dead.map((d) => d.reason_code).sort()).toEqual([
      "unknown-metric",
      "validation-failed",
      "validation-failed",
    ]);
  });

  it("keys the events of a batch sent with an Idempotency-Key header, so its retry counts nothing twice", async () => {
    const send = () =>
      t.request("POST", "/v1/meter/batch", {
        ...f.as,
        headers: { "idempotency-key": "batch-42" },
        body: {
          events: [
            { customer_id: customerId, metric_id: "api_calls" },
            { customer_id: customerId, metric_id: "api_calls", idempotency_key: "own-key" },
            { customer_id: customerId, metric_id: "api_calls" },
          ],
        },
      });
    const first = (await send()).json().results;
    expect(first.map((r: { status: string }) => r.status)).toEqual(["ACCEPTED", "ACCEPTED", "ACCEPTED"]);
    const retry = (await send()).json().results;
    expect(retry.map((r: { status: string }) => r.status)).toEqual(["DUPLICATE", "DUPLICATE", "DUPLICATE"]);
    expect(retry.map((r: { id: string }) => r.id)).toEqual(first.map((r: { id: string }) => r.id));
    const keys = await t.database.db
      .selectFrom("usage_events")
      .select("idempotency_key")
      .where("idempotency_key", "in", ["batch-42:0", "own-key", "batch-42:2"])
      .execute();
    expect(keys).toHaveLength(3);
  });

  it("refuses an empty batch and one over 1,000 events with 400", async () => {
    expect((await t.request("POST", "/v1/meter/batch", { ...f.as, body: { events: [] } })).statusCode).toBe(
      400,
    );
    const events = Array.from({ length: 1001 }, () => ({ customer_id: customerId, metric_id: "api_calls" }));
    expect((await t.request("POST", "/v1/meter/batch", { ...f.as, body: { events } })).statusCode).toBe(400);
  });

  it("accepts a structured CloudEvent and deduplicates on source and id", async () => {
    const event = {
      specversion: "1.0",
      id: "ce-1",
      source: "gateway/kong",
      type: "api_call",
      subject: customerId,
      time: t.clock.now().toISOString(),
      data: { metric_id: "api_calls", quantity: 1, path: "/v1/search" },
    };
    const send = () =>
      t.request("POST", "/v1/events", {
        ...f.as,
        body: event,
        headers: { "content-type": "application/cloudevents+json" },
      });
    const first = await send();
    expect(first.statusCode).toBe(202);
    expect(first.json().status).toBe("ACCEPTED");
    expect((await send()).json()).toEqual({ id: first.json().id, status: "DUPLICATE" });
    const row = await t.database.db
      .selectFrom("usage_events")
      .selectAll()
      .where("id", "=", first.json().id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      event_type: "api_call",
      source: "cloudevents",
      properties: { path: "/v1/search" },
    });
  });

  it("accepts a CloudEvents batch with per-event results and the same validation rules", async () => {
    const base = {
      specversion: "1.0",
      source: "sdk",
      type: "api_call",
      subject: customerId,
      data: { metric_id: "api_calls" },
    };
    const response = await t.request("POST", "/v1/events", {
      ...f.as,
      body: [
        { ...base, id: "b1" },
        { ...base, id: "b2", subject: "cus_nobody" },
        { ...base, id: "b3", time: new Date(t.clock.now().getTime() + 3_600_000).toISOString() },
        { ...base, id: "b4", specversion: "0.3" },
      ],
      headers: { "content-type": "application/cloudevents-batch+json" },
    });
    expect(response.statusCode).toBe(200);
    const statuses = response
      .json()
      .results.map(
        (r: { status: string; error?: { type: string } }) => r.error?.type.split("/").pop() ?? r.status,
      );
    expect(statuses).toEqual(["ACCEPTED", "unknown-customer", "clock-skew", "validation-failed"]);
  });
});
