import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../clock.ts";
import { type AppContext, createContext } from "../../context.ts";
import { type DatabaseHandle, openDatabase } from "../../db/database.ts";
import { migrateToLatest } from "../../db/migrate.ts";
import { testConfig, testDatabaseKind } from "../../testing/test-app.ts";
import type { Subscription } from "./domain/subscription.ts";

async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

// Two API processes on one PostgreSQL: the edge of one sees subscriptions the other changes.
describe.skipIf(testDatabaseKind() !== "postgres")("subscriptions across processes", () => {
  const databaseUrl = process.env.DATABASE_URL ?? "";
  const schema = `test_${randomBytes(6).toString("hex")}`;
  const handles: DatabaseHandle[] = [];
  let first: AppContext;
  let second: AppContext;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    for (let i = 0; i < 2; i++)
      handles.push(await openDatabase({ databaseUrl, dataDir: "", schema, poolSize: 3 }));
    const [a, b] = handles as [DatabaseHandle, DatabaseHandle];
    await migrateToLatest(a.db);
    const clock = new ManualClock();
    first = await createContext(testConfig(), a, clock);
    second = await createContext(testConfig(), b, clock);
  });
  afterAll(async () => {
    await first.stop();
    await second.stop();
    for (const handle of handles) await handle.close();
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  });

  it("tells another process's directory and listeners of every change", async () => {
    const { tenant } = await first.tenants.create({ name: "Cross Process Subscriptions" });
    const scope = { tenantId: tenant.id, mode: "live" as const };
    const customer = await first.customers.create(scope, {
      name: "Ada",
      email: "ada@example.com",
      currency: "USD",
    });
    const plan = await first.pricing.createRatePlan(scope, {
      name: "Pro",
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items: [{ model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" }],
    });
    const offering = await first.pricing.createOffering(scope, {
      name: "Pro",
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
    const heard: Subscription[] = [];
    second.subscriptions.onChange((subscription) => heard.push(subscription));

    const subscription = await first.subscriptions.create(scope, {
      customerId: customer.id,
      offeringId: offering.id,
    });
    expect(
      await eventually(() => second.subscriptions.listForCustomerCached(scope, customer.id).length === 1),
    ).toBe(true);
    await first.subscriptions.cancel(scope, subscription.id);
    expect(
      await eventually(() => second.subscriptions.getCached(scope, subscription.id)?.status === "CANCELLED"),
    ).toBe(true);
    expect(heard.map((item) => item.status)).toEqual(["ACTIVE", "CANCELLED"]);
  });
});
