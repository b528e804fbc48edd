import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../testing/test-app.ts";
import { routesOf } from "./route-registry.ts";

/** JSON values of every shape, including deep nesting, huge numbers and odd strings. */
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(
    fc.constantFrom(
      "name",
      "key",
      "mode",
      "type",
      "status",
      "items",
      "quantity",
      "customer_id",
      "metric_id",
      "currency",
      "amount",
      "tiers",
      "scopes",
    ),
    fc.jsonValue({ maxDepth: 3 }),
  ),
);
const rawBody = fc.oneof(
  jsonBody.map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 200 }),
  fc.constantFrom("{", "[1,", '{"a":}', "null", "\u0000", "{}".repeat(10)),
);

describe("every POST route under random bodies", () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
  });
  afterAll(() => t.close());

  it("answers a 2xx or a 4xx problem document, never a 5xx", async () => {
    const routes = routesOf(t.app).filter((route) => route.method === "POST" && route.url.startsWith("/v1/"));
    expect(routes.length).toBeGreaterThan(3);
    const operatorRoutes = new Set(["/v1/tenants"]);
    for (const route of routes) {
      const url = route.url.replace(/:(\w+)/g, (_match, name: string) =>
        name === "id" ? "prod_01jzzzzzzzzzzzzzzzzzzzzzzz" : "x1",
      );
      await fc.assert(
        fc.asyncProperty(rawBody, async (body) => {
          const key = operatorRoutes.has(route.url) ? t.operatorKey : tenant.testKey;
          const response = await t.request("POST", url, {
            key,
            tenant: tenant.id,
            body,
            headers: { "content-type": "application/json" },
          });
          if (response.statusCode >= 500)
            throw new Error(`${route.url} answered ${response.statusCode}: ${response.body}`);
          if (response.statusCode >= 400)
            expect(response.headers["content-type"]).toContain("application/problem+json");
        }),
        { numRuns: 40 },
      );
    }
  }, 120_000);
});
