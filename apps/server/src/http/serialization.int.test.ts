import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../testing/test-app.ts";
import { compileEverySerializer } from "./serialization.ts";

describe("response serializers", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("compiles every route's response serializer on demand, and each one compiles", async () => {
    const tenant = await t.createTenant();
    // A route that has answered uses its compiled serializer, which drops undeclared fields.
    const customers = await t.request("GET", "/v1/customers", { key: tenant.liveKey, tenant: tenant.id });
    expect(customers.statusCode, customers.body).toBe(200);
    expect(compileEverySerializer(t.app)).toBeGreaterThan(100);
    expect(compileEverySerializer(t.app)).toBe(0);
  });
});
