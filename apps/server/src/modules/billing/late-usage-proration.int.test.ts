import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";
import type { Invoice } from "./domain/invoice.ts";

type Method = "GET" | "POST";
type Body = Record<string, unknown>;
const at = (iso: string) => new Date(iso);
const NOV = { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
const DEC = { start: at("2026-12-01T00:00:00Z"), end: at("2027-01-01T00:00:00Z") };
const JAN = { start: at("2027-01-01T00:00:00Z"), end: at("2027-02-01T00:00:00Z") };

/** Issue 6: late events become adjustments (never dropped, never twice); plan changes prorate. */
describe("late usage adjustments and proration", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let scope: TenantScope;
  let counter = 0;
  const as = (method: Method, url: string, body?: unknown) =>
    t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });

  async function created(url: string, body: unknown) {
    const response = await as("POST", url, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  async function offering(items: Body[]): Promise<string> {
    counter += 1;
    const plan = await created("/v1/rate_plans", {
      name: `Plan ${counter}`,
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items,
    });
    const body = await created("/v1/offerings", {
      name: `Offering ${counter}`,
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
    return body.id;
  }

  async function subscribe(offeringId: string): Promise<{ subscriptionId: string; customerId: string }> {
    counter += 1;
    const customer = await created("/v1/customers", {
      name: `Customer ${counter}`,
      email: `c${counter}@example.com`,
      currency: "USD",
    });
    const subscription = await created("/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offeringId,
      start_at: NOV.start.toISOString(),
    });
    return { subscriptionId: subscription.id, customerId: customer.id };
  }

  async function meter(customerId: string, unit: string, quantity: string, timestamp: string) {
    counter += 1;
    const response = await as("POST", "/v1/meter", {
      customer_id: customerId,
      metric_id: unit,
      quantity,
      timestamp,
      idempotency_key: `e-${counter}`,
    });
    expect(response.statusCode, response.body).toBe(202);
    const body = response.json();
    return { id: String(body.id ?? body.event_id), flags: (body.flags ?? []) as string[] };
  }

  async function invoice(subscriptionId: string, period: { start: Date; end: Date }) {
    const result = await t.context.billing.invoicePeriod(scope, subscriptionId, period, {});
    return { ...result, invoice: await t.context.billing.get(scope, result.invoiceId) };
  }

  const adjustmentLines = (invoice: Invoice) =>
    invoice.lines.filter((line) => line.description.startsWith("Adjustment for"));

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    scope = { tenantId: tenant.id, mode: "test" };
    t.clock.set("2026-11-05T00:00:00Z");
    await created("/v1/billable_units", {
      key: "calls",
      name: "calls",
      unit_label: "calls",
      aggregation: "SUM",
    });
    await created("/v1/billable_units", {
      key: "seats",
      name: "seats",
      unit_label: "seats",
      aggregation: "LATEST",
    });
  });
  afterAll(() => t.close());

  it("bills a late event after finalisation as one adjustment line on the next invoice, its id in the trace, never twice", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const offeringId = await offering([{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.10" }]);
    const { subscriptionId, customerId } = await subscribe(offeringId);
    await meter(customerId, "calls", "100", "2026-11-10T00:00:00Z");
    t.clock.set("2026-12-01T00:00:01Z");
    const november = await invoice(subscriptionId, NOV);
    expect(november.invoice.status).toBe("OPEN");
    expect(november.invoice.total).toBe(1000n);

    // The period is final: an event for it now is kept for reconciliation, not counted.
    const late = await meter(customerId, "calls", "30", "2026-11-20T00:00:00Z");
    expect(late.flags).toEqual(expect.arrayContaining(["LATE", "RECONCILIATION"]));

    t.clock.set("2027-01-01T00:00:01Z");
    await meter(customerId, "calls", "5", "2026-12-10T00:00:00Z");
    const december = await invoice(subscriptionId, DEC);
    expect(december.created).toBe(true);
    const [adjustment, ...others] = adjustmentLines(december.invoice);
    expect(others).toEqual([]);
    expect(adjustment).toMatchObject({
      type: "USAGE_FEE",
      billableUnit: "calls",
      quantity: "30",
      amountMinor: 300n,
      periodStart: NOV.start,
      periodEnd: NOV.end,
    });
    expect(adjustment?.description).toContain("Adjustment for 2026-11-01 – 2026-12-01");
    // 5 calls in December (0.50) + the adjustment (3.00).
    expect(december.invoice.total).toBe(350n);
    expect(
      december.invoice.trace.some(
        (entry) => entry.stage === "aggregate" && entry.amounts["calls.late.event_ids"] === late.id,
      ),
    ).toBe(true);
    expect(await t.context.billRuns.pendingAdjustments(scope, subscriptionId)).toEqual([]);

    // Invoicing December again returns the same invoice; January and a bill run adjust nothing more.
    const again = await invoice(subscriptionId, DEC);
    expect(again).toMatchObject({ invoiceId: december.invoiceId, created: false });
    expect(adjustmentLines(again.invoice)).toHaveLength(1);
    t.clock.set("2027-02-01T00:00:01Z");
    const run = await as("POST", "/v1/bill_runs", {});
    expect(run.statusCode, run.body).toBe(201);
    const all = await t.context.billing.list(scope, { subscriptionId }, { limit: 100 });
    expect(all.data.map((each) => each.periodStart.toISOString()).sort()).toEqual(
      [NOV.start, DEC.start, JAN.start].map((start) => start.toISOString()),
    );
    expect(all.data.flatMap(adjustmentLines)).toHaveLength(1);
  });

  it("credits a late event that lowers a closed period's amount with a credit note on its invoice", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const offeringId = await offering([{ model: "PER_UNIT", billable_unit: "seats", unit_price: "1.00" }]);
    const { subscriptionId, customerId } = await subscribe(offeringId);
    await meter(customerId, "seats", "10", "2026-11-10T00:00:00Z");
    t.clock.set("2026-12-01T00:00:01Z");
    const november = await invoice(subscriptionId, NOV);
    expect(november.invoice.total).toBe(1000n);
    // LATEST: a later reading of 4 seats lowers November to 4.00.
    const late = await meter(customerId, "seats", "4", "2026-11-25T00:00:00Z");
    expect(late.flags).toContain("RECONCILIATION");

    t.clock.set("2027-01-01T00:00:01Z");
    const december = await invoice(subscriptionId, DEC);
    expect(adjustmentLines(december.invoice)).toEqual([]);
    expect(december.invoice.lines.every((line) => line.amountMinor >= 0n)).toBe(true);
    expect(december.invoice.trace.some((entry) => entry.amounts["seats.late.event_ids"] === late.id)).toBe(
      true,
    );
    const notes = await t.context.billing.listCreditNotes(
      scope,
      { invoiceId: november.invoiceId },
      { limit: 10 },
    );
    expect(notes.data).toHaveLength(1);
    expect(notes.data[0]).toMatchObject({ amountMinor: 600n, reason: "late_usage_adjustment" });
    expect((await t.context.billing.get(scope, november.invoiceId)).amountDue).toBe(400n);
    // A retried December invoice credits nothing more.
    await invoice(subscriptionId, DEC);
    expect(
      (await t.context.billing.listCreditNotes(scope, { invoiceId: november.invoiceId }, { limit: 10 })).data,
    ).toHaveLength(1);
  });

  async function changeAtHalf(from: string, to: string) {
    t.clock.set("2026-11-05T00:00:00Z");
    const before = await offering([{ model: "FLAT_RATE", flat_amount: from, timing: "in_advance" }]);
    const after = await offering([{ model: "FLAT_RATE", flat_amount: to, timing: "in_advance" }]);
    const { subscriptionId } = await subscribe(before);
    // November has 30 days: at 16 November 00:00 exactly half of it remains.
    t.clock.set("2026-11-16T00:00:00Z");
    const changed = await as("POST", `/v1/subscriptions/${subscriptionId}/change_plan`, {
      offering_id: after,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    t.clock.set("2026-12-01T00:00:01Z");
    return (await invoice(subscriptionId, NOV)).invoice;
  }

  const summary = (invoice: Invoice) =>
    invoice.lines.map((line) => [line.type, line.amountMinor, line.periodStart.toISOString().slice(0, 10)]);

  it("prorates an upgrade at exactly half the period: −15.00 for the old plan, +45.00 for the new", async () => {
    const november = await changeAtHalf("30.00", "90.00");
    expect(summary(november)).toEqual([
      ["CHARGE", 9000n, "2026-12-01"],
      ["CHARGE", 3000n, "2026-11-01"],
      ["PRORATION", -1500n, "2026-11-16"],
      ["PRORATION", 4500n, "2026-11-16"],
    ]);
    const [credit, charge] = november.lines.filter((line) => line.type === "PRORATION");
    expect(credit).toMatchObject({ quantity: "0.5", amountDecimal: "-15" });
    expect(credit?.description).toMatch(/unused 0\.5 of Plan \d+ .*changed to Plan \d+/);
    expect(charge?.description).toMatch(/remaining 0\.5 of Plan \d+ .*changed from Plan \d+/);
    expect(november.total).toBe(15000n);
  });

  it("prorates a downgrade at exactly half the period: −45.00 for the old plan, +15.00 for the new", async () => {
    const november = await changeAtHalf("90.00", "30.00");
    expect(summary(november)).toEqual([
      ["CHARGE", 3000n, "2026-12-01"],
      ["CHARGE", 9000n, "2026-11-01"],
      ["PRORATION", -4500n, "2026-11-16"],
      ["PRORATION", 1500n, "2026-11-16"],
    ]);
    expect(november.total).toBe(9000n);
  });

  it("rounds each proration line once, half-up, from the exact share", async () => {
    t.clock.set("2026-11-05T00:00:00Z");
    const before = await offering([{ model: "FLAT_RATE", flat_amount: "10.00", timing: "in_arrears" }]);
    const after = await offering([{ model: "FLAT_RATE", flat_amount: "20.00", timing: "in_arrears" }]);
    const { subscriptionId } = await subscribe(before);
    // 2 of 30 days remain: 1/15 = 0.0666…; 10 × 1/15 = 0.666… → 0.67, 20 × 1/15 = 1.333… → 1.33.
    t.clock.set("2026-11-29T00:00:00Z");
    expect(
      (await as("POST", `/v1/subscriptions/${subscriptionId}/change_plan`, { offering_id: after }))
        .statusCode,
    ).toBe(200);
    t.clock.set("2026-12-01T00:00:01Z");
    const november = (await invoice(subscriptionId, NOV)).invoice;
    expect(summary(november)).toEqual([
      ["CHARGE", 1000n, "2026-11-01"],
      ["PRORATION", -67n, "2026-11-29"],
      ["PRORATION", 133n, "2026-11-29"],
    ]);
  });
});
