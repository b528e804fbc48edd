import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../testing/test-app.ts";
import { routesOf } from "./route-registry.ts";

const committedPath = new URL("../../openapi.json", import.meta.url);

describe("OpenAPI document", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("is committed and matches the route schemas (run `npm run openapi` after changing a route)", async () => {
    const committed = JSON.parse(await readFile(committedPath, "utf8"));
    const generated = JSON.parse(JSON.stringify(t.app.swagger()));
    expect(generated).toEqual(committed);
  });

  it("documents every /v1 route", async () => {
    const document = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const response = await t.request("GET", "/openapi.json");
    expect(response.statusCode).toBe(200);
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map(
          (method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`,
        ),
      ),
    );
    const registered = routesOf(t.app).filter((route) => route.url.startsWith("/v1/"));
    expect(registered.length).toBeGreaterThan(5);
    const missing = registered.map((r) => `${r.method} ${r.url}`).filter((route) => !documented.has(route));
    expect(missing).toEqual([]);
  });

  it("serves the API reference at /docs", async () => {
    const entry = await t.request("GET", "/docs");
    expect([200, 301, 302]).toContain(entry.statusCode);
    const response = await t.request("GET", "/docs/");
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("/openapi.json");
    expect(response.headers["content-type"]).toContain("text/html");
  });
});
