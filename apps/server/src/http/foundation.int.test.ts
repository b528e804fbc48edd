import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, TEST_PUBLIC_URL, type TestApp, type TestTenant } from "../testing/test-app.ts";
import { IDEMPOTENCY_RETENTION_MS, sweepIdempotencyRecords } from "./idempotency.ts";

function expectProblem(response: LightMyRequestResponse, status: number, slug: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers["content-type"]).toContain("application/problem+json");
  const problem = response.json();
  expect(problem).toMatchObject({ type: `${TEST_PUBLIC_URL}/problems/${slug}`, status });
  expect(typeof problem.title).toBe("string");
  expect(typeof problem.detail).toBe("string");
  expect(problem.instance).toBe(`urn:aforo:request:${response.headers["x-request-id"]}`);
  expect(response.body).not.toMatch(/at .*\.ts:\d+/);
  return problem;
}

describe("authentication and tenancy", () => {
  let t: TestApp;
  let acme: TestTenant;
  let globex: TestTenant;
  beforeAll(async () => {
    t = await createTestApp();
    acme = await t.createTenant("Acme");
    globex = await t.createTenant("Globex");
  });
  afterAll(() => t.close());

  it("answers 401 to a missing or malformed Authorization header", async () => {
    expectProblem(await t.request("GET", "/v1/api_keys", { tenant: acme.id }), 401, "unauthorized");
    for (const authorization of ["Token abc", "Bearer", "Bearer sk_live_short", "Basic dXNlcjpwYXNz"]) {
      const response = await t.request("GET", "/v1/api_keys", {
        tenant: acme.id,
        headers: { authorization },
      });
      expectProblem(response, 401, "unauthorized");
    }
  });

  it("answers 401 to an unknown key and to a key of another tenant", async () => {
    const unknown = `sk_live_${"x".repeat(40)}`;
    expectProblem(
      await t.request("GET", "/v1/api_keys", { key: unknown, tenant: acme.id }),
      401,
      "unauthorized",
    );
    expectProblem(
      await t.request("GET", "/v1/api_keys", { key: globex.liveKey, tenant: acme.id }),
      401,
      "unauthorized",
    );
    expectProblem(
      await t.request("GET", "/v1/api_keys", { key: acme.liveKey, tenant: "no-such-tenant" }),
      401,
      "unauthorized",
    );
  });

  it("answers 400 when X-Tenant-Id is missing", async () => {
    expectProblem(await t.request("GET", "/v1/api_keys", { key: acme.liveKey }), 400, "missing-tenant");
  });

  it("keeps operator and tenant keys apart", async () => {
    expectProblem(
      await t.request("GET", "/v1/api_keys", { key: t.operatorKey, tenant: acme.id }),
      401,
      "unauthorized",
    );
    expectProblem(await t.request("GET", "/v1/tenants", { key: acme.liveKey }), 401, "unauthorized");
  });

  it("refuses a revoked key in the very next request", async () => {
    const created = await t.request("POST", "/v1/api_keys", {
      key: acme.liveKey,
      tenant: acme.id,
      body: { mode: "live" },
    });
    const { id, key } = created.json();
    expect((await t.request("GET", "/v1/api_keys", { key, tenant: acme.id })).statusCode).toBe(200);
    const revoked = await t.request("POST", `/v1/api_keys/${id}/revoke`, {
      key: acme.liveKey,
      tenant: acme.id,
    });
    expect(revoked.json()).toMatchObject({ id, status: "revoked" });
    expectProblem(await t.request("GET", "/v1/api_keys", { key, tenant: acme.id }), 401, "unauthorized");
  });

  it("keeps a rotated key working for five minutes, then refuses it", async () => {
    const created = (
      await t.request("POST", "/v1/api_keys", { key: acme.liveKey, tenant: acme.id, body: { mode: "live" } })
    ).json();
    const rotated = await t.request("POST", `/v1/api_keys/${created.id}/rotate`, {
      key: acme.liveKey,
      tenant: acme.id,
    });
    expect(rotated.statusCode).toBe(201);
    const successor = rotated.json();
    expect(successor.key).toMatch(/^sk_live_/);
    expect(successor.id).not.toBe(created.id);
    const old = (
      await t.request("GET", `/v1/api_keys/${created.id}`, { key: acme.liveKey, tenant: acme.id })
    ).json();
    expect(old).toMatchObject({ status: "expiring", rotated_to: successor.id });

    t.clock.advance(4 * 60_000);
    expect((await t.request("GET", "/v1/api_keys", { key: created.key, tenant: acme.id })).statusCode).toBe(
      200,
    );
    t.clock.advance(61_000);
    expectProblem(
      await t.request("GET", "/v1/api_keys", { key: created.key, tenant: acme.id }),
      401,
      "unauthorized",
    );
    expect((await t.request("GET", "/v1/api_keys", { key: successor.key, tenant: acme.id })).statusCode).toBe(
      200,
    );
  });

  it("answers 403 when the key lacks the scope", async () => {
    const readOnly = (
      await t.request("POST", "/v1/api_keys", {
        key: acme.testKey,
        tenant: acme.id,
        body: { mode: "test", scopes: ["keys:read"] },
      })
    ).json();
    expect((await t.request("GET", "/v1/api_keys", { key: readOnly.key, tenant: acme.id })).statusCode).toBe(
      200,
    );
    const refused = await t.request("POST", "/v1/api_keys", {
      key: readOnly.key,
      tenant: acme.id,
      body: { mode: "test" },
    });
    expectProblem(refused, 403, "forbidden");
    // The key is known: the refusal counts against its limit and says so, like every keyed answer.
    expect(refused.headers["x-ratelimit-limit"]).toBeDefined();
    expect(Number(refused.headers["x-ratelimit-remaining"])).toBeLessThan(
      Number(refused.headers["x-ratelimit-limit"]),
    );
    expect(Number(refused.headers["x-ratelimit-reset"])).toBeGreaterThan(0);
  });

  it("refuses unknown scopes with 422 and field errors", async () => {
    const response = await t.request("POST", "/v1/api_keys", {
      key: acme.testKey,
      tenant: acme.id,
      body: { mode: "test", scopes: ["everything:please"] },
    });
    expect(expectProblem(response, 422, "unprocessable-entity").errors).toEqual([
      { field: "scopes", message: "'everything:please' is not a known scope" },
    ]);
  });

  it("walls off the sandbox: a test key cannot see or create live keys, and the reverse", async () => {
    const liveKey = (
      await t.request("POST", "/v1/api_keys", { key: acme.liveKey, tenant: acme.id, body: { mode: "live" } })
    ).json();
    const testKey = (
      await t.request("POST", "/v1/api_keys", { key: acme.testKey, tenant: acme.id, body: { mode: "test" } })
    ).json();
    expectProblem(
      await t.request("GET", `/v1/api_keys/${liveKey.id}`, { key: acme.testKey, tenant: acme.id }),
      404,
      "not-found",
    );
    expectProblem(
      await t.request("GET", `/v1/api_keys/${testKey.id}`, { key: acme.liveKey, tenant: acme.id }),
      404,
      "not-found",
    );
    expectProblem(
      await t.request("POST", "/v1/api_keys", { key: acme.testKey, tenant: acme.id, body: { mode: "live" } }),
      403,
      "forbidden",
    );
    const testList = (
      await t.request("GET", "/v1/api_keys", { key: acme.testKey, tenant: acme.id, query: { limit: "100" } })
    ).json();
    expect(testList.data.every((key: { mode: string }) => key.mode === "test")).toBe(true);
  });

  it("answers 404 for another tenant's key and changes nothing", async () => {
    const target = (
      await t.request("POST", "/v1/api_keys", { key: acme.liveKey, tenant: acme.id, body: { mode: "live" } })
    ).json();
    const asGlobex = { key: globex.liveKey, tenant: globex.id };
    expectProblem(await t.request("GET", `/v1/api_keys/${target.id}`, asGlobex), 404, "not-found");
    expectProblem(await t.request("POST", `/v1/api_keys/${target.id}/revoke`, asGlobex), 404, "not-found");
    expectProblem(await t.request("POST", `/v1/api_keys/${target.id}/rotate`, asGlobex), 404, "not-found");
    expectProblem(await t.request("DELETE", `/v1/api_keys/${target.id}`, asGlobex), 404, "not-found");
    const after = (
      await t.request("GET", `/v1/api_keys/${target.id}`, { key: acme.liveKey, tenant: acme.id })
    ).json();
    expect(after).toMatchObject({ status: "active", revoked_at: null, rotated_to: null });
    expect((await t.request("GET", "/v1/api_keys", { key: target.key, tenant: acme.id })).statusCode).toBe(
      200,
    );
  });

  it("never returns a key's secret after creation", async () => {
    const created = (
      await t.request("POST", "/v1/api_keys", { key: acme.liveKey, tenant: acme.id, body: { mode: "live" } })
    ).json();
    const list = await t.request("GET", "/v1/api_keys", {
      key: acme.liveKey,
      tenant: acme.id,
      query: { limit: "100" },
    });
    expect(list.body).not.toContain(created.key);
    expect(list.body).not.toContain(acme.liveKey);
    expect(created.redacted_key).toBe(`sk_live_…${created.key.slice(-4)}`);
  });
});

describe("bad input", () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());
  const as = () => ({ key: tenant.testKey, tenant: tenant.id });

  it("answers 400 to malformed JSON", async () => {
    expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as(), body: '{"mode": "test",' }),
      400,
      "malformed-request",
    );
    expectProblem(
      await t.request("POST", "/v1/api_keys", {
        ...as(),
        body: "",
        headers: { "content-type": "application/json" },
      }),
      400,
      "malformed-request",
    );
  });

  it("answers 400 with field errors to wrong types, missing fields and unknown enum values", async () => {
    const wrongType = expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as(), body: { mode: "test", name: 42 } }),
      400,
      "validation-failed",
    );
    expect(wrongType.errors).toContainEqual({ field: "name", message: expect.any(String) });
    const missing = expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as(), body: {} }),
      400,
      "validation-failed",
    );
    expect(missing.errors).toContainEqual({ field: "mode", message: "is required" });
    const badEnum = expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as(), body: { mode: "staging" } }),
      400,
      "validation-failed",
    );
    expect(badEnum.errors[0].field).toBe("mode");
    const badQuery = expectProblem(
      await t.request("GET", "/v1/api_keys", { ...as(), query: { limit: "1000" } }),
      400,
      "validation-failed",
    );
    expect(badQuery.errors[0].field).toBe("limit");
  });

  it("answers 413 to a body over 1 MiB", async () => {
    const body = JSON.stringify({ mode: "test", name: "x".repeat(1024 * 1024 + 10) });
    expectProblem(await t.request("POST", "/v1/api_keys", { ...as(), body }), 413, "payload-too-large");
  });

  it("answers 415 to an unsupported content type", async () => {
    const response = await t.request("POST", "/v1/api_keys", {
      ...as(),
      body: "mode=test",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expectProblem(response, 415, "unsupported-media-type");
  });

  it("answers 404 as a problem document for an unknown route", async () => {
    expectProblem(await t.request("GET", "/v1/nothing-here", as()), 404, "not-found");
  });
});

describe("HTTP foundations", () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("echoes a caller's X-Request-Id and makes one otherwise", async () => {
    const echoed = await t.request("GET", "/healthz", { headers: { "x-request-id": "gateway-trace-123" } });
    expect(echoed.headers["x-request-id"]).toBe("gateway-trace-123");
    const made = await t.request("GET", "/healthz");
    expect(made.headers["x-request-id"]).toMatch(/^req_/);
  });

  it("sends rate-limit headers on every keyed response and 429 with Retry-After past the burst", async () => {
    const limited = (
      await t.request("POST", "/v1/api_keys", {
        key: tenant.testKey,
        tenant: tenant.id,
        body: { mode: "test", rate_limits: { management: { limit: 60, burst: 2 } } },
      })
    ).json();
    const as = { key: limited.key, tenant: tenant.id };
    const first = await t.request("GET", "/v1/api_keys", as);
    expect(first.headers).toMatchObject({ "x-ratelimit-limit": "60", "x-ratelimit-remaining": "1" });
    expect(Number(first.headers["x-ratelimit-reset"])).toBeGreaterThan(t.clock.now().getTime() / 1000);
    expect((await t.request("GET", "/v1/api_keys", as)).statusCode).toBe(200);
    const refused = await t.request("GET", "/v1/api_keys", as);
    const problem = expectProblem(refused, 429, "rate-limited");
    expect(refused.headers["retry-after"]).toBe("1");
    expect(problem.retry_after).toBe(1);
    t.clock.advance(1_000);
    expect((await t.request("GET", "/v1/api_keys", as)).statusCode).toBe(200);
  });

  it("replays the first response for a repeated Idempotency-Key and refuses another body with 409", async () => {
    const as = { key: tenant.testKey, tenant: tenant.id, headers: { "idempotency-key": "create-ci-key-1" } };
    const first = await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "ci" } });
    const replay = await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "ci" } });
    expect(first.statusCode).toBe(201);
    expect(replay.statusCode).toBe(201);
    expect(replay.json()).toEqual(first.json());
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    const list = (
      await t.request("GET", "/v1/api_keys", {
        key: tenant.testKey,
        tenant: tenant.id,
        query: { limit: "100" },
      })
    ).json();
    expect(list.data.filter((key: { name: string }) => key.name === "ci")).toHaveLength(1);
    expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "other" } }),
      409,
      "idempotency-key-reused",
    );
  });

  it("forgets a key after 24 hours: the same key with another body is then a new request", async () => {
    const as = { key: tenant.testKey, tenant: tenant.id, headers: { "idempotency-key": "create-ci-key-2" } };
    const first = await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "day one" } });
    expect(first.statusCode).toBe(201);
    t.clock.advance(IDEMPOTENCY_RETENTION_MS - 1_000);
    expectProblem(
      await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "day two" } }),
      409,
      "idempotency-key-reused",
    );
    t.clock.advance(2_000);
    const later = await t.request("POST", "/v1/api_keys", { ...as, body: { mode: "test", name: "day two" } });
    expect(later.statusCode).toBe(201);
    expect(later.headers["idempotent-replayed"]).toBeUndefined();
    expect(later.json().id).not.toBe(first.json().id);
    // The new answer is the one replayed from now on.
    const replay = await t.request("POST", "/v1/api_keys", {
      ...as,
      body: { mode: "test", name: "day two" },
    });
    expect(replay.headers["idempotent-replayed"]).toBe("true");
    expect(replay.json().id).toBe(later.json().id);
  });

  it("frees a key whose request never answered (its process died) once the key expires", async () => {
    const stuck = {
      tenant_id: tenant.id,
      mode: "test" as const,
      key: "create-ci-key-3",
      method: "POST",
      path: "/v1/api_keys",
      body_hash: "from a process that died",
    };
    await t.context.database.db
      .insertInto("idempotency_requests")
      .values({ ...stuck, created_at: t.clock.now() })
      .execute();
    const as = { key: tenant.testKey, tenant: tenant.id, headers: { "idempotency-key": stuck.key } };
    const body = { mode: "test", name: "retried" };
    // Another body while it is remembered: refused, whatever became of the first request.
    expectProblem(await t.request("POST", "/v1/api_keys", { ...as, body }), 409, "idempotency-key-reused");
    t.clock.advance(IDEMPOTENCY_RETENTION_MS + 1_000);
    expect((await t.request("POST", "/v1/api_keys", { ...as, body })).statusCode).toBe(201);
  });

  it("sweeps the keys older than 24 hours, slice by slice, and keeps the others", async () => {
    const db = t.context.database.db;
    const now = t.clock.now();
    const row = (key: string, ageMs: number) => ({
      tenant_id: tenant.id,
      mode: "live" as const,
      key,
      method: "POST",
      path: "/v1/products",
      body_hash: "h",
      created_at: new Date(now.getTime() - ageMs),
    });
    await db
      .insertInto("idempotency_requests")
      .values([
        row("sweep-old-1", IDEMPOTENCY_RETENTION_MS + 1),
        row("sweep-old-2", IDEMPOTENCY_RETENTION_MS * 2),
        row("sweep-old-3", IDEMPOTENCY_RETENTION_MS * 3),
        row("sweep-recent", IDEMPOTENCY_RETENTION_MS - 60_000),
      ])
      .execute();
    expect(await sweepIdempotencyRecords(db, now, 2)).toBeGreaterThanOrEqual(3);
    const left = await db
      .selectFrom("idempotency_requests")
      .select("key")
      .where("key", "like", "sweep-%")
      .execute();
    expect(left.map((r) => r.key)).toEqual(["sweep-recent"]);
  });

  it("serves a page for every problem type", async () => {
    const index = await t.request("GET", "/problems");
    expect(index.statusCode).toBe(200);
    for (const slug of ["unauthorized", "quota-exceeded", "clock-skew", "unknown-metric"]) {
      const page = await t.request("GET", `/problems/${slug}`);
      expect(page.statusCode).toBe(200);
      expect(page.headers["content-type"]).toContain("text/html");
    }
    expect((await t.request("GET", "/problems/not-a-problem")).statusCode).toBe(404);
  });

  it("reports health, readiness and Prometheus metrics", async () => {
    expect((await t.request("GET", "/healthz")).json()).toEqual({ status: "ok" });
    expect((await t.request("GET", "/readyz")).json()).toMatchObject({ status: "ready" });
    const metrics = await t.request("GET", "/metrics");
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain("aforo_http_request_duration_seconds_bucket");
  });
});
