import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../../testing/test-app.ts";

interface DeadLetter {
  id: string;
  source: string;
  reason_code: string;
  reason: string;
  status: string;
  payload: Record<string, unknown>;
  replayed_event_id: string | null;
  replayed_at: string | null;
}

describe("dead letters", () => {
  let t: TestApp;
  let f: Fixture;
  let letters: DeadLetter[];
  const byKey = (key: string) => {
    const letter = letters.find((l) => l.payload.idempotency_key === key || l.payload.id === key);
    if (!letter) throw new Error(`no dead letter for ${key}`);
    return letter;
  };

  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    const known = await createCustomer(t, f);
    const batch = await t.request("POST", "/v1/meter/batch", {
      ...f.as,
      body: {
        events: [
          { customer_id: known.id, metric_id: "api_calls", idempotency_key: "ok-1" },
          { customer_id: "crm-new", metric_id: "api_calls", idempotency_key: "new-customer" },
          { customer_id: "crm-late", metric_id: "later_unit", idempotency_key: "two-causes" },
          { customer_id: known.id, metric_id: "api_calls", quantity: "x", idempotency_key: "malformed" },
        ],
      },
    });
    expect(batch.statusCode).toBe(200);
    const cloudEvents = await t.request("POST", "/v1/events", {
      ...f.as,
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: [
        {
          specversion: "1.0",
          id: "ce-9",
          source: "gateway",
          type: "api_call",
          subject: "crm-new",
          data: { metric_id: "api_calls", path: "/v1/search" },
        },
      ],
    });
    expect(cloudEvents.statusCode).toBe(200);
    const listed = await t.request("GET", "/v1/dead_letters", f.as);
    expect(listed.statusCode).toBe(200);
    letters = listed.json().data;
  });
  afterAll(() => t.close());

  it("lists every rejected batch event with its reason and payload, newest first", () => {
    expect(letters.map((l) => [l.source, l.reason_code, l.status])).toEqual([
      ["cloudevents", "unknown-customer", "PENDING"],
      ["batch", "validation-failed", "PENDING"],
      ["batch", "unknown-metric", "PENDING"],
      ["batch", "unknown-customer", "PENDING"],
    ]);
    expect(letters[3]).toMatchObject({
      object: "dead_letter",
      payload: { customer_id: "crm-new", metric_id: "api_calls", idempotency_key: "new-customer" },
      replayed_event_id: null,
      replayed_at: null,
      created_at: t.clock.now().toISOString(),
    });
  });

  it("filters by status, source and reason_code, and pages", async () => {
    const get = async (query: Record<string, string>) =>
      (await t.request("GET", "/v1/dead_letters", { ...f.as, query })).json();
    expect((await get({ reason_code: "unknown-customer" })).data).toHaveLength(2);
    expect((await get({ source: "cloudevents" })).data).toHaveLength(1);
    expect((await get({ status: "REPLAYED" })).data).toHaveLength(0);
    const first = await get({ limit: "3" });
    expect(first.has_more).toBe(true);
    const rest = await get({ limit: "3", starting_after: first.data[2].id });
    expect(rest).toMatchObject({ data: [{ id: letters[3]?.id }], has_more: false });
    expect(
      (await t.request("GET", "/v1/dead_letters", { ...f.as, query: { status: "DONE" } })).statusCode,
    ).toBe(400);
  });

  it("replays a letter once its cause is fixed: REPLAYED with the event, which counts", async () => {
    const letter = byKey("new-customer");
    const customer = await createCustomer(t, f, { external_id: "crm-new" });
    const replay = await t.request("POST", `/v1/dead_letters/${letter.id}/replay`, f.as);
    expect(replay.statusCode, replay.body).toBe(200);
    const body = replay.json();
    expect(body.event).toEqual({ id: expect.stringMatching(/^evt_/), status: "ACCEPTED" });
    expect(body.dead_letter).toMatchObject({
      id: letter.id,
      status: "REPLAYED",
      replayed_event_id: body.event.id,
      replayed_at: t.clock.now().toISOString(),
    });
    const event = await t.request("GET", `/v1/events/${body.event.id}`, f.as);
    expect(event.json()).toMatchObject({
      customer_id: customer.id,
      idempotency_key: "new-customer",
      provenance: { source: "replay", counted: true },
    });
    const stored = await t.request("GET", `/v1/dead_letters/${letter.id}`, f.as);
    expect(stored.json()).toMatchObject({ status: "REPLAYED", replayed_event_id: body.event.id });
  });

  it("answers 409 invalid-transition to a second replay", async () => {
    const again = await t.request("POST", `/v1/dead_letters/${byKey("new-customer").id}/replay`, f.as);
    expect(again.statusCode).toBe(409);
    expect(again.json().type).toMatch(/\/problems\/invalid-transition$/);
  });

  it("replays a CloudEvent through the CloudEvents mapping", async () => {
    const letter = byKey("ce-9");
    const replay = await t.request("POST", `/v1/dead_letters/${letter.id}/replay`, f.as);
    expect(replay.statusCode, replay.body).toBe(200);
    const event = await t.request("GET", `/v1/events/${replay.json().event.id}`, f.as);
    expect(event.json()).toMatchObject({
      event_type: "api_call",
      idempotency_key: "ce:gateway:ce-9",
      properties: { path: "/v1/search" },
    });
  });

  it("answers 422 with the new rejection when the payload is still refused, and keeps the letter PENDING with the new reason", async () => {
    const letter = byKey("two-causes");
    await createUnit(t, f, { key: "later_unit", aggregation: "COUNT" });
    const replay = await t.request("POST", `/v1/dead_letters/${letter.id}/replay`, f.as);
    expect(replay.statusCode).toBe(422);
    expect(replay.json().type).toMatch(/\/problems\/unknown-customer$/);
    const stored = (await t.request("GET", `/v1/dead_letters/${letter.id}`, f.as)).json();
    expect(stored).toMatchObject({
      status: "PENDING",
      reason_code: "unknown-customer",
      replayed_event_id: null,
      replayed_at: null,
    });
    expect(stored.reason).toContain("crm-late");

    const malformed = await t.request("POST", `/v1/dead_letters/${byKey("malformed").id}/replay`, f.as);
    expect(malformed.statusCode).toBe(422);
    expect(malformed.json().errors).toContainEqual({ field: "quantity", message: expect.any(String) });
    const kept = (await t.request("GET", `/v1/dead_letters/${byKey("malformed").id}`, f.as)).json();
    expect(kept).toMatchObject({ status: "PENDING", reason_code: "validation-failed" });
  });

  it("answers 404 to another tenant, the other mode and unknown ids", async () => {
    const letter = byKey("two-causes");
    const other = await sandbox(t);
    expect((await t.request("GET", `/v1/dead_letters/${letter.id}`, other.as)).statusCode).toBe(404);
    expect((await t.request("POST", `/v1/dead_letters/${letter.id}/replay`, other.as)).statusCode).toBe(404);
    expect((await t.request("GET", "/v1/dead_letters", other.as)).json()).toEqual({
      data: [],
      has_more: false,
    });
    const live = { key: f.tenant.liveKey, tenant: f.tenant.id };
    expect((await t.request("GET", `/v1/dead_letters/${letter.id}`, live)).statusCode).toBe(404);
    expect((await t.request("POST", "/v1/dead_letters/dlq_missing/replay", f.as)).statusCode).toBe(404);
  });
});
