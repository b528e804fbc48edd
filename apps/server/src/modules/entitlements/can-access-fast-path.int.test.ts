import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createCustomer,
  createUnit,
  type Fixture,
  publishedOffering,
  sandbox,
} from "../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";
import { fastPathStats } from "./routes/can-access-fast-path.ts";

/**
 * The fast path (a listening server) must answer exactly as the Fastify route (inject) does.
 * Every case is built twice, one fixture per path, so that state a request changes (quota used,
 * rate-limit tokens) is the same on both sides; the second side's ids are mapped back to the
 * first's before comparing bodies.
 */
interface Side {
  key: string;
  customerId: string;
  /** A customer subscribed to the small plan (quota 5, block). */
  smallCustomerId: string;
  unsubscribedCustomerId: string;
  /** A key limited to one canAccess request per minute. */
  limitedKey: string;
  /** A key without the entitlements:read scope. */
  narrowKey: string;
  ids: string[];
}

interface Case {
  name: string;
  path?: string;
  headers?: (side: Side) => Record<string, string>;
  body: (side: Side) => string;
  /** Requests sent before the compared one (on each path), e.g. to use a quota up. */
  before?: (side: Side) => string[];
  /** The fast path must take the request (false: it must leave it to Fastify). */
  fast?: boolean;
}

const COMPARED_HEADERS = [
  "content-type",
  "content-length",
  "x-ratelimit-limit",
  "x-ratelimit-reset",
  "x-aforo-throttle",
  "retry-after",
  "www-authenticate",
];

describe("POST /v1/canAccess fast path", () => {
  let t: TestApp;
  let f: Fixture;
  let baseUrl: string;
  const sides: Side[] = [];

  async function post(url: string, body: unknown, as = f.as) {
    const response = await t.request("POST", url, { ...as, body });
    if (response.statusCode !== 201) throw new Error(`POST ${url}: ${response.statusCode} ${response.body}`);
    return response.json();
  }

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set("2026-11-15T12:00:00Z");
    f = await sandbox(t);
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    await createUnit(t, f, { key: "tokens", aggregation: "SUM", field: "tokens" });
    const pro = await publishedOffering(t, f, "Pro", [
      { feature: "sso", type: "boolean" },
      {
        feature: "search",
        type: "metered",
        billable_unit: "api_calls",
        limit: "50",
        reset: "billing_period",
        overage: "block",
      },
      {
        feature: "llm",
        type: "metered",
        billable_unit: "tokens",
        limit: "1000",
        reset: "day",
        overage: "throttle",
      },
    ]);
    const small = await publishedOffering(t, f, "Small", [
      {
        feature: "search",
        type: "metered",
        billable_unit: "api_calls",
        limit: "5",
        reset: "day",
        overage: "block",
      },
    ]);
    for (let i = 0; i < 2; i++) {
      const customer = await createCustomer(t, f);
      await post("/v1/subscriptions", { customer_id: customer.id, offering_id: pro.offeringId });
      const smallCustomer = await createCustomer(t, f);
      await post("/v1/subscriptions", { customer_id: smallCustomer.id, offering_id: small.offeringId });
      const unsubscribed = await createCustomer(t, f);
      const limited = await post("/v1/api_keys", {
        mode: "test",
        name: `limited ${i}`,
        rate_limits: { canAccess: { limit: 60, burst: 1 } },
      });
      const narrow = await post("/v1/api_keys", {
        mode: "test",
        name: `narrow ${i}`,
        scopes: ["customers:read"],
      });
      const key = (await post("/v1/api_keys", { mode: "test", name: `side ${i}` })).key as string;
      sides.push({
        key,
        customerId: customer.id,
        smallCustomerId: smallCustomer.id,
        unsubscribedCustomerId: unsubscribed.id,
        limitedKey: limited.key,
        narrowKey: narrow.key,
        ids: [customer.id, smallCustomer.id, unsubscribed.id],
      });
    }
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    const address = t.app.server.address();
    baseUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(() => t.close());

  const json = (value: unknown) => () => JSON.stringify(value);
  const authed = (side: Side, key = side.key): Record<string, string> => ({
    authorization: `Bearer ${key}`,
    "x-tenant-id": f.tenant.id,
    "content-type": "application/json",
  });

  const cases: Case[] = [
    { name: "a boolean feature", body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }) },
    {
      name: "a consuming metered check",
      body: (s) =>
        JSON.stringify({ customer_id: s.customerId, feature: "search", consume: true, quantity: 3 }),
    },
    {
      name: "a throttle past a throttling quota",
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "llm", quantity: 1500 }),
    },
    {
      name: "a quota used up (429 with Retry-After)",
      before: (s) => [
        JSON.stringify({ customer_id: s.smallCustomerId, feature: "search", consume: true, quantity: 5 }),
      ],
      body: (s) => JSON.stringify({ customer_id: s.smallCustomerId, feature: "search" }),
    },
    {
      name: "a feature not in the plan (403)",
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "teleport" }),
    },
    {
      name: "a customer without a subscription (403)",
      body: (s) => JSON.stringify({ customer_id: s.unsubscribedCustomerId, feature: "sso" }),
    },
    { name: "an unknown customer", body: json({ customer_id: "cus_nobody", feature: "sso" }) },
    { name: "an unknown consumer key", body: json({ api_key: "ak_test_nothing", feature: "sso" }) },
    { name: "neither customer nor key", body: json({ feature: "sso" }) },
    { name: "a missing feature (validation)", body: (s) => JSON.stringify({ customer_id: s.customerId }) },
    {
      name: "wrong types and a negative quantity",
      body: json({ customer_id: 5, feature: ["x"], quantity: -1, consume: "yes" }),
    },
    {
      name: "an unknown property (removed)",
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso", extra: { deep: true } }),
    },
    { name: "an array body", body: json([1, 2]) },
    { name: "a string body", body: json("sso") },
    { name: "invalid JSON", body: () => '{"feature": ' },
    { name: "an empty body", body: () => "" },
    { name: "a poisoned prototype", body: () => '{"feature":"sso","__proto__":{"x":1}}' },
    {
      name: "no Authorization header (401)",
      headers: () => ({ "x-tenant-id": f.tenant.id, "content-type": "application/json" }),
      body: json({ feature: "sso" }),
    },
    {
      name: "an unknown key (401)",
      headers: () => ({ ...authed(sides[0] as Side, "sk_test_unknown"), "x-tenant-id": f.tenant.id }),
      body: json({ feature: "sso" }),
    },
    {
      name: "no X-Tenant-Id (400)",
      headers: (s) => ({ authorization: `Bearer ${s.key}`, "content-type": "application/json" }),
      body: json({ feature: "sso" }),
    },
    {
      name: "another tenant's id (401)",
      headers: (s) => ({ ...authed(s), "x-tenant-id": "ten_someone_else" }),
      body: json({ feature: "sso" }),
    },
    {
      name: "a key without the scope (403)",
      headers: (s) => authed(s, s.narrowKey),
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }),
    },
    {
      name: "a key past its rate limit (429)",
      headers: (s) => authed(s, s.limitedKey),
      before: (s) => [JSON.stringify({ customer_id: s.customerId, feature: "sso" })],
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }),
    },
    {
      name: "a charset in the content type",
      headers: (s) => ({ ...authed(s), "content-type": "application/json; charset=utf-8" }),
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }),
    },
    {
      name: "a query string (left to Fastify)",
      path: "/v1/canAccess?debug=1",
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }),
      fast: false,
    },
    {
      name: "another content type (left to Fastify)",
      headers: (s) => ({ ...authed(s), "content-type": "text/plain" }),
      body: (s) => JSON.stringify({ customer_id: s.customerId, feature: "sso" }),
      fast: false,
    },
  ];

  it.each(cases)("answers $name exactly as the Fastify route", async (testCase) => {
    const [viaFastify, viaSocket] = sides as [Side, Side];
    const path = testCase.path ?? "/v1/canAccess";
    const headersOf = (side: Side) => testCase.headers?.(side) ?? authed(side);

    for (const body of testCase.before?.(viaFastify) ?? []) {
      await t.app.inject({ method: "POST", url: path, headers: headersOf(viaFastify), payload: body });
    }
    const expected = await t.app.inject({
      method: "POST",
      url: path,
      headers: headersOf(viaFastify),
      payload: testCase.body(viaFastify),
    });

    for (const body of testCase.before?.(viaSocket) ?? []) {
      await fetch(`${baseUrl}${path}`, { method: "POST", headers: headersOf(viaSocket), body });
    }
    const handledBefore = fastPathStats.handled;
    const actual = await fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: headersOf(viaSocket),
      body: testCase.body(viaSocket),
    });
    expect(fastPathStats.handled - handledBefore).toBe(testCase.fast === false ? 0 : 1);

    expect(actual.status).toBe(expected.statusCode);
    const sameIds = (text: string) =>
      viaSocket.ids.reduce((out, id, i) => out.replaceAll(id, viaFastify.ids[i] as string), text);
    const withoutRequestId = (text: string, requestId: string) => text.replaceAll(requestId, "<request>");
    const actualText = withoutRequestId(
      sameIds(await actual.text()),
      actual.headers.get("x-request-id") ?? "",
    );
    const expectedText = withoutRequestId(expected.body, String(expected.headers["x-request-id"]));
    expect(actualText).toBe(expectedText);
    for (const name of COMPARED_HEADERS) {
      expect([name, actual.headers.get(name) ?? undefined]).toEqual([
        name,
        expected.headers[name] === undefined ? undefined : String(expected.headers[name]),
      ]);
    }
    expect(actual.headers.get("x-request-id")).toMatch(/^req_/);
    const remaining = actual.headers.get("x-ratelimit-remaining");
    expect(remaining === null).toBe(expected.headers["x-ratelimit-remaining"] === undefined);
  });

  it("keeps a gateway's X-Request-Id", async () => {
    const side = sides[1] as Side;
    const response = await fetch(`${baseUrl}/v1/canAccess`, {
      method: "POST",
      headers: { ...authed(side), "x-request-id": "trace-42" },
      body: JSON.stringify({ customer_id: side.customerId, feature: "sso" }),
    });
    expect(response.headers.get("x-request-id")).toBe("trace-42");
  });

  it("counts its requests in the HTTP metrics like any route", async () => {
    const side = sides[1] as Side;
    const metrics = async () => (await t.app.inject({ method: "GET", url: "/metrics" })).body;
    const count = (text: string) =>
      Number(
        /aforo_http_request_duration_seconds_count\{method="POST",route="\/v1\/canAccess",status_code="200"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
    const before = count(await metrics());
    await fetch(`${baseUrl}/v1/canAccess`, {
      method: "POST",
      headers: authed(side),
      body: JSON.stringify({ customer_id: side.customerId, feature: "sso" }),
    });
    expect(count(await metrics())).toBe(before + 1);
  });
});
