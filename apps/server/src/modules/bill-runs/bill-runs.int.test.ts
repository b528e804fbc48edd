import { newId } from "@aforo/core";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant, testDatabaseKind } from "../../testing/test-app.ts";
import type { BillingPeriod, PeriodInvoicing } from "../billing/ports.ts";

const NOW = "2026-11-28T10:00:00.000Z";
const MINUTE = 60_000;

interface Call {
  subscriptionId: string;
  start: string;
  end: string;
  billRunId: string | undefined;
}

/**
 * Stands in for invoicing (modules/billing) with the port's contract: idempotent per subscription
 * period. `gate` holds every call until opened (a long run).
 */
class FakeInvoicing implements PeriodInvoicing {
  readonly calls: Call[] = [];
  readonly #invoices = new Map<string, string>();
  gate: Promise<void> | undefined;
  /** Asked on every call: was the period already closed to usage when invoicing began? */
  closedAtCall: ((subscriptionId: string, period: BillingPeriod) => boolean) | undefined;
  readonly closedWhenCalled: boolean[] = [];

  async invoicePeriod(
    _scope: TenantScope,
    subscriptionId: string,
    period: BillingPeriod,
    options: { billRunId?: string },
  ) {
    await this.gate;
    if (this.closedAtCall) this.closedWhenCalled.push(this.closedAtCall(subscriptionId, period));
    this.calls.push({
      subscriptionId,
      start: period.start.toISOString(),
      end: period.end.toISOString(),
      billRunId: options.billRunId,
    });
    const key = `${subscriptionId} ${period.start.toISOString()}`;
    const existing = this.#invoices.get(key);
    if (existing) return { invoiceId: existing, created: false };
    const invoiceId = newId("invoice");
    this.#invoices.set(key, invoiceId);
    return { invoiceId, created: true };
  }

  invoiced(subscriptionId: string): string[] {
    return [...this.#invoices.keys()]
      .filter((key) => key.startsWith(`${subscriptionId} `))
      .map((key) => key.split(" ")[1] ?? "");
  }
}

interface Setup {
  tenant: TestTenant;
  scope: TenantScope;
  as: (method: "GET" | "POST", url: string, body?: unknown) => ReturnType<TestApp["request"]>;
  /** POSTs and expects 201. */
  created: (url: string, body: unknown) => Promise<{ id: string }>;
  customerId: string;
  subscriptionId: string;
}

type Created = (url: string, body: unknown) => Promise<{ id: string }>;

/** A COUNT unit `key`, a monthly plan of `item` on it, and a published offering of the plan. */
async function offeringOn(created: Created, key: string, item: Record<string, unknown>): Promise<string> {
  await created("/v1/billable_units", { key, name: key, unit_label: key, aggregation: "COUNT" });
  const plan = await created("/v1/rate_plans", {
    name: key,
    currency: "USD",
    billing_period: { interval: "month", count: 1 },
    items: [{ ...item, billable_unit: key }],
    entitlements: [],
  });
  const offering = await created("/v1/offerings", {
    name: key,
    rate_plan_ids: [plan.id],
    billing_mode: "POSTPAID",
    status: "PUBLISHED",
  });
  return offering.id;
}

/** A tenant with one customer on a monthly graduated plan since `startAt`. */
async function setupIn(t: TestApp, startAt = "2026-08-28T00:00:00Z"): Promise<Setup> {
  const tenant = await t.createTenant();
  const as: Setup["as"] = (method, url, body) =>
    t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });
  const created: Created = async (url, body) => {
    const response = await as("POST", url, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  };
  const offeringId = await offeringOn(created, "api_calls", {
    model: "GRADUATED",
    tiers: [
      { up_to: "1000", unit_price: "0.01" },
      { up_to: null, unit_price: "0.005" },
    ],
  });
  const customer = await created("/v1/customers", { name: "Ada", email: "ada@example.com", currency: "USD" });
  const subscription = await created("/v1/subscriptions", {
    customer_id: customer.id,
    offering_id: offeringId,
    start_at: startAt,
  });
  return {
    tenant,
    scope: { tenantId: tenant.id, mode: "test" },
    as,
    created,
    customerId: customer.id,
    subscriptionId: subscription.id,
  };
}

describe("bill runs", () => {
  let t: TestApp;
  const invoicing = new FakeInvoicing();
  const setup = () => setupIn(t);

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set(NOW);
    t.context.billRuns.invoicing = invoicing;
  });

  afterAll(async () => {
    await t.close();
  });

  it("invoices the three past periods of a subscription started three months ago in one run", async () => {
    const { as, subscriptionId } = await setup();
    const response = await as("POST", "/v1/bill_runs", {});
    expect(response.statusCode, response.body).toBe(201);
    const run = response.json();
    expect(run).toMatchObject({ object: "bill_run", status: "COMPLETED", as_of: NOW, invoices_created: 3 });
    expect(run.id).toMatch(/^br_/);
    expect(run.invoice_ids).toHaveLength(3);
    expect(invoicing.invoiced(subscriptionId)).toEqual([
      "2026-08-28T00:00:00.000Z",
      "2026-09-28T00:00:00.000Z",
      "2026-10-28T00:00:00.000Z",
    ]);
    const read = await as("GET", `/v1/bill_runs/${run.id}`);
    expect(read.json()).toEqual(run);
  });

  it("creates nothing new when run twice for the same periods, and asks invoicing only once per period", async () => {
    const { as, subscriptionId } = await setup();
    const first = (await as("POST", "/v1/bill_runs")).json();
    const second = await as("POST", "/v1/bill_runs", { as_of: NOW });
    expect(second.statusCode, second.body).toBe(201);
    expect(first.invoices_created).toBe(3);
    expect(second.json()).toMatchObject({ status: "COMPLETED", invoices_created: 0, invoice_ids: [] });
    expect(invoicing.calls.filter((call) => call.subscriptionId === subscriptionId)).toHaveLength(3);
    const list = (await as("GET", "/v1/bill_runs")).json();
    expect(list.data.map((run: { id: string }) => run.id)).toEqual([second.json().id, first.id]);
  });

  it("bills only the periods that ended by as_of", async () => {
    const { as, subscriptionId } = await setup();
    const run = (await as("POST", "/v1/bill_runs", { as_of: "2026-10-01T00:00:00Z" })).json();
    expect(run).toMatchObject({ status: "COMPLETED", invoices_created: 1 });
    expect(invoicing.invoiced(subscriptionId)).toEqual(["2026-08-28T00:00:00.000Z"]);
  });

  it("answers 409 to every POST made while a run is going, and 201 to exactly one", async () => {
    const { as } = await setup();
    let open = () => {};
    invoicing.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let settled = 0;
    const requests = Array.from({ length: 4 }, () =>
      as("POST", "/v1/bill_runs").then((response) => {
        settled += 1;
        return response;
      }),
    );
    for (let waited = 0; settled < 3 && waited < 5_000; waited += 10)
      await new Promise((r) => setTimeout(r, 10));
    invoicing.gate = undefined;
    open();
    const responses = await Promise.all(requests);
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([201, 409, 409, 409]);
    const conflict = responses.find((response) => response.statusCode === 409)?.json();
    expect(conflict.detail).toBe("A bill run is already running");
    expect(responses.find((response) => response.statusCode === 201)?.json().invoices_created).toBe(3);
  });

  it("takes over a run whose process died (stale heartbeat) and finishes the remaining periods once", async () => {
    const { as, scope, subscriptionId } = await setup();
    // The dead run had billed the first period before its process was killed.
    expect(
      (await as("POST", "/v1/bill_runs", { as_of: "2026-10-01T00:00:00Z" })).json().invoices_created,
    ).toBe(1);
    const deadId = newId("billRun");
    await t.database.db
      .insertInto("bill_runs")
      .values({
        id: deadId,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        status: "RUNNING",
        as_of: NOW,
        invoice_ids: "[]",
        heartbeat_at: t.clock.now(),
      })
      .execute();
    const refused = await as("POST", "/v1/bill_runs");
    expect(refused.statusCode).toBe(409);

    t.clock.advance(3 * MINUTE);
    try {
      const response = await as("POST", "/v1/bill_runs", { as_of: NOW });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toMatchObject({ status: "COMPLETED", invoices_created: 2 });
      const dead = (await as("GET", `/v1/bill_runs/${deadId}`)).json();
      expect(dead.status).toBe("FAILED");
      expect(dead.error).toMatch(/^abandoned/);
      expect(invoicing.invoiced(subscriptionId)).toHaveLength(3);
      expect(invoicing.calls.filter((call) => call.subscriptionId === subscriptionId)).toHaveLength(3);
    } finally {
      t.clock.set(NOW);
    }
  });

  it("finishes an interrupted run when its job is retried", async () => {
    const { scope, subscriptionId } = await setup();
    const id = newId("billRun");
    await t.database.db
      .insertInto("bill_runs")
      .values({
        id,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        status: "RUNNING",
        as_of: NOW,
        invoice_ids: "[]",
        heartbeat_at: t.clock.now(),
      })
      .execute();
    const run = await t.context.billRuns.resume(scope, id);
    expect(run).toMatchObject({ status: "COMPLETED", invoicesCreated: 3, subscriptionsProcessed: 1 });
    expect(invoicing.invoiced(subscriptionId)).toHaveLength(3);
    expect((await t.context.billRuns.resume(scope, id)).invoicesCreated).toBe(3);
  });

  it("runs a large tenant's bill run in the background through the job queue", async () => {
    const { scope, subscriptionId } = await setup();
    const started = await t.context.billRuns.startRun(scope, { execution: "queued" });
    expect(started.status).toBe("RUNNING");
    let run = started;
    for (let waited = 0; run.status === "RUNNING" && waited < 20_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      run = await t.context.billRuns.get(scope, started.id);
    }
    expect(run).toMatchObject({ status: "COMPLETED", invoicesCreated: 3 });
    expect(invoicing.invoiced(subscriptionId)).toHaveLength(3);
  });

  it("marks a run FAILED with the error when invoicing fails, and the next run bills what is left", async () => {
    const { as, subscriptionId } = await setup();
    const real = invoicing.invoicePeriod.bind(invoicing);
    let calls = 0;
    t.context.billRuns.invoicing = {
      invoicePeriod: async (...args) => {
        calls += 1;
        if (calls === 2) throw new Error("tax service unavailable");
        return real(...args);
      },
    };
    try {
      const failed = (await as("POST", "/v1/bill_runs")).json();
      expect(failed).toMatchObject({
        status: "FAILED",
        error: "tax service unavailable",
        invoices_created: 1,
      });
    } finally {
      t.context.billRuns.invoicing = invoicing;
    }
    expect((await as("POST", "/v1/bill_runs")).json()).toMatchObject({
      status: "COMPLETED",
      invoices_created: 2,
    });
    expect(invoicing.invoiced(subscriptionId)).toHaveLength(3);
  });

  it("refuses an as_of in the future (422) and hides other tenants' runs (404)", async () => {
    const { as } = await setup();
    const future = await as("POST", "/v1/bill_runs", { as_of: "2027-01-01T00:00:00Z" });
    expect(future.statusCode).toBe(422);
    expect(future.json().errors).toEqual([{ field: "as_of", message: "must not lie in the future" }]);
    const other = await setup();
    const run = (await other.as("POST", "/v1/bill_runs")).json();
    expect((await as("GET", `/v1/bill_runs/${run.id}`)).statusCode).toBe(404);
  });

  it("closes each period to usage before invoicing reads it, and not the next one", async () => {
    const { as, scope, customerId, subscriptionId } = await setup();
    const unitId = t.context.catalog.resolveUnitCached(scope, "api_calls")?.id ?? "";
    const closed = (at: Date) => t.context.billRuns.closedPeriods.isClosed(scope, customerId, unitId, at);
    invoicing.closedWhenCalled.length = 0;
    invoicing.closedAtCall = (id, period) =>
      id === subscriptionId &&
      closed(period.start) &&
      closed(new Date(period.end.getTime() - 1)) &&
      !closed(period.end);
    try {
      expect((await as("POST", "/v1/bill_runs")).json().invoices_created).toBe(3);
    } finally {
      invoicing.closedAtCall = undefined;
    }
    expect(invoicing.closedWhenCalled).toEqual([true, true, true]);
  });

  it("keeps an event that arrives for an invoiced period for reconciliation and lists it as a pending adjustment, adjusted once", async () => {
    const { as, scope, customerId, subscriptionId } = await setup();
    expect((await as("POST", "/v1/bill_runs")).json().invoices_created).toBe(3);
    const late = await as("POST", "/v1/meter", {
      metric_id: "api_calls",
      customer_id: customerId,
      timestamp: "2026-11-20T12:00:00Z",
    });
    expect(late.statusCode, late.body).toBeLessThan(300);
    const lateId = late.json().id ?? late.json().event_id;
    expect(late.json().flags).toEqual(expect.arrayContaining(["LATE", "RECONCILIATION"]));
    const onTime = await as("POST", "/v1/meter", {
      metric_id: "api_calls",
      customer_id: customerId,
      timestamp: "2026-11-28T09:00:00Z",
    });
    expect(onTime.json().flags ?? []).not.toContain("RECONCILIATION");

    const pending = await t.context.billRuns.pendingAdjustments(scope, subscriptionId, {
      before: new Date("2026-11-28T00:00:00Z"),
    });
    expect(pending).toEqual([
      {
        periodStart: new Date("2026-10-28T00:00:00Z"),
        periodEnd: new Date("2026-11-28T00:00:00Z"),
        billableUnitId: expect.stringMatching(/^bu_/),
        eventIds: [lateId],
        eventCount: 1,
        valueSum: "1",
      },
    ]);
    expect(await t.context.billRuns.markAdjusted(scope, [lateId], "inv_next")).toEqual([lateId]);
    expect(await t.context.billRuns.markAdjusted(scope, [lateId], "inv_other")).toEqual([]);
    expect(await t.context.billRuns.pendingAdjustments(scope, subscriptionId)).toEqual([]);
  });
});

describe("bill runs with the real invoicing pipeline", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set(NOW);
  });

  afterAll(async () => {
    await t.close();
  });

  it("finalises one invoice per past period, once, however often it runs", async () => {
    const { as, subscriptionId } = await setupIn(t);
    const first = await as("POST", "/v1/bill_runs");
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ status: "COMPLETED", invoices_created: 3, error: null });
    expect((await as("POST", "/v1/bill_runs")).json()).toMatchObject({
      status: "COMPLETED",
      invoices_created: 0,
    });
    const invoices = (await as("GET", `/v1/invoices?subscription_id=${subscriptionId}`)).json();
    expect(invoices.data.map((invoice: { period_start: string }) => invoice.period_start).sort()).toEqual([
      "2026-08-28T00:00:00.000Z",
      "2026-09-28T00:00:00.000Z",
      "2026-10-28T00:00:00.000Z",
    ]);
    expect(new Set(invoices.data.map((invoice: { id: string }) => invoice.id))).toEqual(
      new Set(first.json().invoice_ids),
    );
  });

  it("closes the units of the plan a period is invoiced with, not of a plan changed to since", async () => {
    const { as, created, scope, customerId, subscriptionId } = await setupIn(t, "2026-10-28T00:00:00Z");
    const tokens = await offeringOn(created, "tokens", { model: "PER_UNIT", unit_price: "0.001" });
    // Changed after the period [10-28, 11-28) ended and before the run invoices it.
    const changed = await as("POST", `/v1/subscriptions/${subscriptionId}/change_plan`, {
      offering_id: tokens,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect((await as("POST", "/v1/bill_runs")).json()).toMatchObject({ invoices_created: 1 });

    const unitOf = (key: string) => t.context.catalog.resolveUnitCached(scope, key)?.id ?? "";
    const inPeriod = new Date("2026-11-20T12:00:00Z");
    const closed = t.context.billRuns.closedPeriods;
    expect(closed.isClosed(scope, customerId, unitOf("api_calls"), inPeriod)).toBe(true);
    expect(closed.isClosed(scope, customerId, unitOf("tokens"), inPeriod)).toBe(false);
    const recorded = await t.context.database.db
      .selectFrom("billed_periods")
      .select("billable_unit_ids")
      .where("subscription_id", "=", subscriptionId)
      .execute();
    expect(recorded.map((row) => row.billable_unit_ids)).toEqual([[unitOf("api_calls")]]);
  });

  // PostgreSQL only: a second connection holds the event's write while the run reads usage.
  it.skipIf(testDatabaseKind() !== "postgres")(
    "bills an event judged before the run closed its period but committed after the run began",
    async () => {
      const { as, scope, customerId, subscriptionId } = await setupIn(t, "2026-10-28T00:00:00Z");
      const meter = (timestamp: string) =>
        as("POST", "/v1/meter", { metric_id: "api_calls", customer_id: customerId, timestamp });
      expect((await meter("2026-11-20T12:00:00Z")).statusCode).toBe(202);

      // Lock the customer's rollup rows: the next event of that hour is judged (counted) and waits
      // in its commit. Before the fix the run read usage meanwhile, and closed the period after:
      // the event was counted, on no invoice, and never adjusted.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked = () => {};
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const holder = t.context.database.db.transaction().execute(async (trx) => {
        await sql`select 1 from usage_rollups where tenant_id = ${scope.tenantId} and customer_id = ${customerId} for update`.execute(
          trx,
        );
        locked();
        await held;
      });
      await isLocked;
      const waiting = meter("2026-11-20T12:30:00Z");
      await new Promise((resolve) => setTimeout(resolve, 100));
      const run = as("POST", "/v1/bill_runs");
      await new Promise((resolve) => setTimeout(resolve, 500));
      release();
      await holder;
      expect((await waiting).json()).toMatchObject({ status: "ACCEPTED" });
      expect((await run).json()).toMatchObject({ status: "COMPLETED", invoices_created: 1 });

      const [invoice] = (await as("GET", `/v1/invoices?subscription_id=${subscriptionId}`)).json().data;
      const usage = invoice.lines.filter((line: { type: string }) => line.type === "USAGE_FEE");
      expect(usage.map((line: { quantity: string }) => line.quantity)).toEqual(["2"]);
    },
  );
});
