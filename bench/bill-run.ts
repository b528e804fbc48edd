/**
 * Times one bill run: N customers, each subscribed to a monthly GRADUATED plan, each with M usage
 * events in the period that just ended; then one bill run invoices all N periods.
 *
 *   node bench/bill-run.ts [--customers 1000] [--events 100]
 *
 * Embedded database (PGlite, a temporary folder) unless DATABASE_URL is set. Prints the seeding
 * time, the run's duration, invoices created, and the peak RSS sampled during the run.
 * The goal (API.md): 10,000 customers × 100 events in under 30 s, under 1 GiB.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { buildApp } from "../apps/server/src/app.ts";
import { ManualClock } from "../apps/server/src/clock.ts";
import { createContext } from "../apps/server/src/context.ts";
import { openDatabase } from "../apps/server/src/db/database.ts";
import { migrateToLatest } from "../apps/server/src/db/migrate.ts";
import { testConfig } from "../apps/server/src/testing/test-app.ts";

const { values } = parseArgs({
  options: { customers: { type: "string", default: "1000" }, events: { type: "string", default: "100" } },
});
const customers = Number(values.customers);
const eventsPerCustomer = Number(values.events);

const PERIOD_START = "2026-10-01T00:00:00.000Z";
const clock = new ManualClock("2026-11-01T00:05:00Z");
const dataDir = await mkdtemp(path.join(tmpdir(), "aforo-bench-bill-run-"));
const databaseUrl = process.env.DATABASE_URL || undefined;
// On PostgreSQL the bench works in a schema of its own, dropped at the end: never in a shared one.
const schema = databaseUrl ? `bench_${randomBytes(6).toString("hex")}` : undefined;
if (databaseUrl && schema) await adminQuery(databaseUrl, `create schema ${schema}`);
const database = await openDatabase({ databaseUrl, dataDir, poolSize: 10, ...(schema ? { schema } : {}) });
await migrateToLatest(database.db);
const context = await createContext(testConfig({ databaseUrl }), database, clock);
const app = await buildApp(context);
await app.ready();

let requests = 0;
async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(text);
  await client.end();
}

async function post(url: string, body: unknown, auth: { key: string; tenant?: string }) {
  // Seeding is not what is measured: move the (manual) clock on so the rate limiter never refuses.
  requests += 1;
  if (requests % 500 === 0) clock.advance(61_000);
  const headers: Record<string, string> = {
    authorization: `Bearer ${auth.key}`,
    "content-type": "application/json",
  };
  if (auth.tenant) headers["x-tenant-id"] = auth.tenant;
  const response = await app.inject({ method: "POST", url, headers, payload: JSON.stringify(body) });
  if (response.statusCode !== 201)
    throw new Error(`POST ${url} answered ${response.statusCode}: ${response.body}`);
  return response.json();
}

const seedStartedMs = Date.now();
const tenant = await post(
  "/v1/tenants",
  { name: `Bench ${Date.now()}` },
  { key: testConfig().operatorKey ?? "" },
);
const as = { key: tenant.api_keys.test as string, tenant: tenant.id as string };
const scope = { tenantId: tenant.id as string, mode: "test" as const };
await post(
  "/v1/billable_units",
  { key: "api_calls", name: "API calls", unit_label: "calls", aggregation: "COUNT" },
  as,
);
const plan = await post(
  "/v1/rate_plans",
  {
    name: "Graduated",
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    items: [
      {
        model: "GRADUATED",
        billable_unit: "api_calls",
        tiers: [
          { up_to: "10", unit_price: "0.01" },
          { up_to: "50", unit_price: "0.008" },
          { up_to: null, unit_price: "0.005" },
        ],
      },
    ],
    entitlements: [],
  },
  as,
);
const offering = await post(
  "/v1/offerings",
  { name: "Pay as you go", rate_plan_ids: [plan.id], billing_mode: "POSTPAID", status: "PUBLISHED" },
  as,
);
const customerIds: string[] = [];
for (let index = 0; index < customers; index += 1) {
  const customer = await post(
    "/v1/customers",
    { name: `Customer ${index}`, email: `c${index}@example.com`, currency: "USD" },
    as,
  );
  await post(
    "/v1/subscriptions",
    { customer_id: customer.id, offering_id: offering.id, start_at: PERIOD_START },
    as,
  );
  customerIds.push(customer.id);
}
const periodMs = Date.parse("2026-11-01T00:00:00Z") - Date.parse(PERIOD_START);
for (let first = 0; first < customerIds.length; first += 10) {
  const batch = customerIds.slice(first, first + 10).flatMap((customerId) =>
    Array.from({ length: eventsPerCustomer }, (_, index) => ({
      metric_id: "api_calls",
      customer_id: customerId,
      timestamp: new Date(
        Date.parse(PERIOD_START) + Math.floor(((index + 0.5) / eventsPerCustomer) * periodMs),
      ).toISOString(),
      idempotency_key: `${customerId}-${index}`,
    })),
  );
  const results = await context.metering.ingest(scope, batch, "batch");
  const rejected = results.find((result) => !result.ok);
  if (rejected && !rejected.ok) throw rejected.error;
}
await context.metering.drain();
const seedMs = Date.now() - seedStartedMs;

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);
// How much of the run is invoicing's pipeline (modules/billing) rather than the run's own walk.
let invoicingMs = 0;
const invoicing = context.billRuns.invoicing;
if (invoicing) {
  context.billRuns.invoicing = {
    invoicePeriod: async (...args) => {
      const startedMs = performance.now();
      try {
        return await invoicing.invoicePeriod(...args);
      } finally {
        invoicingMs += performance.now() - startedMs;
      }
    },
  };
}
const runStartedMs = Date.now();
const run = await context.billRuns.startRun(scope, { execution: "inline" });
const runMs = Date.now() - runStartedMs;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
const totals = await context.billRuns.totals(scope, run.id);

const report = {
  database: database.kind,
  customers,
  events_per_customer: eventsPerCustomer,
  seed_seconds: Number((seedMs / 1000).toFixed(1)),
  run: { id: run.id, status: run.status, error: run.error, invoices_created: run.invoicesCreated },
  run_seconds: Number((runMs / 1000).toFixed(2)),
  invoicing_seconds: Number((invoicingMs / 1000).toFixed(2)),
  invoices_per_second: Math.round(run.invoicesCreated / (runMs / 1000)),
  peak_rss_mib: Math.round(peakRss / 1024 / 1024),
  totals: totals.map((total) => ({ ...total, totalMinor: String(total.totalMinor) })),
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);

await app.close();
await context.stop();
await database.close();
await rm(dataDir, { recursive: true, force: true });
if (databaseUrl && schema) await adminQuery(databaseUrl, `drop schema ${schema} cascade`);
if (run.status !== "COMPLETED") process.exitCode = 1;
