import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

type Method = "GET" | "POST";
type Body = Record<string, unknown>;

interface InvoiceBody {
  id: string;
  number: string;
  status: string;
  period_start: string;
  period_end: string;
  lines: Body[];
  subtotal: number;
  discount_total: number;
  tax_total: number;
  total: number;
  amount_due: number;
}

/**
 * Lago-style scenarios through the public API only: units, plans, offerings, customers and
 * subscriptions are created over HTTP, events are metered as time passes (the test clock follows
 * them), and invoices come from `POST /v1/bill_runs` at the period's end. Every amount below is
 * worked out by hand in the comments, never by calling the pricing engine.
 *
 * Elsewhere already: monthly per model, promotion over two periods and minimum commitment
 * (billing-scenarios), late events and upgrade / downgrade proration (late-usage-proration),
 * re-running a bill run (bill-runs), gapless numbering under concurrency (invoices, billing-entities).
 */

/** A world of its own per scenario: a tenant (its own bill runs and invoice numbers) and helpers. */
async function worldIn(t: TestApp) {
  const tenant: TestTenant = await t.createTenant();
  let counter = 0;
  const as = (method: Method, url: string, body?: unknown) =>
    t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });
  const created = async (url: string, body: unknown) => {
    const response = await as("POST", url, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  };
  for (const key of ["calls", "volume"]) {
    await created("/v1/billable_units", { key, name: key, unit_label: key, aggregation: "SUM" });
  }

  /** A published offering over one plan; returns its id. */
  async function offering(plan: Body, options: { trialDays?: number } = {}): Promise<string> {
    counter += 1;
    const ratePlan = await created("/v1/rate_plans", { name: `Plan ${counter}`, currency: "USD", ...plan });
    const body = await created("/v1/offerings", {
      name: `Offering ${counter}`,
      rate_plan_ids: [ratePlan.id],
      billing_mode: "POSTPAID",
      trial_days: options.trialDays ?? 0,
      status: "PUBLISHED",
    });
    return body.id;
  }

  /** A new customer subscribed to the offering from `startAt` (the clock must be there already). */
  async function subscribe(offeringId: string, startAt: string) {
    counter += 1;
    const customer = await created("/v1/customers", {
      name: `Customer ${counter}`,
      email: `c${counter}@example.com`,
      currency: "USD",
    });
    const subscription = await created("/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offeringId,
      start_at: startAt,
    });
    return { customerId: customer.id as string, subscription };
  }

  /** Meters an event as it happens: the clock moves to its timestamp first (never backwards). */
  async function meter(customerId: string, unit: string, quantity: string, timestamp: string) {
    if (t.clock.now().getTime() < Date.parse(timestamp)) t.clock.set(timestamp);
    counter += 1;
    const response = await as("POST", "/v1/meter", {
      customer_id: customerId,
      metric_id: unit,
      quantity,
      timestamp,
      idempotency_key: `scenario-${counter}`,
    });
    expect(response.statusCode, response.body).toBe(202);
    // On time: counted in its period, not kept aside for reconciliation.
    expect(response.json().flags ?? []).not.toContain("RECONCILIATION");
  }

  async function billRun(): Promise<{ invoices_created: number; invoice_ids: string[] }> {
    const response = await as("POST", "/v1/bill_runs", {});
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ status: "COMPLETED", error: null });
    return response.json();
  }

  /** The subscription's invoices, oldest period first. */
  async function invoicesOf(subscriptionId: string): Promise<InvoiceBody[]> {
    const response = await as("GET", `/v1/invoices?subscription_id=${subscriptionId}&limit=100`);
    expect(response.statusCode, response.body).toBe(200);
    return (response.json().data as InvoiceBody[]).sort((a, b) =>
      a.period_start.localeCompare(b.period_start),
    );
  }

  async function subscription(id: string): Promise<Body> {
    const response = await as("GET", `/v1/subscriptions/${id}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  }

  return { tenant, as, offering, subscribe, meter, billRun, invoicesOf, subscription };
}

/** Sum of lines = subtotal − discounts; total = that + tax; nothing paid yet, so all of it is due. */
function expectConsistent(invoice: InvoiceBody) {
  const sum = invoice.lines.reduce((total, line) => total + Number(line.amount), 0);
  expect(sum).toBe(invoice.subtotal - invoice.discount_total);
  expect(invoice.total).toBe(sum + invoice.tax_total);
  expect(invoice.amount_due).toBe(invoice.total);
}

const sequenceOf = (number: string) => Number(number.split("-").at(-1));

// ---- Every pricing model over every cadence --------------------------------------------------------

interface Cadence {
  billingPeriod: { interval: "day" | "month" | "year"; count: 1 };
  /** The first period [start, end); `next` is where the period after it ends. */
  start: string;
  end: string;
  next: string;
  /** When the two events of the period happen: early on, and in its last second. */
  early: string;
  lastSecond: string;
}

const cadences: [string, Cadence][] = [
  [
    "DAILY",
    {
      billingPeriod: { interval: "day", count: 1 },
      start: "2026-11-27T00:00:00.000Z",
      end: "2026-11-28T00:00:00.000Z",
      next: "2026-11-29T00:00:00.000Z",
      early: "2026-11-27T01:00:00.000Z",
      lastSecond: "2026-11-27T23:59:59.000Z",
    },
  ],
  [
    "MONTHLY",
    {
      billingPeriod: { interval: "month", count: 1 },
      start: "2026-11-01T00:00:00.000Z",
      end: "2026-12-01T00:00:00.000Z",
      next: "2027-01-01T00:00:00.000Z",
      early: "2026-11-05T12:00:00.000Z",
      lastSecond: "2026-11-30T23:59:59.000Z",
    },
  ],
  [
    "YEARLY",
    {
      billingPeriod: { interval: "year", count: 1 },
      start: "2025-12-01T00:00:00.000Z",
      end: "2026-12-01T00:00:00.000Z",
      next: "2027-12-01T00:00:00.000Z",
      early: "2026-01-15T00:00:00.000Z",
      lastSecond: "2026-11-30T23:59:59.000Z",
    },
  ],
];

interface ModelCase {
  item: Body;
  unit: string | null;
  /** Quantities of the early and the last-second event; `following` falls in the next period. */
  early: string;
  lastSecond: string;
  following: string;
  /** The invoice's lines, given the cadence's periods. */
  lines: (cadence: Cadence) => Body[];
  total: number;
}

const tiers = [
  { up_to: "1000", unit_price: "0.010" },
  { up_to: "10000", unit_price: "0.008" },
  { up_to: null, unit_price: "0.005" },
];

const usageLine = (cadence: Cadence, fields: Body) => ({
  type: "USAGE_FEE",
  period_start: cadence.start,
  period_end: cadence.end,
  ...fields,
});

/** The six models of @aforo/core's engine. */
const modelCases: [string, ModelCase][] = [
  [
    "PER_UNIT",
    {
      item: { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.002", included_free: "1000" },
      unit: "calls",
      early: "2000",
      lastSecond: "3500",
      following: "777",
      // 2,000 + 3,500 = 5,500 used − 1,000 free = 4,500 billable × 0.002 = 9.00.
      lines: (c) => [
        usageLine(c, {
          billable_unit: "calls",
          model: "PER_UNIT",
          quantity: "4500",
          unit_price: "0.002",
          amount: 900,
        }),
      ],
      total: 900,
    },
  ],
  [
    "FLAT_RATE",
    {
      item: { model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" },
      unit: null,
      early: "0",
      lastSecond: "0",
      following: "0",
      // The first invoice charges the period's own in-advance fee and the next period's (49 + 49),
      // plus the in-arrears fee of the period (10): 108.00.
      lines: (c) => [
        {
          type: "CHARGE",
          model: "FLAT_RATE",
          quantity: "1",
          amount: 4900,
          period_start: c.start,
          period_end: c.end,
        },
        {
          type: "CHARGE",
          model: "FLAT_RATE",
          quantity: "1",
          amount: 4900,
          period_start: c.end,
          period_end: c.next,
        },
        {
          type: "CHARGE",
          model: "FLAT_RATE",
          quantity: "1",
          amount: 1000,
          period_start: c.start,
          period_end: c.end,
        },
      ],
      total: 10800,
    },
  ],
  [
    "PERCENTAGE",
    {
      item: { model: "PERCENTAGE", billable_unit: "volume", percent: "2.9", min_fee: "1.00" },
      unit: "volume",
      early: "1000.00",
      lastSecond: "234.56",
      following: "5000",
      // 2.9 % of 1,234.56 = 35.80224 → 35.80 (above the 1.00 minimum fee).
      lines: (c) => [
        usageLine(c, { billable_unit: "volume", model: "PERCENTAGE", quantity: "1234.56", amount: 3580 }),
      ],
      total: 3580,
    },
  ],
  [
    "INCLUDED_QUOTA",
    {
      item: {
        model: "INCLUDED_QUOTA",
        billable_unit: "calls",
        included: "10000",
        overage_price: "0.05",
        block_size: "1000",
      },
      unit: "calls",
      early: "6000",
      lastSecond: "6001",
      following: "5000",
      // 12,001 − 10,000 included = 2,001 over → 3 started blocks of 1,000 × 0.05 = 0.15.
      lines: (c) => [
        usageLine(c, {
          billable_unit: "calls",
          model: "INCLUDED_QUOTA",
          quantity: "2001",
          unit_price: "0.05",
          amount: 15,
        }),
      ],
      total: 15,
    },
  ],
  [
    "GRADUATED",
    {
      item: { model: "GRADUATED", billable_unit: "calls", tiers },
      unit: "calls",
      early: "9000",
      lastSecond: "6000",
      following: "4000",
      // 1,000 × 0.010 + 9,000 × 0.008 + 5,000 × 0.005 = 10 + 72 + 25 = 107.00.
      lines: (c) => [
        usageLine(c, {
          billable_unit: "calls",
          model: "GRADUATED",
          quantity: "15000",
          amount: 10700,
          tiers: [
            expect.objectContaining({ up_to: "1000", quantity: "1000", amount_decimal: "10" }),
            expect.objectContaining({ up_to: "10000", quantity: "9000", amount_decimal: "72" }),
            expect.objectContaining({ up_to: null, quantity: "5000", amount_decimal: "25" }),
          ],
        }),
      ],
      total: 10700,
    },
  ],
  [
    "VOLUME",
    {
      item: { model: "VOLUME", billable_unit: "calls", tiers },
      unit: "calls",
      early: "9000",
      lastSecond: "6000",
      following: "4000",
      // 15,000 reaches the last tier: all of it at 0.005 = 75.00.
      lines: (c) => [
        usageLine(c, {
          billable_unit: "calls",
          model: "VOLUME",
          quantity: "15000",
          unit_price: "0.005",
          amount: 7500,
        }),
      ],
      total: 7500,
    },
  ],
];

describe("every pricing model over daily, monthly and yearly periods, billed by a bill run", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  describe.each(cadences)("%s", (_name, cadence) => {
    const invoices = new Map<string, InvoiceBody[]>();
    let run: { invoices_created: number; invoice_ids: string[] };

    beforeAll(async () => {
      t.clock.set(cadence.start);
      const world = await worldIn(t);
      const subscribed: [string, ModelCase, string, string][] = [];
      for (const [model, scenario] of modelCases) {
        const items =
          model === "FLAT_RATE"
            ? [scenario.item, { model: "FLAT_RATE", flat_amount: "10", timing: "in_arrears" }]
            : [scenario.item];
        const offeringId = await world.offering({ billing_period: cadence.billingPeriod, items });
        const { customerId, subscription } = await world.subscribe(offeringId, cadence.start);
        expect(subscription).toMatchObject({
          status: "ACTIVE",
          current_period_start: cadence.start,
          current_period_end: cadence.end,
        });
        subscribed.push([model, scenario, customerId, subscription.id]);
      }
      // Time passes: the events of the period, then one at the first instant of the next period.
      for (const [at, pick] of [
        [cadence.early, (s: ModelCase) => s.early],
        [cadence.lastSecond, (s: ModelCase) => s.lastSecond],
        [cadence.end, (s: ModelCase) => s.following],
      ] as const) {
        for (const [, scenario, customerId] of subscribed) {
          if (scenario.unit !== null) await world.meter(customerId, scenario.unit, pick(scenario), at);
        }
      }
      t.clock.set(new Date(Date.parse(cadence.end) + 3_600_000));
      run = await world.billRun();
      for (const [model, , , subscriptionId] of subscribed) {
        invoices.set(model, await world.invoicesOf(subscriptionId));
      }
    });

    it("invoices each subscription's ended period once, numbered without gaps", () => {
      expect(run.invoices_created).toBe(modelCases.length);
      const all = [...invoices.values()].flat();
      expect(all).toHaveLength(modelCases.length);
      expect(new Set(all.map((invoice) => invoice.id))).toEqual(new Set(run.invoice_ids));
      expect(all.map((invoice) => sequenceOf(invoice.number)).sort((a, b) => a - b)).toEqual([
        1, 2, 3, 4, 5, 6,
      ]);
      for (const invoice of all) expect(invoice.number).toMatch(/^[A-Z0-9_-]+-2026-\d{4}$/);
    });

    it.each(modelCases)("bills %s to the cent", (model, scenario) => {
      const [invoice, ...others] = invoices.get(model) ?? [];
      expect(others).toEqual([]);
      if (!invoice) throw new Error(`no invoice for ${model}`);
      expect(invoice).toMatchObject({
        status: "OPEN",
        period_start: cadence.start,
        period_end: cadence.end,
        subtotal: scenario.total,
        discount_total: 0,
        tax_total: 0,
        total: scenario.total,
      });
      expect(invoice.lines).toEqual(scenario.lines(cadence).map((line) => expect.objectContaining(line)));
      expectConsistent(invoice);
    });
  });
});

// ---- Lifecycle scenarios ---------------------------------------------------------------------------

describe("lifecycle scenarios, billed by bill runs", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("bills nothing for a trial, then the first paid period with its in-advance fee once it converts", async () => {
    t.clock.set("2026-11-01T00:00:00Z");
    const world = await worldIn(t);
    const offeringId = await world.offering(
      {
        billing_period: { interval: "month", count: 1 },
        items: [
          { model: "FLAT_RATE", flat_amount: "30", timing: "in_advance" },
          { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.10" },
        ],
      },
      { trialDays: 14 },
    );
    const { customerId, subscription } = await world.subscribe(offeringId, "2026-11-01T00:00:00Z");
    expect(subscription).toMatchObject({
      status: "TRIALING",
      trial_end_at: "2026-11-15T00:00:00.000Z",
      billing_anchor_day: 15,
      current_period_start: "2026-11-01T00:00:00.000Z",
      current_period_end: "2026-11-15T00:00:00.000Z",
    });
    await world.meter(customerId, "calls", "50", "2026-11-05T00:00:00Z"); // free: the trial

    // The trial converts at its end; its period is never invoiced.
    t.clock.set("2026-11-15T01:00:00Z");
    await t.context.subscriptions.tick();
    expect(await world.subscription(subscription.id)).toMatchObject({
      status: "ACTIVE",
      current_period_start: "2026-11-15T00:00:00.000Z",
      current_period_end: "2026-12-15T00:00:00.000Z",
    });
    expect((await world.billRun()).invoices_created).toBe(0);

    await world.meter(customerId, "calls", "20", "2026-11-20T00:00:00Z");
    await world.meter(customerId, "calls", "7", "2026-12-15T00:00:00Z"); // the next period
    t.clock.set("2026-12-15T01:00:00Z");
    expect((await world.billRun()).invoices_created).toBe(1);
    const [first, ...others] = await world.invoicesOf(subscription.id);
    expect(others).toEqual([]);
    if (!first) throw new Error("no invoice");
    // The first paid period's own fee (no earlier invoice opened it) and the next one's: 30 + 30;
    // 20 calls × 0.10 = 2.00 (the 50 trial calls and the 7 of December are not in it).
    expect(first).toMatchObject({
      period_start: "2026-11-15T00:00:00.000Z",
      period_end: "2026-12-15T00:00:00.000Z",
      total: 6200,
    });
    expect(first.lines).toEqual([
      expect.objectContaining({
        type: "CHARGE",
        amount: 3000,
        period_start: "2026-11-15T00:00:00.000Z",
        period_end: "2026-12-15T00:00:00.000Z",
      }),
      expect.objectContaining({
        type: "CHARGE",
        amount: 3000,
        period_start: "2026-12-15T00:00:00.000Z",
        period_end: "2027-01-15T00:00:00.000Z",
      }),
      expect.objectContaining({ type: "USAGE_FEE", quantity: "20", amount: 200 }),
    ]);
    expectConsistent(first);

    // The second paid period: its fee was charged in advance, so only the next one's and usage.
    t.clock.set("2027-01-15T01:00:00Z");
    expect((await world.billRun()).invoices_created).toBe(1);
    const second = (await world.invoicesOf(subscription.id))[1];
    expect(second?.lines.map((line) => [line.type, line.amount, line.period_start])).toEqual([
      ["CHARGE", 3000, "2027-01-15T00:00:00.000Z"],
      ["USAGE_FEE", 70, "2026-12-15T00:00:00.000Z"],
    ]);
    // 30 for the period it opens + 7 calls × 0.10 = 0.70.
    expect(second?.total).toBe(3070);
    // Numbering restarts with the billing entity's year: the second invoice is issued in 2027.
    expect(first.number).toMatch(/-2026-0001$/);
    expect(second?.number).toMatch(/-2027-0001$/);
  });

  it("cancels at period end: the last period is billed in full, nothing is opened after it", async () => {
    t.clock.set("2026-11-01T00:00:00Z");
    const world = await worldIn(t);
    const offeringId = await world.offering({
      billing_period: { interval: "month", count: 1 },
      items: [
        { model: "FLAT_RATE", flat_amount: "20", timing: "in_advance" },
        { model: "FLAT_RATE", flat_amount: "5", timing: "in_arrears" },
        { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.10" },
      ],
    });
    const { customerId, subscription } = await world.subscribe(offeringId, "2026-11-01T00:00:00Z");
    await world.meter(customerId, "calls", "30", "2026-11-10T00:00:00Z");

    t.clock.set("2026-11-16T00:00:00Z");
    const cancelled = await world.as("POST", `/v1/subscriptions/${subscription.id}/cancel`, {
      at_period_end: true,
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json()).toMatchObject({
      status: "EXPIRING_SOON",
      cancel_at_period_end: true,
      cancel_at: "2026-12-01T00:00:00.000Z",
    });
    // Still entitled, still metered and billed until the period ends.
    await world.meter(customerId, "calls", "12", "2026-11-25T00:00:00Z");

    t.clock.set("2026-12-01T01:00:00Z");
    await t.context.subscriptions.tick();
    expect(await world.subscription(subscription.id)).toMatchObject({
      status: "EXPIRED",
      ended_at: "2026-12-01T00:00:00.000Z",
    });
    expect((await world.billRun()).invoices_created).toBe(1);
    const [last] = await world.invoicesOf(subscription.id);
    // November's in-advance fee (its first period: 20) and in-arrears fee (5), 42 calls × 0.10 =
    // 4.20; no in-advance fee for December, which never comes.
    expect(last).toMatchObject({
      period_start: "2026-11-01T00:00:00.000Z",
      period_end: "2026-12-01T00:00:00.000Z",
      total: 2920,
    });
    expect(last?.lines.map((line) => [line.type, line.amount, line.period_start])).toEqual([
      ["CHARGE", 2000, "2026-11-01T00:00:00.000Z"],
      ["CHARGE", 500, "2026-11-01T00:00:00.000Z"],
      ["USAGE_FEE", 420, "2026-11-01T00:00:00.000Z"],
    ]);
    if (last) expectConsistent(last);

    // A month later there is nothing more to bill.
    t.clock.set("2027-01-01T01:00:00Z");
    expect((await world.billRun()).invoices_created).toBe(0);
    expect(await world.invoicesOf(subscription.id)).toHaveLength(1);
  });
});
