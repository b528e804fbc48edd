import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

type Method = "GET" | "POST";
type Body = Record<string, unknown>;
const at = (iso: string) => new Date(iso);
const NOV = { start: at("2026-11-01T00:00:00Z"), end: at("2026-12-01T00:00:00Z") };
const AFTER_NOV = "2026-12-01T00:00:01Z";

/** Billing scenarios end to end (Lago style): one per pricing model and cadence, to the cent. */
describe("invoicing scenarios", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let scope: TenantScope;
  let counter = 0;
  const as = (method: Method, url: string, body?: unknown) =>
    t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });

  async function created(method: Method, url: string, body: unknown) {
    const response = await as(method, url, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  /** A plan, a published offering, a customer and a subscription starting at `startAt`. */
  async function subscribe(
    plan: Body,
    options: { startAt?: string; promotionCode?: string; customer?: Body } = {},
  ): Promise<{ subscriptionId: string; customerId: string }> {
    counter += 1;
    const ratePlan = await created("POST", "/v1/rate_plans", {
      name: `Plan ${counter}`,
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      ...plan,
    });
    const offering = await created("POST", "/v1/offerings", {
      name: `Offering ${counter}`,
      rate_plan_ids: [ratePlan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
    const customer = await created("POST", "/v1/customers", {
      name: `Customer ${counter}`,
      email: `c${counter}@example.com`,
      currency: "USD",
      ...options.customer,
    });
    const subscription = await created("POST", "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offering.id,
      start_at: options.startAt ?? NOV.start.toISOString(),
      ...(options.promotionCode ? { promotion_code: options.promotionCode } : {}),
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
  }

  async function invoice(subscriptionId: string, period = NOV) {
    const result = await t.context.billing.invoicePeriod(scope, subscriptionId, period, {});
    const response = await as("GET", `/v1/invoices/${result.invoiceId}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  }

  function expectConsistent(body: {
    lines: { amount: number }[];
    subtotal: number;
    discount_total: number;
    tax_total: number;
    total: number;
    amount_due: number;
  }) {
    const sum = body.lines.reduce((total, line) => total + line.amount, 0);
    expect(sum).toBe(body.subtotal - body.discount_total);
    expect(body.total).toBe(sum + body.tax_total);
    expect(body.amount_due).toBe(body.total);
  }

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    scope = { tenantId: tenant.id, mode: "test" };
    t.clock.set("2026-11-28T10:00:00Z");
    for (const key of ["calls", "volume", "tokens"]) {
      await created("POST", "/v1/billable_units", {
        key,
        name: key,
        unit_label: "units",
        aggregation: "SUM",
      });
    }
    await created("POST", "/v1/billable_units", {
      key: "requests",
      name: "requests",
      unit_label: "requests",
      aggregation: "COUNT",
    });
  });
  afterAll(() => t.close());

  const tiers = [
    { up_to: "1000", unit_price: "0.010" },
    { up_to: "10000", unit_price: "0.008" },
    { up_to: null, unit_price: "0.005" },
  ];
  const models: [string, Body, string, string, number][] = [
    [
      "PER_UNIT",
      { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.002", included_free: "1000" },
      "calls",
      "5500",
      900,
    ],
    [
      "PERCENTAGE",
      { model: "PERCENTAGE", billable_unit: "volume", percent: "2.9", min_fee: "1.00" },
      "volume",
      "1234.56",
      3580,
    ],
    [
      "INCLUDED_QUOTA",
      {
        model: "INCLUDED_QUOTA",
        billable_unit: "calls",
        included: "10000",
        overage_price: "0.05",
        block_size: "1000",
      },
      "calls",
      "12001",
      15,
    ],
    ["GRADUATED", { model: "GRADUATED", billable_unit: "calls", tiers }, "calls", "15000", 10700],
    ["VOLUME", { model: "VOLUME", billable_unit: "calls", tiers }, "calls", "15000", 7500],
  ];

  it.each(models)(
    "bills a %s item over a monthly period to the cent",
    async (_model, item, unit, quantity, amount) => {
      t.clock.set("2026-11-28T10:00:00Z");
      const { subscriptionId, customerId } = await subscribe({ items: [item] });
      // Split the usage over two events; SUM units add them up.
      const half = (Number(quantity) / 2).toString();
      await meter(customerId, unit, half, "2026-11-05T12:00:00Z");
      await meter(customerId, unit, half, "2026-11-20T12:00:00Z");
      t.clock.set(AFTER_NOV);
      const body = await invoice(subscriptionId);
      expect(body).toMatchObject({
        status: "OPEN",
        currency: "USD",
        period_start: "2026-11-01T00:00:00.000Z",
        period_end: "2026-12-01T00:00:00.000Z",
        subtotal: amount,
        total: amount,
      });
      expect(body.number).toMatch(/-2026-\d+$/);
      expect(body.lines).toEqual([
        expect.objectContaining({ type: "USAGE_FEE", billable_unit: unit, amount }),
      ]);
      expect(new Set(body.trace.map((entry: { stage: string }) => entry.stage))).toEqual(
        new Set([
          "quota_check",
          "rollover",
          "aggregate",
          "allowance",
          "rate",
          "commit",
          "discount",
          "tax",
          "route",
          "settle",
        ]),
      );
      expectConsistent(body);
    },
  );

  it("bills FLAT_RATE in arrears for the period and in advance for the period it opens (and the first one)", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId } = await subscribe({
      items: [
        { model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" },
        { model: "FLAT_RATE", flat_amount: "10", timing: "in_arrears" },
      ],
    });
    t.clock.set(AFTER_NOV);
    const first = await invoice(subscriptionId);
    expect(first.lines.map((line: Body) => [line.type, line.amount, line.period_start])).toEqual([
      ["CHARGE", 4900, "2026-11-01T00:00:00.000Z"],
      ["CHARGE", 4900, "2026-12-01T00:00:00.000Z"],
      ["CHARGE", 1000, "2026-11-01T00:00:00.000Z"],
    ]);
    expect(first.total).toBe(10800);
    t.clock.set("2027-01-01T00:00:01Z");
    const second = await invoice(subscriptionId, { start: NOV.end, end: at("2027-01-01T00:00:00Z") });
    expect(second.lines.map((line: Body) => [line.amount, line.period_start])).toEqual([
      [4900, "2027-01-01T00:00:00.000Z"],
      [1000, "2026-12-01T00:00:00.000Z"],
    ]);
    expect(second.total).toBe(5900);
  });

  it("bills a COUNT unit and a daily period", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId, customerId } = await subscribe(
      {
        billing_period: { interval: "day", count: 1 },
        items: [
          { model: "PER_UNIT", billable_unit: "requests", unit_price: "0.25" },
          { model: "FLAT_RATE", flat_amount: "1.50", timing: "in_arrears" },
        ],
      },
      { startAt: "2026-11-27T00:00:00Z" },
    );
    for (const hour of ["01", "09", "23"])
      await meter(customerId, "requests", "5", `2026-11-27T${hour}:00:00Z`);
    await meter(customerId, "requests", "1", "2026-11-28T01:00:00Z"); // the next day
    const body = await invoice(subscriptionId, {
      start: at("2026-11-27T00:00:00Z"),
      end: at("2026-11-28T00:00:00Z"),
    });
    // COUNT counts events (3), whatever their quantity.
    expect(body.lines.map((line: Body) => [line.type, line.quantity, line.amount])).toEqual([
      ["USAGE_FEE", "3", 75],
      ["CHARGE", "1", 150],
    ]);
    expect(body.total).toBe(225);
  });

  it("bills a yearly period", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId, customerId } = await subscribe(
      {
        billing_period: { interval: "year", count: 1 },
        items: [
          { model: "FLAT_RATE", flat_amount: "1200", timing: "in_arrears" },
          { model: "PER_UNIT", billable_unit: "tokens", unit_price: "0.0001" },
        ],
      },
      { startAt: "2025-12-01T00:00:00Z" },
    );
    await meter(customerId, "tokens", "123456", "2026-11-15T00:00:00Z");
    t.clock.set(AFTER_NOV);
    const body = await invoice(subscriptionId, { start: at("2025-12-01T00:00:00Z"), end: NOV.end });
    expect(body.lines.map((line: Body) => line.amount)).toEqual([120000, 1235]);
    expect(body.total).toBe(121235);
  });

  it("trues up to the minimum commitment", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId, customerId } = await subscribe({
      items: [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" }],
      minimum_commitment: "50.00",
    });
    await meter(customerId, "calls", "1000", "2026-11-10T00:00:00Z");
    t.clock.set(AFTER_NOV);
    const body = await invoice(subscriptionId);
    expect(body.lines.map((line: Body) => [line.type, line.model, line.amount])).toEqual([
      ["USAGE_FEE", "PER_UNIT", 1000],
      ["CHARGE", "MINIMUM_COMMITMENT", 4000],
    ]);
    expect(body.total).toBe(5000);
    expectConsistent(body);
  });

  it("carries unused allowance into the next period and uses it there", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId, customerId } = await subscribe({
      items: [
        {
          model: "PER_UNIT",
          billable_unit: "calls",
          unit_price: "0.01",
          included_free: "1000",
          rollover: { max: "500" },
        },
      ],
    });
    await meter(customerId, "calls", "200", "2026-11-10T00:00:00Z");
    t.clock.set(AFTER_NOV);
    expect((await invoice(subscriptionId)).total).toBe(0);
    await meter(customerId, "calls", "1600", "2026-12-01T00:00:00Z");
    t.clock.set("2027-01-01T00:00:01Z");
    // 1,600 used − (1,000 included + 500 rolled over) = 100 × 0.01.
    const december = await invoice(subscriptionId, { start: NOV.end, end: at("2027-01-01T00:00:00Z") });
    expect(december.lines[0]).toMatchObject({ quantity: "100", amount: 100 });
    expect(december.trace).toContainEqual(
      expect.objectContaining({
        stage: "rollover",
        amounts: { "calls.carried_in": "500", "calls.carried_out": "0" },
      }),
    );
  });

  it("applies a promotion for two periods and not the third", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    await created("POST", "/v1/promotions", {
      code: "TWOMONTHS",
      percent_off: "10",
      duration: "repeating",
      duration_in_periods: 2,
    });
    const { subscriptionId } = await subscribe(
      { items: [{ model: "FLAT_RATE", flat_amount: "100", timing: "in_arrears" }] },
      { startAt: "2026-09-01T00:00:00Z", promotionCode: "TWOMONTHS" },
    );
    t.clock.set(AFTER_NOV);
    const periods = [
      { start: at("2026-09-01T00:00:00Z"), end: at("2026-10-01T00:00:00Z") },
      { start: at("2026-10-01T00:00:00Z"), end: NOV.start },
      NOV,
    ];
    const invoices = [];
    for (const period of periods) invoices.push(await invoice(subscriptionId, period));
    expect(invoices.map((body) => [body.discount_total, body.total])).toEqual([
      [1000, 9000],
      [1000, 9000],
      [0, 10000],
    ]);
    expect(invoices[0].lines.at(-1)).toMatchObject({ type: "DISCOUNT", amount: -1000 });
    expect(invoices[2].lines.some((line: Body) => line.type === "DISCOUNT")).toBe(false);
  });

  it("adds exclusive tax and reports inclusive tax through the TaxProvider", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    await created("POST", "/v1/tax_rates", { name: "VAT", country: "DE", percent: "19", inclusive: false });
    await created("POST", "/v1/tax_rates", { name: "MwSt", country: "AT", percent: "20", inclusive: true });
    const item = { model: "FLAT_RATE", flat_amount: "120", timing: "in_arrears" };
    const german = await subscribe({ items: [item] }, { customer: { tax: { country: "DE" } } });
    const austrian = await subscribe({ items: [item] }, { customer: { tax: { country: "AT" } } });
    const exempt = await subscribe({ items: [item] }, { customer: { tax: { country: "DE", exempt: true } } });
    t.clock.set(AFTER_NOV);
    const exclusive = await invoice(german.subscriptionId);
    expect(exclusive).toMatchObject({ subtotal: 12000, tax_total: 2280, tax_included: 0, total: 14280 });
    expect(exclusive.tax_breakdown).toEqual([
      expect.objectContaining({
        name: "VAT",
        rate_percent: "19",
        inclusive: false,
        taxable_amount: 12000,
        amount: 2280,
      }),
    ]);
    expect(exclusive.lines[0].tax_amount).toBe(2280);
    expectConsistent(exclusive);
    const inclusive = await invoice(austrian.subscriptionId);
    expect(inclusive).toMatchObject({ subtotal: 12000, tax_total: 0, tax_included: 2000, total: 12000 });
    expectConsistent(inclusive);
    expect(await invoice(exempt.subscriptionId)).toMatchObject({
      tax_total: 0,
      tax_included: 0,
      total: 12000,
    });
  });

  it("taxes each line after its share of the discount", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    await created("POST", "/v1/promotions", { code: "HALF", percent_off: "50", duration: "forever" });
    const { subscriptionId } = await subscribe(
      { items: [{ model: "FLAT_RATE", flat_amount: "100", timing: "in_arrears" }] },
      { promotionCode: "HALF", customer: { tax: { country: "DE" } } },
    );
    t.clock.set(AFTER_NOV);
    const body = await invoice(subscriptionId);
    expect(body).toMatchObject({ subtotal: 10000, discount_total: 5000, tax_total: 950, total: 5950 });
    expectConsistent(body);
  });

  it("previews at period end exactly the invoice the run then makes (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40000 }),
        fc.integer({ min: 0, max: 999 }),
        async (calls, cents) => {
          t.clock.set("2026-11-28T10:00:00Z");
          const { subscriptionId, customerId } = await subscribe({
            items: [
              { model: "GRADUATED", billable_unit: "calls", tiers },
              { model: "PERCENTAGE", billable_unit: "volume", percent: "2.9", min_fee: "0.30" },
              { model: "FLAT_RATE", flat_amount: "9.99", timing: "in_advance" },
            ],
            minimum_commitment: "20",
          });
          if (calls > 0) await meter(customerId, "calls", String(calls), "2026-11-12T08:00:00Z");
          await meter(
            customerId,
            "volume",
            `${cents}.${String(calls % 100).padStart(2, "0")}`,
            "2026-11-13T08:00:00Z",
          );
          t.clock.set(new Date(NOV.end.getTime() - 1));
          const preview = await as("POST", "/v1/invoices/preview", { subscription_id: subscriptionId });
          expect(preview.statusCode, preview.body).toBe(200);
          t.clock.set(AFTER_NOV);
          const final = await invoice(subscriptionId);
          const shape = (body: { lines: Body[] }) =>
            body.lines.map(({ type, description, quantity, unit_price, amount }) => ({
              type,
              description,
              quantity,
              unit_price,
              amount,
            }));
          expect(preview.json()).toMatchObject({ id: null, number: null, status: "DRAFT" });
          expect(shape(preview.json())).toEqual(shape(final));
          expect(preview.json().total).toBe(final.total);
          expect(preview.json().trace).toEqual(final.trace);
          expectConsistent(final);
        },
      ),
      { numRuns: 6 },
    );
  });

  it("invoices a period once, whatever runs concurrently", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId } = await subscribe({
      items: [{ model: "FLAT_RATE", flat_amount: "5", timing: "in_arrears" }],
    });
    t.clock.set(AFTER_NOV);
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        t.context.billing.invoicePeriod(scope, subscriptionId, NOV, { billRunId: "br_x" }),
      ),
    );
    expect(new Set(results.map((result) => result.invoiceId)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    const list = await as("GET", `/v1/invoices?subscription_id=${subscriptionId}`);
    expect(list.json().data).toHaveLength(1);
    expect(list.json().data[0].bill_run_id).toBe("br_x");
  });

  it("refuses a period that is not one of the subscription's (422)", async () => {
    t.clock.set("2026-11-28T10:00:00Z");
    const { subscriptionId } = await subscribe({
      items: [{ model: "FLAT_RATE", flat_amount: "5", timing: "in_arrears" }],
    });
    await expect(
      t.context.billing.invoicePeriod(
        scope,
        subscriptionId,
        { start: at("2026-11-02T00:00:00Z"), end: NOV.end },
        {},
      ),
    ).rejects.toMatchObject({ status: 422 });
  });
});
