import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";

type Method = "GET" | "POST";
const at = (iso: string) => new Date(iso);
const DAY = 86_400_000;

/** Pulls the text pdfkit writes as hex strings (`<48656c6c6f> Tj`) out of an uncompressed PDF. */
function pdfText(pdf: Buffer): string {
  const raw = pdf.toString("latin1");
  return [...raw.matchAll(/<([0-9a-fA-F]+)>/g)]
    .map((match) => Buffer.from(match[1] ?? "", "hex").toString("latin1"))
    .join("");
}

describe("invoices", () => {
  let t: TestApp;
  let tenant: TestTenant;
  let other: TestTenant;
  let scope: TenantScope;
  let counter = 0;
  const as = (method: Method, url: string, body?: unknown, key?: string, tenantId?: string) =>
    t.request(method, url, { key: key ?? tenant.testKey, tenant: tenantId ?? tenant.id, body });

  async function created(url: string, body: unknown) {
    const response = await as("POST", url, body);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  /** A daily subscription started `days` days before 2026-11-28 with a flat 10.00 in arrears. */
  async function dailySubscription(days: number, flat = "10") {
    counter += 1;
    t.clock.set("2026-11-28T00:00:00Z");
    const plan = await created("/v1/rate_plans", {
      name: `Daily ${counter}`,
      currency: "USD",
      billing_period: { interval: "day", count: 1 },
      items: [{ model: "FLAT_RATE", flat_amount: flat, timing: "in_arrears" }],
    });
    const offering = await created("/v1/offerings", {
      name: `Offering ${counter}`,
      rate_plan_ids: [plan.id],
      billing_mode: "POSTPAID",
      status: "PUBLISHED",
    });
    const customer = await created("/v1/customers", {
      name: "Grace Hopper",
      email: "grace@example.com",
      currency: "USD",
      address: { line1: "1 Navy Way", city: "Arlington", state: "VA", postal_code: "22202", country: "US" },
      tax: { country: "US", tax_id: "US-99-123" },
    });
    const start = new Date(at("2026-11-28T00:00:00Z").getTime() - days * DAY);
    const subscription = await created("/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offering.id,
      start_at: start.toISOString(),
    });
    const periods = Array.from({ length: days }, (_, index) => ({
      start: new Date(start.getTime() + index * DAY),
      end: new Date(start.getTime() + (index + 1) * DAY),
    }));
    return { subscriptionId: subscription.id as string, customerId: customer.id as string, periods };
  }

  async function openInvoice(): Promise<string> {
    const { subscriptionId, periods } = await dailySubscription(1);
    const result = await t.context.billing.invoicePeriod(
      scope,
      subscriptionId,
      periods[0] as (typeof periods)[0],
      {},
    );
    return result.invoiceId;
  }

  const sequenceOf = (number: string) => Number(number.split("-").at(-1));

  beforeAll(async () => {
    t = await createTestApp();
    tenant = await t.createTenant();
    other = await t.createTenant();
    scope = { tenantId: tenant.id, mode: "test" };
  });
  afterAll(() => t.close());

  it("finalises drafts concurrently with gapless sequential numbers", async () => {
    const { subscriptionId, periods } = await dailySubscription(12);
    const drafts = [];
    for (const period of periods)
      drafts.push((await t.context.billing.draftPeriod(scope, subscriptionId, period)).invoiceId);
    const draft = await as("GET", `/v1/invoices/${drafts[0]}`);
    expect(draft.json()).toMatchObject({ status: "DRAFT", number: null, total: 1000 });
    const responses = await Promise.all(drafts.map((id) => as("POST", `/v1/invoices/${id}/finalize`)));
    expect(responses.map((response) => response.statusCode)).toEqual(drafts.map(() => 200));
    const numbers = responses.map((response) => response.json().number as string);
    const sequences = numbers.map(sequenceOf).sort((a, b) => a - b);
    const first = sequences[0] ?? 0;
    expect(sequences).toEqual(sequences.map((_, index) => first + index));
    expect(new Set(numbers).size).toBe(numbers.length);

    // A refused finalisation takes no number: the next one continues the sequence.
    expect((await as("POST", `/v1/invoices/${drafts[0]}/finalize`)).statusCode).toBe(409);
    const next = await openInvoice();
    const body = (await as("GET", `/v1/invoices/${next}`)).json();
    expect(sequenceOf(body.number)).toBe(first + drafts.length);
    expect(body).toMatchObject({ status: "OPEN" });
    expect(new Date(body.due_at).getTime() - new Date(body.finalized_at).getTime()).toBe(30 * DAY);
  });

  it("invoicePeriod finalises a period drafted before and stays idempotent", async () => {
    const { subscriptionId, periods } = await dailySubscription(1);
    const period = periods[0] as { start: Date; end: Date };
    const drafted = await t.context.billing.draftPeriod(scope, subscriptionId, period);
    const invoiced = await t.context.billing.invoicePeriod(scope, subscriptionId, period, {});
    expect(invoiced).toEqual({ invoiceId: drafted.invoiceId, created: false });
    expect((await as("GET", `/v1/invoices/${drafted.invoiceId}`)).json().status).toBe("OPEN");
  });

  it("moves through the states and refuses every other move with 409", async () => {
    const paid = await openInvoice();
    const payment = await as("POST", `/v1/invoices/${paid}/pay`, { amount: 1000, method: "manual" });
    expect(payment.statusCode, payment.body).toBe(200);
    expect(payment.json()).toMatchObject({
      status: "PAID",
      amount_paid: 1000,
      amount_remaining: 0,
      payment_method: "manual",
    });
    for (const action of ["void", "pay", "finalize", "mark_uncollectible"]) {
      const refused = await as("POST", `/v1/invoices/${paid}/${action}`);
      expect(refused.statusCode, action).toBe(409);
      expect(refused.headers["content-type"]).toContain("application/problem+json");
    }

    const voided = await openInvoice();
    expect((await as("POST", `/v1/invoices/${voided}/void`)).json()).toMatchObject({ status: "VOID" });
    expect((await as("POST", `/v1/invoices/${voided}/pay`)).statusCode).toBe(409);
    expect((await as("POST", `/v1/invoices/${voided}/void`)).statusCode).toBe(409);

    const written = await openInvoice();
    expect((await as("POST", `/v1/invoices/${written}/mark_uncollectible`)).json().status).toBe(
      "UNCOLLECTIBLE",
    );
    expect((await as("POST", `/v1/invoices/${written}/void`)).statusCode).toBe(409);
    expect((await as("POST", `/v1/invoices/${written}/pay`)).json().status).toBe("PAID");

    const wrongAmount = await openInvoice();
    expect((await as("POST", `/v1/invoices/${wrongAmount}/pay`, { amount: 999 })).statusCode).toBe(422);
  });

  it("marks OPEN invoices past their due date OVERDUE, which can still be paid", async () => {
    const id = await openInvoice();
    const finalizedAt = new Date((await as("GET", `/v1/invoices/${id}`)).json().finalized_at);
    await t.context.billing.markOverdue(new Date(finalizedAt.getTime() + 29 * DAY));
    expect((await as("GET", `/v1/invoices/${id}`)).json().status).toBe("OPEN");
    expect(
      await t.context.billing.markOverdue(new Date(finalizedAt.getTime() + 31 * DAY)),
    ).toBeGreaterThanOrEqual(1);
    expect((await as("GET", `/v1/invoices/${id}`)).json().status).toBe("OVERDUE");
    const listed = await as("GET", "/v1/invoices?status=OVERDUE");
    expect(listed.json().data.map((invoice: { id: string }) => invoice.id)).toContain(id);
    expect((await as("POST", `/v1/invoices/${id}/pay`)).json().status).toBe("PAID");
  });

  it("issues credit notes up to the total, lowering what is due; a fully credited invoice is PAID", async () => {
    const id = await openInvoice();
    const first = await created("/v1/credit_notes", {
      invoice_id: id,
      amount: 300,
      reason: "PRORATION",
      description: "Downgrade",
    });
    expect(first).toMatchObject({
      object: "credit_note",
      invoice_id: id,
      amount: 300,
      currency: "USD",
      status: "ISSUED",
    });
    expect((await as("GET", `/v1/invoices/${id}`)).json()).toMatchObject({
      status: "OPEN",
      amount_due: 700,
      credit_notes_total: 300,
    });
    const tooMuch = await as("POST", "/v1/credit_notes", { invoice_id: id, amount: 701, reason: "x" });
    expect(tooMuch.statusCode).toBe(422);
    expect(tooMuch.json().errors[0].field).toBe("amount");
    // Paid by credit is announced like a payment, once.
    const announced: string[] = [];
    const publisher = t.context.billing.webhooks;
    t.context.billing.webhooks = {
      publish: async (trx, scope, type, data) => {
        announced.push(`${type} ${String(data.id)} ${String(data.status)}`);
        await publisher.publish(trx, scope, type, data);
      },
    };
    try {
      await created("/v1/credit_notes", { invoice_id: id, amount: 700, reason: "goodwill" });
    } finally {
      t.context.billing.webhooks = publisher;
    }
    expect((await as("GET", `/v1/invoices/${id}`)).json()).toMatchObject({ status: "PAID", amount_due: 0 });
    expect(announced).toEqual([`invoice.paid ${id} PAID`]);
    expect(
      (await as("POST", "/v1/credit_notes", { invoice_id: id, amount: 1, reason: "x" })).statusCode,
    ).toBe(422);

    const list = await as("GET", `/v1/credit_notes?invoice_id=${id}`);
    expect(list.json().data).toHaveLength(2);
    expect((await as("GET", `/v1/credit_notes/${first.id}`)).json().id).toBe(first.id);

    const { subscriptionId, periods } = await dailySubscription(1);
    const draft = await t.context.billing.draftPeriod(
      scope,
      subscriptionId,
      periods[0] as { start: Date; end: Date },
    );
    expect(
      (await as("POST", "/v1/credit_notes", { invoice_id: draft.invoiceId, amount: 1, reason: "x" }))
        .statusCode,
    ).toBe(422);
  });

  it("renders a PDF with seller, buyer, number, lines and totals", async () => {
    const id = await openInvoice();
    const invoice = (await as("GET", `/v1/invoices/${id}`)).json();
    const response = await as("GET", `/v1/invoices/${id}/pdf`);
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/pdf");
    expect(response.rawPayload.subarray(0, 5).toString()).toBe("%PDF-");
    const pdf = await t.context.billing.pdf(scope, id, { compress: false });
    const text = pdfText(pdf);
    expect(text).toContain(invoice.number);
    expect(text).toContain("Grace Hopper");
    expect(text).toContain("Tax ID: US-99-123");
    expect(text).toContain("10.00 USD");
  });

  it("answers 404 for another tenant's or the other mode's invoices on every route", async () => {
    const id = await openInvoice();
    const { subscriptionId } = await dailySubscription(1);
    const note = await created("/v1/credit_notes", { invoice_id: id, amount: 1, reason: "x" });
    const strangers = [
      { key: other.testKey, tenantId: other.id },
      { key: tenant.liveKey, tenantId: tenant.id },
    ];
    for (const { key, tenantId } of strangers) {
      const call = (method: Method, url: string, body?: unknown) => as(method, url, body, key, tenantId);
      const answers = [
        await call("GET", `/v1/invoices/${id}`),
        await call("GET", `/v1/invoices/${id}/pdf`),
        await call("POST", `/v1/invoices/${id}/finalize`),
        await call("POST", `/v1/invoices/${id}/void`),
        await call("POST", `/v1/invoices/${id}/pay`),
        await call("POST", `/v1/invoices/${id}/mark_uncollectible`),
        await call("POST", "/v1/invoices/preview", { subscription_id: subscriptionId }),
        await call("GET", `/v1/credit_notes/${note.id}`),
      ];
      expect(answers.map((answer) => answer.statusCode)).toEqual(answers.map(() => 404));
      expect(
        (await call("POST", "/v1/credit_notes", { invoice_id: id, amount: 1, reason: "x" })).statusCode,
      ).toBe(422);
      expect((await call("GET", "/v1/invoices")).json().data).toEqual([]);
      expect((await call("GET", "/v1/credit_notes")).json().data).toEqual([]);
    }
    expect((await as("GET", `/v1/invoices/${id}`)).json().status).toBe("OPEN");
  });

  it("lists invoices newest first with filters and pages", async () => {
    const { subscriptionId, customerId, periods } = await dailySubscription(3);
    for (const period of periods) await t.context.billing.invoicePeriod(scope, subscriptionId, period, {});
    const page = await as("GET", `/v1/invoices?customer_id=${customerId}&limit=2`);
    expect(page.json().data).toHaveLength(2);
    expect(page.json().has_more).toBe(true);
    const rest = await as(
      "GET",
      `/v1/invoices?customer_id=${customerId}&limit=2&starting_after=${page.json().data[1].id}`,
    );
    expect(rest.json()).toMatchObject({ has_more: false });
    expect(rest.json().data).toHaveLength(1);
    expect((await as("GET", "/v1/invoices?status=NOPE")).statusCode).toBe(400);
  });

  it("previews the current period so far and refuses an ended subscription", async () => {
    const { subscriptionId } = await dailySubscription(1);
    const preview = await as("POST", "/v1/invoices/preview", { subscription_id: subscriptionId });
    expect(preview.statusCode, preview.body).toBe(200);
    expect(preview.json()).toMatchObject({
      id: null,
      number: null,
      status: "DRAFT",
      period_start: "2026-11-28T00:00:00.000Z",
    });
    expect((await as("GET", `/v1/invoices?subscription_id=${subscriptionId}`)).json().data).toEqual([]);
    await as("POST", `/v1/subscriptions/${subscriptionId}/cancel`, { at_period_end: false });
    expect((await as("POST", "/v1/invoices/preview", { subscription_id: subscriptionId })).statusCode).toBe(
      409,
    );
  });
});
