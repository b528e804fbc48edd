/**
 * Times one bill run: N customers, each subscribed to a monthly GRADUATED plan, each with M usage
 * events in the period that just ended; then one bill run invoices all N periods.
 *
 *   node bench/bill-run.ts [--customers 1000] [--events 100] [--per-invoice] [--queries] [--profile FILE]
 *
 * Embedded database (PGlite, a temporary folder) unless DATABASE_URL is set. This process seeds
 * the data and closes it; a fresh process then starts the server's context on it (as a restarted
 * server would), runs the bill run and a second one (which must create nothing), so the memory
 * figures are those of a server doing a bill run, not of the seeding. Prints the seeding time,
 * the run's duration and CPU time, invoices created, the RSS and heap before the run and their
 * peaks during it, and the second run's duration.
 *
 * `--per-invoice` hides invoicing's set-based `invoicePeriods` from the run, so it invoices one
 * period at a time (the path previews and single invoices take): the two can be compared on the
 * same machine. `--queries` (PostgreSQL) counts the run's statements and prints the costliest;
 * `--profile` writes a CPU profile of the run alone (open it in Chrome's DevTools).
 * The goal (BENCHMARKS.md): 1 M events × 10,000 customers rated and invoiced in <= 10 s, <= 1 GiB.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { buildApp } from "../apps/server/src/app.ts";
import { ManualClock } from "../apps/server/src/clock.ts";
import { createContext } from "../apps/server/src/context.ts";
import { openDatabase } from "../apps/server/src/db/database.ts";
import { migrateToLatest } from "../apps/server/src/db/migrate.ts";
import type { TenantScope } from "../apps/server/src/http/route-config.ts";
import { testConfig } from "../apps/server/src/testing/test-app.ts";

const { values } = parseArgs({
  options: {
    customers: { type: "string", default: "1000" },
    events: { type: "string", default: "100" },
    "per-invoice": { type: "boolean", default: false },
    queries: { type: "boolean", default: false },
    profile: { type: "string" },
    /** Internal: the measuring process's instructions (JSON). */
    measure: { type: "string" },
  },
});

const PERIOD_START = "2026-10-01T00:00:00.000Z";

/** What the seeding process hands the measuring one. */
interface Handoff {
  databaseUrl: string | undefined;
  schema: string | undefined;
  dataDir: string;
  /** The (manual) clock where seeding left it. */
  now: string;
  scope: TenantScope;
  perInvoice: boolean;
  queries: boolean;
  profile: string | undefined;
}

if (values.measure) {
  const report = await measure(JSON.parse(values.measure) as Handoff);
  process.stdout.write(JSON.stringify(report));
  // Background workers of the context may hold the event loop; the report is out.
  process.exit(0);
} else {
  await main();
}

async function main(): Promise<void> {
  const customers = Number(values.customers);
  const eventsPerCustomer = Number(values.events);
  const clock = new ManualClock("2026-11-01T00:05:00Z");
  const dataDir = await mkdtemp(path.join(tmpdir(), "aforo-bench-bill-run-"));
  const databaseUrl = process.env.DATABASE_URL || undefined;
  // On PostgreSQL the bench works in a schema of its own, dropped at the end: never in a shared one.
  const schema = databaseUrl ? `bench_${randomBytes(6).toString("hex")}` : undefined;
  if (databaseUrl && schema) await adminQuery(databaseUrl, `create schema ${schema}`);
  let exitCode = 0;
  try {
    const seedStartedMs = Date.now();
    const scope = await seed({ databaseUrl, schema, dataDir, clock, customers, eventsPerCustomer });
    const seedMs = Date.now() - seedStartedMs;
    const handoff: Handoff = {
      databaseUrl,
      schema,
      dataDir,
      now: clock.now().toISOString(),
      scope,
      perInvoice: values["per-invoice"] ?? false,
      queries: values.queries ?? false,
      profile: values.profile,
    };
    // BENCH_KEEP=1 keeps the seeded data: `node bench/bill-run.ts --measure '<handoff>'` measures again.
    if (process.env.BENCH_KEEP) process.stderr.write(`handoff: ${JSON.stringify(handoff)}\n`);
    const measured = await inChild(handoff);
    const report = {
      database: databaseUrl ? "postgres" : "embedded",
      customers,
      events_per_customer: eventsPerCustomer,
      seed_seconds: Number((seedMs / 1000).toFixed(1)),
      ...measured,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    const run = measured.run as { status: string };
    const second = measured.second_run as { status: string; invoices_created: number };
    if (run.status !== "COMPLETED" || second.status !== "COMPLETED" || second.invoices_created !== 0) {
      exitCode = 1;
    }
  } finally {
    if (!process.env.BENCH_KEEP) {
      await rm(dataDir, { recursive: true, force: true });
      if (databaseUrl && schema) await adminQuery(databaseUrl, `drop schema ${schema} cascade`);
    }
  }
  process.exitCode = exitCode;
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(text);
  await client.end();
}

/** The tenant, its plan and offering, N customers with a subscription each, M events each. */
async function seed(options: {
  databaseUrl: string | undefined;
  schema: string | undefined;
  dataDir: string;
  clock: ManualClock;
  customers: number;
  eventsPerCustomer: number;
}): Promise<TenantScope> {
  const { databaseUrl, schema, dataDir, clock, customers, eventsPerCustomer } = options;
  const database = await openDatabase({ databaseUrl, dataDir, poolSize: 10, ...(schema ? { schema } : {}) });
  await migrateToLatest(database.db);
  // No background work while seeding: the daily bill run (a real-time cron at 00:05 UTC) must not
  // invoice the periods before the measured run does.
  const context = await createContext(testConfig({ databaseUrl }), database, clock, { background: false });
  const app = await buildApp(context);
  await app.ready();

  let requests = 0;
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

  const tenant = await post(
    "/v1/tenants",
    { name: `Bench ${Date.now()}` },
    { key: testConfig().operatorKey ?? "" },
  );
  const as = { key: tenant.api_keys.test as string, tenant: tenant.id as string };
  const scope: TenantScope = { tenantId: tenant.id as string, mode: "test" };
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
  // Customers and subscriptions through the services the routes call (the HTTP layer is not what
  // is measured, and 100,000 customers through it take long), several at a time on PostgreSQL.
  const lanes = databaseUrl ? 8 : 1;
  const customerIds: string[] = Array.from({ length: customers }, () => "");
  let nextCustomer = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let index = nextCustomer++; index < customers; index = nextCustomer++) {
        const customer = await context.customers.create(scope, {
          name: `Customer ${index}`,
          email: `c${index}@example.com`,
          currency: "USD",
        });
        await context.subscriptions.create(scope, {
          customerId: customer.id,
          offeringId: offering.id,
          startAt: new Date(PERIOD_START),
        });
        customerIds[index] = customer.id;
      }
    }),
  );
  const periodMs = Date.parse("2026-11-01T00:00:00Z") - Date.parse(PERIOD_START);
  const perBatch = Math.max(1, Math.floor(1_000 / Math.max(1, eventsPerCustomer)));
  let nextBatch = 0;
  await Promise.all(
    Array.from({ length: databaseUrl ? 4 : 1 }, async () => {
      for (let first = nextBatch; first < customerIds.length; first = nextBatch) {
        nextBatch += perBatch;
        const batch = customerIds.slice(first, first + perBatch).flatMap((customerId) =>
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
    }),
  );
  await context.metering.drain();
  // Production's minute ticker has moved every subscription on by the time the daily run starts.
  await context.subscriptions.tick();
  await app.close();
  await context.stop();
  await database.close();
  return scope;
}

/** Runs the measuring half in a fresh process and returns its report. */
function inChild(handoff: Handoff): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", import.meta.filename, "--measure", JSON.stringify(handoff)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`the measuring process exited with ${code}`));
      else resolve(JSON.parse(output) as Record<string, unknown>);
    });
  });
}

/** The measuring process: the server's context on the seeded data, then the bill runs. */
async function measure(handoff: Handoff): Promise<Record<string, unknown>> {
  const { databaseUrl, schema, scope } = handoff;
  const startedMs = Date.now();
  const database = await openDatabase({
    databaseUrl,
    dataDir: handoff.dataDir,
    poolSize: 10,
    ...(schema ? { schema } : {}),
  });
  const context = await createContext(testConfig({ databaseUrl }), database, new ManualClock(handoff.now));
  const startMs = Date.now() - startedMs;

  // How much of the run is invoicing's pipeline (modules/billing) rather than the run's own walk.
  let invoicingMs = 0;
  async function timed<T>(task: () => Promise<T>): Promise<T> {
    const taskStartedMs = performance.now();
    try {
      return await task();
    } finally {
      invoicingMs += performance.now() - taskStartedMs;
    }
  }
  const invoicing = context.billRuns.invoicing;
  if (invoicing) {
    const invoicePeriods = invoicing.invoicePeriods?.bind(invoicing);
    const prepare = invoicing.prepareInvoicePeriods?.bind(invoicing);
    const setBased = !handoff.perInvoice;
    context.billRuns.invoicing = {
      invoicePeriod: (...args) => timed(() => invoicing.invoicePeriod(...args)),
      ...(invoicePeriods && setBased
        ? { invoicePeriods: (...args) => timed(() => invoicePeriods(...args)) }
        : {}),
      // Prepared chunks overlap the previous chunk's commit: invoicing_seconds may exceed the run.
      ...(prepare && setBased
        ? {
            prepareInvoicePeriods: async (...args) => {
              const prepared = await timed(() => prepare(...args));
              return { commit: () => timed(() => prepared.commit()) };
            },
          }
        : {}),
    };
  }

  const statements = new Map<string, { count: number; ms: number }>();
  let countStatements = false;
  if (handoff.queries && databaseUrl) {
    // Every statement goes through pg.Client#query (Kysely's dialect and the prepared ones alike).
    const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
    (pg.Client.prototype as { query: unknown }).query = function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args);
      const config = args[0] as string | { text?: string };
      const text = (typeof config === "string" ? config : (config?.text ?? "")).replace(/\s+/g, " ");
      if (!countStatements || !(result instanceof Promise)) return result;
      const statementStartedMs = performance.now();
      const done = () => {
        const key = text.slice(0, 90);
        const entry = statements.get(key) ?? { count: 0, ms: 0 };
        entry.count += 1;
        entry.ms += performance.now() - statementStartedMs;
        statements.set(key, entry);
      };
      result.then(done, done);
      return result;
    };
  }

  global.gc?.();
  const { rss: rssBefore, heapUsed: heapBefore, external: externalBefore } = process.memoryUsage();
  let peakRss = rssBefore;
  let peakHeap = heapBefore;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapUsed);
  }, 25);
  const profiler = handoff.profile ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
  }
  countStatements = true;
  const runStartedMs = Date.now();
  const cpuBefore = process.cpuUsage();
  const run = await context.billRuns.startRun(scope, { execution: "inline" });
  const runMs = Date.now() - runStartedMs;
  const cpu = process.cpuUsage(cpuBefore);
  countStatements = false;
  if (profiler && handoff.profile) {
    const { profile } = await profiler.post("Profiler.stop");
    await writeFile(handoff.profile, JSON.stringify(profile));
    profiler.disconnect();
  }
  clearInterval(sampler);
  const after = process.memoryUsage();
  peakRss = Math.max(peakRss, after.rss);
  peakHeap = Math.max(peakHeap, after.heapUsed);
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const totals = await context.billRuns.totals(scope, run.id);
  // A second run finds every period billed: it must create nothing.
  const againStartedMs = Date.now();
  const again = await context.billRuns.startRun(scope, { execution: "inline" });
  const againMs = Date.now() - againStartedMs;
  await context.stop();
  await database.close();

  const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
  return {
    path: context.billRuns.invoicing?.invoicePeriods ? "set-based" : "per-invoice",
    server_start_seconds: Number((startMs / 1000).toFixed(2)),
    run: { id: run.id, status: run.status, error: run.error, invoices_created: run.invoicesCreated },
    run_seconds: Number((runMs / 1000).toFixed(2)),
    run_cpu_seconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    invoicing_seconds: Number((invoicingMs / 1000).toFixed(2)),
    invoices_per_second: Math.round(run.invoicesCreated / (runMs / 1000)),
    rss_before_run_mib: mib(rssBefore),
    peak_rss_mib: mib(peakRss),
    heap_before_run_mib: mib(heapBefore),
    external_before_run_mib: mib(externalBefore),
    peak_heap_mib: mib(peakHeap),
    heap_after_run_mib: mib(heapAfter),
    second_run: {
      status: again.status,
      invoices_created: again.invoicesCreated,
      seconds: Number((againMs / 1000).toFixed(2)),
    },
    totals: totals.map((total) => ({ ...total, totalMinor: String(total.totalMinor) })),
    ...(handoff.queries
      ? {
          statements: [...statements.values()].reduce((sum, entry) => sum + entry.count, 0),
          costliest: [...statements]
            .sort(([, a], [, b]) => b.ms - a.ms)
            .slice(0, 12)
            .map(([text, entry]) => ({ text, count: entry.count, ms: Math.round(entry.ms) })),
        }
      : {}),
  };
}
