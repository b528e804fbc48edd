import { randomBytes } from "node:crypto";
import pg from "pg";
import { ManualClock } from "../clock.ts";
import { type AppContext, createContext } from "../context.ts";
import { type DatabaseHandle, openDatabase } from "../db/database.ts";
import { migrateToLatest } from "../db/migrate.ts";
import type { TenantScope } from "../http/route-config.ts";
import type { BillableUnit } from "../modules/catalog/domain/billable-unit.ts";
import type { CreateBillableUnitInput } from "../modules/catalog/service.ts";
import type { RatePlanInput } from "../modules/pricing/domain/rate-plan.ts";
import { testConfig } from "./test-app.ts";

export interface TwoProcesses {
  first: AppContext;
  second: AppContext;
  /** The clock both processes read. */
  clock: ManualClock;
  close(): Promise<void>;
}

/**
 * Two API processes on one PostgreSQL schema (PostgreSQL only): each context has its own pool and
 * LISTEN connection, so what one changes reaches the other only through NOTIFY, as in production.
 */
export async function twoProcesses(databaseUrl: string): Promise<TwoProcesses> {
  const schema = `test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const handles: DatabaseHandle[] = [];
  for (let i = 0; i < 2; i++)
    handles.push(await openDatabase({ databaseUrl, dataDir: "", schema, poolSize: 3 }));
  const [a, b] = handles as [DatabaseHandle, DatabaseHandle];
  await migrateToLatest(a.db);
  const clock = new ManualClock();
  const first = await createContext(testConfig(), a, clock);
  const second = await createContext(testConfig(), b, clock);
  return {
    first,
    second,
    clock,
    close: async () => {
      await first.stop();
      await second.stop();
      for (const handle of handles) await handle.close();
      const cleanup = new pg.Client({ connectionString: databaseUrl });
      await cleanup.connect();
      await cleanup.query(`drop schema ${schema} cascade`);
      await cleanup.end();
    },
  };
}

/** Polls until `check` holds (a NOTIFY has arrived) or the time is up. */
export async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

/**
 * A new tenant (live mode) with `units`, one USD customer and a published monthly offering of one
 * plan holding `items`, made through `context`'s services.
 */
export async function tenantWithOffering(
  context: AppContext,
  name: string,
  items: RatePlanInput["items"],
  units: readonly CreateBillableUnitInput[] = [],
) {
  const { tenant } = await context.tenants.create({ name });
  const scope: TenantScope = { tenantId: tenant.id, mode: "live" };
  const created: BillableUnit[] = [];
  for (const unit of units) created.push(await context.catalog.createBillableUnit(scope, unit));
  const customer = await context.customers.create(scope, {
    name: "Ada",
    email: "ada@example.com",
    currency: "USD",
  });
  const plan = await context.pricing.createRatePlan(scope, {
    name: "Plan",
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    items,
  });
  const offering = await context.pricing.createOffering(scope, {
    name: "Offering",
    rate_plan_ids: [plan.id],
    billing_mode: "POSTPAID",
    status: "PUBLISHED",
  });
  return { scope, customer, offering, units: created };
}
