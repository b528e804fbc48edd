import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";
import { eventually, TestReceiver } from "./test-receiver.ts";

type Method = "GET" | "POST" | "PATCH" | "DELETE";
const SECOND = 1_000;
const HOUR = 3_600 * SECOND;

describe("outbound webhooks", () => {
  let t: TestApp;
  let f: Fixture;
  let receiver: TestReceiver;
  const as = (method: Method, url: string, body?: unknown, fixture: Fixture = f) =>
    t.request(method, url, { ...fixture.as, body });

  async function ok(method: Method, url: string, body?: unknown, status = method === "POST" ? 201 : 200) {
    const response = await as(method, url, body);
    if (response.statusCode !== status)
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  async function endpoint(path: string, events: string[] = ["*"], extra: Record<string, unknown> = {}) {
    return ok("POST", "/v1/webhook_endpoints", { url: receiver.url(path), events, ...extra });
  }

  /** Publishes api_key.created (the key's secret must never appear in the event). */
  async function createKey(name = "ci") {
    return ok("POST", "/v1/api_keys", { mode: "test", name });
  }

  async function deliveriesOf(endpointId: string, query = "") {
    return (await ok("GET", `/v1/webhook_endpoints/${endpointId}/deliveries${query}`)).data as Record<
      string,
      unknown
    >[];
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    t = await createTestApp({ config: { webhookRetryScheduleMs: [60 * SECOND, 120 * SECOND] } });
  });
  // A tenant per test: endpoints of one test never receive another's events.
  beforeEach(async () => {
    f = await sandbox(t);
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it("creates an endpoint with a whsec_ secret shown once, stored sealed", async () => {
    const created = await endpoint("/created", ["invoice.paid", "api_key.created"], {
      description: "billing",
    });
    expect(created).toEqual({
      id: expect.stringMatching(/^we_/),
      object: "webhook_endpoint",
      url: receiver.url("/created"),
      description: "billing",
      events: ["invoice.paid", "api_key.created"],
      enabled: true,
      status: "enabled",
      created_at: t.clock.now().toISOString(),
      updated_at: t.clock.now().toISOString(),
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const fetched = await ok("GET", `/v1/webhook_endpoints/${created.id}`);
    expect(fetched).not.toHaveProperty("secret");
    const listed = await ok("GET", "/v1/webhook_endpoints");
    expect(listed.data.map((item: { id: string }) => item.id)).toContain(created.id);
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    const row = await t.database.db
      .selectFrom("webhook_endpoints")
      .select("secret_sealed")
      .where("id", "=", created.id)
      .executeTakeFirstOrThrow();
    expect(row.secret_sealed).toMatch(/^v1\./);
    expect(row.secret_sealed).not.toContain(created.secret.slice("whsec_".length, 20));
  });

  it("delivers a subscribed event signed per Standard Webhooks, verified by the reference library", async () => {
    const hook = await endpoint("/signed", ["api_key.created"]);
    const key = await createKey("signed");
    const [request] = await receiver.waitFor("/signed");
    if (!request) throw new Error("no delivery");
    const verified = new Webhook(hook.secret).verify(request.body, request.headers) as Record<
      string,
      unknown
    >;
    expect(verified).toEqual({
      type: "api_key.created",
      timestamp: t.clock.now().toISOString(),
      data: expect.objectContaining({ id: key.id, object: "api_key", redacted_key: key.redacted_key }),
    });
    expect(request.body).not.toContain(key.key);
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["webhook-id"]).toMatch(/^msg_/);
    // Any other secret, or a changed body, fails verification.
    expect(() =>
      new Webhook(`whsec_${Buffer.alloc(32, 7).toString("base64")}`).verify(request.body, request.headers),
    ).toThrow();
    expect(() => new Webhook(hook.secret).verify(`${request.body} `, request.headers)).toThrow();
    const [delivery] = await eventually(
      () => deliveriesOf(hook.id),
      (list) => list[0]?.status === "succeeded",
    );
    expect(delivery).toMatchObject({
      id: expect.stringMatching(/^wdel_/),
      object: "webhook_delivery",
      endpoint_id: hook.id,
      event_id: request.headers["webhook-id"],
      event_type: "api_key.created",
      status: "succeeded",
      attempt_count: 1,
      next_attempt_at: null,
      last_status_code: 200,
      last_error: null,
      payload: verified,
      attempts: [
        {
          id: expect.stringMatching(/^watt_/),
          trigger: "automatic",
          succeeded: true,
          status_code: 200,
          response_body: "ok",
          duration_ms: expect.any(Number),
          error: null,
          attempted_at: t.clock.now().toISOString(),
        },
      ],
    });
    expect(await ok("GET", `/v1/webhook_deliveries/${delivery?.id}`)).toEqual(delivery);
  });

  it("sends each endpoint only the event types it subscribed to; '*' gets every one", async () => {
    const revocations = await endpoint("/revoked-only", ["api_key.revoked"]);
    const everything = await endpoint("/everything", ["*"]);
    const key = await createKey("filtered");
    await ok("POST", `/v1/api_keys/${key.id}/revoke`, undefined, 200);
    await receiver.waitFor("/everything", 2);
    const [revoked] = await receiver.waitFor("/revoked-only", 1);
    expect(JSON.parse(revoked?.body ?? "{}")).toMatchObject({
      type: "api_key.revoked",
      data: { id: key.id },
    });
    await t.context.webhooks.sweep();
    expect(receiver.at("/revoked-only")).toHaveLength(1);
    expect(receiver.at("/everything").map((request) => JSON.parse(request.body).type)).toEqual([
      "api_key.created",
      "api_key.revoked",
    ]);
    expect(await deliveriesOf(revocations.id)).toHaveLength(1);
    expect(await deliveriesOf(everything.id)).toHaveLength(2);
  });

  it("gives a disabled endpoint nothing, and delivers again once it is enabled", async () => {
    const hook = await endpoint("/disabled", ["api_key.created"], { enabled: false });
    expect(hook).toMatchObject({ enabled: false, status: "disabled" });
    await createKey("while disabled");
    await t.context.webhooks.sweep();
    expect(await deliveriesOf(hook.id)).toEqual([]);
    expect(receiver.at("/disabled")).toEqual([]);
    const enabled = await ok("PATCH", `/v1/webhook_endpoints/${hook.id}`, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, status: "enabled" });
    await createKey("once enabled");
    await receiver.waitFor("/disabled", 1);
  });

  it("retries a failing endpoint on the backoff schedule, then marks the delivery failed", async () => {
    receiver.answer("/failing", { status: 500, body: "boom" });
    const hook = await endpoint("/failing", ["api_key.created"]);
    const publishedAt = t.clock.now();
    await createKey("retried");
    const [first] = await eventually(
      () => deliveriesOf(hook.id),
      (list) => list[0]?.attempt_count === 1,
    );
    expect(first).toMatchObject({
      status: "pending",
      last_status_code: 500,
      last_error: "the endpoint answered 500",
      next_attempt_at: new Date(publishedAt.getTime() + 60 * SECOND).toISOString(),
      attempts: [{ succeeded: false, status_code: 500, response_body: "boom" }],
    });
    const attempts = async () => (await deliveriesOf(hook.id))[0]?.attempt_count;
    // Not due yet: nothing is sent.
    t.clock.advance(59 * SECOND);
    await t.context.webhooks.sweep();
    expect(await attempts()).toBe(1);
    t.clock.advance(SECOND);
    await t.context.webhooks.sweep();
    const [second] = await deliveriesOf(hook.id);
    expect(second).toMatchObject({
      status: "pending",
      attempt_count: 2,
      next_attempt_at: new Date(t.clock.now().getTime() + 120 * SECOND).toISOString(),
    });
    t.clock.advance(119 * SECOND);
    await t.context.webhooks.sweep();
    expect(await attempts()).toBe(2);
    t.clock.advance(SECOND);
    await t.context.webhooks.sweep();
    const [failed] = await deliveriesOf(hook.id);
    expect(failed).toMatchObject({ status: "failed", attempt_count: 3, next_attempt_at: null });
    expect(failed?.attempts).toHaveLength(3);
    // Nothing more, however long one waits.
    t.clock.advance(48 * HOUR);
    await t.context.webhooks.sweep();
    expect(await attempts()).toBe(3);
    // Every attempt carried the same message id and a valid signature.
    const requests = receiver.at("/failing");
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((request) => request.headers["webhook-id"])).size).toBe(1);
    for (const request of requests)
      expect(() => new Webhook(hook.secret).verify(request.body, request.headers)).not.toThrow();
    expect(await deliveriesOf(hook.id, "?status=failed")).toHaveLength(1);
    expect(await deliveriesOf(hook.id, "?status=succeeded")).toHaveLength(0);

    // Replay: the endpoint recovered; the delivery is sent now as a new attempt.
    receiver.answer("/failing", { status: 204 });
    const replayed = await ok("POST", `/v1/webhook_deliveries/${failed?.id}/replay`, undefined, 200);
    expect(replayed).toMatchObject({ status: "succeeded", attempt_count: 4, last_status_code: 204 });
    expect(replayed.attempts.map((attempt: { trigger: string }) => attempt.trigger)).toEqual([
      "automatic",
      "automatic",
      "automatic",
      "replay",
    ]);
    expect(receiver.at("/failing")).toHaveLength(4);
    expect(await deliveriesOf(hook.id, "?status=succeeded")).toHaveLength(1);
  });

  it("logs a refused connection and a timeout as failed attempts with their error", async () => {
    t.context.webhooks.configure({ retryScheduleMs: [], timeoutMs: 300 });
    try {
      // A port that was just free: nothing listens there.
      const closed = await new TestReceiver().start();
      const deadUrl = closed.url("/nothing-listens");
      await closed.close();
      const refused = await ok("POST", "/v1/webhook_endpoints", {
        url: deadUrl,
        events: ["api_key.created"],
      });
      receiver.answer("/hangs", "hang");
      const hanging = await endpoint("/hangs", ["api_key.created"]);
      await createKey("unreachable");
      const [refusedDelivery] = await eventually(
        () => deliveriesOf(refused.id),
        (list) => list[0]?.status === "failed",
      );
      expect(refusedDelivery).toMatchObject({ last_status_code: null, attempt_count: 1 });
      expect(refusedDelivery?.last_error).toMatch(/ECONNREFUSED|refused/i);
      const [hangingDelivery] = await eventually(
        () => deliveriesOf(hanging.id),
        (list) => list[0]?.status === "failed",
      );
      expect(hangingDelivery).toMatchObject({
        last_status_code: null,
        last_error: "no answer within 300 ms",
      });
      await ok("PATCH", `/v1/webhook_endpoints/${refused.id}`, { enabled: false });
      await ok("PATCH", `/v1/webhook_endpoints/${hanging.id}`, { enabled: false });
    } finally {
      t.context.webhooks.configure({ retryScheduleMs: [60 * SECOND, 120 * SECOND], timeoutMs: 10 * SECOND });
    }
  });

  it("changes an endpoint's url and events, and refuses a replay while it is disabled", async () => {
    const hook = await endpoint("/before", ["api_key.revoked"]);
    const changed = await ok("PATCH", `/v1/webhook_endpoints/${hook.id}`, {
      url: receiver.url("/after"),
      events: ["api_key.created"],
      description: null,
    });
    expect(changed).toMatchObject({
      url: receiver.url("/after"),
      events: ["api_key.created"],
      description: null,
    });
    await createKey("moved");
    await receiver.waitFor("/after", 1);
    expect(receiver.at("/before")).toEqual([]);
    const [delivery] = await eventually(
      () => deliveriesOf(hook.id),
      (list) => list[0]?.status === "succeeded",
    );
    await ok("PATCH", `/v1/webhook_endpoints/${hook.id}`, { enabled: false });
    const refused = await as("POST", `/v1/webhook_deliveries/${delivery?.id}/replay`);
    expect(refused.statusCode).toBe(409);
  });

  it("rotates the secret: both signatures for 24 hours, then only the new one", async () => {
    const hook = await endpoint("/rotated", ["api_key.created"]);
    const rotated = await ok("POST", `/v1/webhook_endpoints/${hook.id}/rotate_secret`, undefined, 200);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(hook.secret);
    await createKey("during overlap");
    const [during] = await receiver.waitFor("/rotated", 1);
    if (!during) throw new Error("no delivery");
    expect(during.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(() => new Webhook(hook.secret).verify(during.body, during.headers)).not.toThrow();
    expect(() => new Webhook(rotated.secret).verify(during.body, during.headers)).not.toThrow();
    t.clock.advance(25 * HOUR);
    await createKey("after overlap");
    const after = (await receiver.waitFor("/rotated", 2))[1];
    if (!after) throw new Error("no delivery");
    expect(() => new Webhook(rotated.secret).verify(after.body, after.headers)).not.toThrow();
    expect(() => new Webhook(hook.secret).verify(after.body, after.headers)).toThrow();
  });

  it("deletes an endpoint with its delivery log", async () => {
    const hook = await endpoint("/deleted", ["api_key.created"]);
    await createKey("before delete");
    const [delivery] = await eventually(
      () => deliveriesOf(hook.id),
      (list) => list[0]?.status === "succeeded",
    );
    expect(await ok("DELETE", `/v1/webhook_endpoints/${hook.id}`)).toEqual({
      id: hook.id,
      object: "webhook_endpoint",
      deleted: true,
    });
    expect((await as("GET", `/v1/webhook_endpoints/${hook.id}`)).statusCode).toBe(404);
    expect((await as("GET", `/v1/webhook_deliveries/${delivery?.id}`)).statusCode).toBe(404);
    expect((await as("DELETE", `/v1/webhook_endpoints/${hook.id}`)).statusCode).toBe(404);
  });

  it("answers 404 for another tenant's (or mode's) endpoints and deliveries", async () => {
    const hook = await endpoint("/private", ["api_key.created"]);
    await createKey("private");
    const [delivery] = await eventually(
      () => deliveriesOf(hook.id),
      (list) => list[0]?.status === "succeeded",
    );
    const other = await sandbox(t);
    const live: Fixture = { tenant: f.tenant, as: { key: f.tenant.liveKey, tenant: f.tenant.id } };
    for (const stranger of [other, live]) {
      const calls: [Method, string, unknown?][] = [
        ["GET", `/v1/webhook_endpoints/${hook.id}`],
        ["PATCH", `/v1/webhook_endpoints/${hook.id}`, { enabled: false }],
        ["POST", `/v1/webhook_endpoints/${hook.id}/rotate_secret`],
        ["GET", `/v1/webhook_endpoints/${hook.id}/deliveries`],
        ["GET", `/v1/webhook_deliveries/${delivery?.id}`],
        ["POST", `/v1/webhook_deliveries/${delivery?.id}/replay`],
        ["DELETE", `/v1/webhook_endpoints/${hook.id}`],
      ];
      for (const [method, url, body] of calls) {
        const response = await as(method, url, body, stranger);
        expect(response.statusCode, `${method} ${url}`).toBe(404);
      }
      const listed = await as("GET", "/v1/webhook_endpoints", undefined, stranger);
      expect(listed.json().data.map((item: { id: string }) => item.id)).not.toContain(hook.id);
    }
    // Their keys' events (written in the same transaction as the key) never reach this endpoint.
    const theirs = await as("POST", "/v1/api_keys", { mode: "test", name: "theirs" }, other);
    expect(theirs.statusCode).toBe(201);
    expect(await deliveriesOf(hook.id)).toHaveLength(1);
    expect(await ok("GET", `/v1/webhook_endpoints/${hook.id}`)).toMatchObject({ enabled: true });
  });

  it("refuses bad input with 400 or 422 and changes nothing", async () => {
    const count = async () => (await ok("GET", "/v1/webhook_endpoints?limit=100")).data.length;
    const before = await count();
    const cases: [unknown, number][] = [
      [{ events: ["*"] }, 400],
      [{ url: receiver.url("/x") }, 400],
      [{ url: receiver.url("/x"), events: [] }, 400],
      [{ url: receiver.url("/x"), events: ["invoice.exploded"] }, 400],
      [{ url: receiver.url("/x"), events: "*" }, 400],
      [{ url: 42, events: ["*"] }, 400],
      [{ url: receiver.url("/x"), events: ["*"], enabled: "yes" }, 400],
      [{ url: "not a url", events: ["*"] }, 422],
      [{ url: "ftp://files.example.com/hook", events: ["*"] }, 422],
      [{ url: "https://user:pass@example.com/hook", events: ["*"] }, 422],
    ];
    for (const [body, status] of cases) {
      const response = await as("POST", "/v1/webhook_endpoints", body);
      expect(response.statusCode, JSON.stringify(body)).toBe(status);
      expect(response.headers["content-type"]).toMatch(/application\/problem\+json/);
    }
    const invalidUrl = await as("POST", "/v1/webhook_endpoints", { url: "ftp://x.example", events: ["*"] });
    expect(invalidUrl.json()).toMatchObject({ errors: [{ field: "url" }] });
    const hook = await endpoint("/valid", ["api_key.created"]);
    expect((await as("PATCH", `/v1/webhook_endpoints/${hook.id}`, {})).statusCode).toBe(400);
    expect((await as("PATCH", `/v1/webhook_endpoints/${hook.id}`, { url: "mailto:a@b.c" })).statusCode).toBe(
      422,
    );
    expect((await as("PATCH", `/v1/webhook_endpoints/${hook.id}`, { events: ["nope"] })).statusCode).toBe(
      400,
    );
    expect(await ok("GET", `/v1/webhook_endpoints/${hook.id}`)).toMatchObject({
      url: receiver.url("/valid"),
      events: ["api_key.created"],
    });
    expect((await as("GET", `/v1/webhook_endpoints/${hook.id}/deliveries?status=lost`)).statusCode).toBe(400);
    expect((await as("GET", "/v1/webhook_deliveries/wdel_unknown")).statusCode).toBe(404);
    expect((await as("POST", "/v1/webhook_deliveries/wdel_unknown/replay")).statusCode).toBe(404);
    expect(await count()).toBe(before + 1);
    await ok("PATCH", `/v1/webhook_endpoints/${hook.id}`, { enabled: false });
  });
});
