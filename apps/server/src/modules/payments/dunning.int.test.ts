import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { JobQueue, SendOptions } from "../../jobs/queue.ts";
import { TEST_PUBLIC_URL } from "../../testing/test-app.ts";
import { SecretBox } from "../webhooks/secrets.ts";
import { PaymentService } from "./service.ts";
import { type PaymentsHarness, paymentsHarness } from "./test-fixtures.ts";

const DAY_MS = 86_400_000;

describe("dunning", () => {
  let h: PaymentsHarness;
  beforeAll(async () => {
    h = await paymentsHarness();
  });
  afterAll(() => h.close());

  const runDue = () => h.t.context.payments.runDue();
  const subscriptionStatus = async (id: string) => (await h.ok("GET", `/v1/subscriptions/${id}`)).status;
  const invoiceStatus = async (id: string) => (await h.ok("GET", `/v1/invoices/${id}`)).status;
  const cycleOf = async (invoiceId: string) => {
    const { data } = await h.ok("GET", `/v1/dunning_cycles?invoice_id=${invoiceId}`);
    expect(data).toHaveLength(1);
    return data[0];
  };
  const meter = (apiKey: string) =>
    h.request("POST", "/v1/meter", { api_key: apiKey, metric_id: "api_calls" });
  const canAccess = (apiKey: string) =>
    h.request("POST", "/v1/canAccess", { api_key: apiKey, feature: "sso" });

  it("collects a finalised invoice from the customer's default method in the background", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    // Finalising queued the collection; a pass waits for it (or does it, if it has not started).
    await runDue();
    expect(await h.ok("GET", `/v1/invoices/${invoiceId}`)).toMatchObject({
      status: "PAID",
      amount_paid: 1000,
    });
    const [payment] = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    expect(payment).toMatchObject({ status: "SUCCEEDED", trigger: "automatic", attempt: 1 });
    const cycle = await cycleOf(invoiceId);
    expect(cycle).toMatchObject({
      object: "dunning_cycle",
      status: "RECOVERED",
      attempts: 0,
      schedule_days: [0, 3, 7],
      subscription_id: subscriber.subscriptionId,
      next_attempt_at: null,
    });
    expect(payment.dunning_cycle_id).toBe(cycle.id);
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("ACTIVE");
  });

  it("collects a finalised invoice through the job queue alone, without anyone calling runDue", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    await vi.waitFor(async () => expect(await invoiceStatus(invoiceId)).toBe("PAID"), {
      timeout: 15_000,
      interval: 200,
    });
    const [payment] = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    expect(payment).toMatchObject({ status: "SUCCEEDED", trigger: "automatic" });
  });

  it("queues an invoice's collection in the transaction that finalises it, and never fails the finalisation", async () => {
    const sent: { name: string; data: unknown; options: SendOptions | undefined }[] = [];
    let refuse = false;
    const jobs: JobQueue = {
      start: async () => {},
      stop: async () => {},
      work: async () => {},
      schedule: async () => {},
      send: async (name, data, options) => {
        if (refuse) throw new Error("the queue is down");
        sent.push({ name, data, options });
        return "job";
      },
    };
    const { context } = h.t;
    const service = new PaymentService(h.t.database, h.t.clock, {
      customers: context.customers,
      subscriptions: context.subscriptions,
      keys: context.keys,
      wallets: context.wallets,
      jobs,
      secrets: new SecretBox(h.t.database.db, undefined),
    });
    const published: string[] = [];
    const publisher = service.collectOnFinalize({
      publish: async (_trx, _scope, type) => void published.push(type),
    });
    const subscriber = await h.customer("succeed");
    const unchargeable = await h.customer(null);
    const finalized = { id: "inv_1", status: "OPEN", amount_due: 1000, customer_id: subscriber.customerId };
    await publisher.publish(h.t.database.db, h.scope, "invoice.finalized", finalized);
    expect(sent).toEqual([]); // not started: the background pass collects it
    await service.start();
    await h.t.database.db.transaction().execute(async (trx) => {
      await publisher.publish(trx, h.scope, "invoice.finalized", finalized);
      await publisher.publish(trx, h.scope, "invoice.finalized", {
        ...finalized,
        id: "inv_2",
        amount_due: 0,
      });
      await publisher.publish(trx, h.scope, "invoice.created", { ...finalized, id: "inv_3" });
      const noMethod = { ...finalized, id: "inv_4", customer_id: unchargeable.customerId };
      await publisher.publish(trx, h.scope, "invoice.finalized", noMethod);
      expect(sent).toEqual([
        {
          name: "payments.collect",
          data: { tenantId: h.tenant.id, mode: "test", invoiceId: "inv_1" },
          options: { singletonKey: "inv_1", transaction: trx },
        },
      ]);
    });
    refuse = true;
    const committed = await h.t.database.db.transaction().execute(async (trx) => {
      await publisher.publish(trx, h.scope, "invoice.finalized", finalized);
      return (await sql<{ one: number }>`select 1 as one`.execute(trx)).rows[0]?.one;
    });
    expect(committed).toBe(1);
    expect(published).toEqual([
      "invoice.finalized",
      "invoice.finalized",
      "invoice.finalized",
      "invoice.created",
      "invoice.finalized",
      "invoice.finalized",
    ]);
  });

  it("retries a declined invoice on the schedule: PAST_DUE after the first failure, ACTIVE once a retry succeeds", async () => {
    const start = h.t.clock.now();
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    await runDue();
    expect(await invoiceStatus(invoiceId)).toBe("OPEN");
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("PAST_DUE");
    let cycle = await cycleOf(invoiceId);
    expect(cycle).toMatchObject({
      status: "ACTIVE",
      attempts: 1,
      last_failure_code: "generic_decline",
      next_attempt_at: new Date(start.getTime() + 3 * DAY_MS).toISOString(),
    });
    // PAST_DUE is the grace period: the consumer key still works.
    expect((await canAccess(subscriber.consumerKey)).statusCode).toBe(200);

    h.t.clock.set(new Date(start.getTime() + 2 * DAY_MS));
    await runDue(); // nothing due yet
    expect((await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data).toHaveLength(1);

    h.stripe.card(subscriber.paymentMethod, "succeed", subscriber.stripeCustomer);
    h.t.clock.set(new Date(start.getTime() + 3 * DAY_MS));
    await runDue();
    expect(await invoiceStatus(invoiceId)).toBe("PAID");
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("ACTIVE");
    cycle = await cycleOf(invoiceId);
    expect(cycle).toMatchObject({ status: "RECOVERED", attempts: 1 });
    const payments = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    expect(
      payments.map((payment: { status: string; attempt: number; trigger: string }) => [
        payment.attempt,
        payment.trigger,
        payment.status,
      ]),
    ).toEqual([
      [2, "dunning", "SUCCEEDED"],
      [1, "automatic", "FAILED"],
    ]);
    const phases = (await h.ok("GET", `/v1/subscriptions/${subscriber.subscriptionId}/phases`)).data;
    expect(
      phases.slice(-2).map((phase: { status: string; reason: string }) => [phase.status, phase.reason]),
    ).toEqual([
      ["PAST_DUE", "payment_failed"],
      ["ACTIVE", "payment_succeeded"],
    ]);
  });

  it("suspends after the last failed step: invoice UNCOLLECTIBLE, subscription SUSPENDED, consumer key refused; payment brings all back", async () => {
    const start = h.t.clock.now();
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    expect((await canAccess(subscriber.consumerKey)).statusCode).toBe(200);
    await runDue();
    h.t.clock.set(new Date(start.getTime() + 3 * DAY_MS));
    await runDue();
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("PAST_DUE");
    expect(await invoiceStatus(invoiceId)).toBe("OPEN");
    h.t.clock.set(new Date(start.getTime() + 7 * DAY_MS));
    await runDue();

    expect(await invoiceStatus(invoiceId)).toBe("UNCOLLECTIBLE");
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("SUSPENDED");
    expect(await cycleOf(invoiceId)).toMatchObject({
      status: "EXHAUSTED",
      attempts: 3,
      next_attempt_at: null,
    });
    const refused = await canAccess(subscriber.consumerKey);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().type).toBe(`${TEST_PUBLIC_URL}/problems/key-revoked`);
    const metered = await meter(subscriber.consumerKey);
    expect(metered.statusCode).toBe(422);
    expect(metered.json().errors).toEqual([expect.objectContaining({ field: "api_key" })]);
    const keys = (await h.ok("GET", `/v1/subscriptions/${subscriber.subscriptionId}/api_keys`)).data;
    expect(keys[0]).toMatchObject({
      status: "suspended",
      revoked_at: null,
      suspended_at: expect.any(String),
    });
    // Nothing more is tried after the last step.
    h.t.clock.set(new Date(start.getTime() + 30 * DAY_MS));
    await runDue();
    expect((await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data).toHaveLength(3);

    // The customer saves a working card and the operator charges it.
    h.stripe.card("pm_new_card", "succeed", subscriber.stripeCustomer);
    await h.ok("POST", `/v1/customers/${subscriber.customerId}/payment_methods`, {
      provider: "stripe",
      provider_payment_method_id: "pm_new_card",
      provider_customer_id: subscriber.stripeCustomer,
      default: true,
    });
    const paid = await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }, 200);
    expect(paid).toMatchObject({ status: "PAID", amount_paid: 1000 });
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("ACTIVE");
    expect(await cycleOf(invoiceId)).toMatchObject({ status: "RECOVERED" });
    const allowed = await canAccess(subscriber.consumerKey);
    expect(allowed.statusCode, allowed.body).toBe(200);
    expect(allowed.json()).toMatchObject({ allowed: true, customer_id: subscriber.customerId });
    expect((await meter(subscriber.consumerKey)).statusCode).toBe(202);
    const restored = (await h.ok("GET", `/v1/subscriptions/${subscriber.subscriptionId}/api_keys`)).data;
    expect(restored[0]).toMatchObject({ status: "active", suspended_at: null });
  });

  it("publishes payment and invoice events inside the transactions that record them", async () => {
    await h.ok("PUT", "/v1/payment_settings", { dunning: { schedule_days: [0] } }, 200);
    const subscriber = await h.customer("decline");
    const from = h.events.length;
    const invoiceId = await h.openInvoice(subscriber);
    await runDue();
    expect(await invoiceStatus(invoiceId)).toBe("UNCOLLECTIBLE");
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("SUSPENDED");
    await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { reference: "cheque-17" }, 200);
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("ACTIVE");
    const mine = h.events
      .slice(from)
      .filter((event) => event.data.invoice_id === invoiceId || event.data.id === invoiceId);
    expect(mine.map((event) => [event.type, event.inTransaction, event.scope.tenantId])).toEqual([
      ["payment.failed", true, h.tenant.id],
      ["invoice.marked_uncollectible", true, h.tenant.id],
      ["payment.succeeded", true, h.tenant.id],
      ["invoice.paid", true, h.tenant.id],
    ]);
    expect(mine[3]?.data).toMatchObject({ id: invoiceId, status: "PAID", payment_method: "manual" });
    await h.ok("PUT", "/v1/payment_settings", { dunning: null }, 200);
  });

  it("follows the tenant's schedule, snapshotted when collection starts", async () => {
    const start = h.t.clock.now();
    const settings = await h.ok("PUT", "/v1/payment_settings", { dunning: { schedule_days: [1, 2] } }, 200);
    expect(settings.dunning).toEqual({ schedule_days: [1, 2], default: false });
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    await runDue(); // starts the cycle; the first attempt is a day away
    await h.ok("PUT", "/v1/payment_settings", { dunning: null }, 200);
    expect(await cycleOf(invoiceId)).toMatchObject({ status: "ACTIVE", attempts: 0, schedule_days: [1, 2] });
    expect((await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data).toHaveLength(0);
    h.t.clock.set(new Date(start.getTime() + DAY_MS));
    await runDue();
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("PAST_DUE");
    h.t.clock.set(new Date(start.getTime() + 2 * DAY_MS));
    await runDue();
    expect(await cycleOf(invoiceId)).toMatchObject({ status: "EXHAUSTED", attempts: 2 });
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("SUSPENDED");
  });

  it("ends dunning when the invoice is voided, and the subscription is no longer held back", async () => {
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    await runDue();
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("PAST_DUE");
    await h.ok("POST", `/v1/invoices/${invoiceId}/void`, undefined, 200);
    await runDue();
    expect(await cycleOf(invoiceId)).toMatchObject({ status: "CLOSED", next_attempt_at: null });
    expect(await subscriptionStatus(subscriber.subscriptionId)).toBe("ACTIVE");
  });

  it("makes each due attempt once when two processes' passes run at the same time", async () => {
    const start = h.t.clock.now();
    await h.ok("PUT", "/v1/payment_settings", { dunning: { schedule_days: [1, 2] } }, 200);
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    await runDue(); // the cycle starts; its first attempt is due tomorrow
    await h.ok("PUT", "/v1/payment_settings", { dunning: null }, 200);
    // A second process: its own service (memory, serialisation) over the same database.
    const { context } = h.t;
    const elsewhere = new PaymentService(h.t.database, h.t.clock, {
      customers: context.customers,
      subscriptions: context.subscriptions,
      keys: context.keys,
      wallets: context.wallets,
      jobs: context.jobs,
      secrets: new SecretBox(h.t.database.db, undefined),
      stripe: context.payments.stripeEndpoint,
    });
    h.t.clock.set(new Date(start.getTime() + DAY_MS));
    await Promise.all([context.payments.runDue(), elsewhere.runDue(), elsewhere.runDue()]);
    const payments = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    expect(payments.map((payment: { status: string }) => payment.status)).toEqual(["FAILED"]);
    const charges = h.stripe
      .charges()
      .filter((charge) => charge.params["metadata[aforo_invoice_id]"] === invoiceId);
    expect(charges).toHaveLength(1);
    expect(await cycleOf(invoiceId)).toMatchObject({ attempts: 1, status: "ACTIVE" });
  });

  it("answers 404 for another tenant's dunning cycles and 400 for a bad status filter", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    await runDue();
    const cycle = await cycleOf(invoiceId);
    expect(await h.ok("GET", `/v1/dunning_cycles/${cycle.id}`)).toEqual(cycle);
    const other = await h.t.createTenant();
    const asOther = (url: string) => h.t.request("GET", url, { key: other.testKey, tenant: other.id });
    expect((await asOther(`/v1/dunning_cycles/${cycle.id}`)).statusCode).toBe(404);
    expect((await asOther(`/v1/dunning_cycles?invoice_id=${invoiceId}`)).json().data).toEqual([]);
    expect((await h.request("GET", "/v1/dunning_cycles?status=DONE")).statusCode).toBe(400);
  });
});
