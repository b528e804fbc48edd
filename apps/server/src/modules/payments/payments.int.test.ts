import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_PUBLIC_URL } from "../../testing/test-app.ts";
import { type PaymentsHarness, paymentsHarness, STRIPE_TEST_KEY } from "./test-fixtures.ts";

const FIVE_MINUTES_MS = 5 * 60_000;

describe("payments", () => {
  let h: PaymentsHarness;
  beforeAll(async () => {
    h = await paymentsHarness({ automaticCollection: false });
  });
  afterAll(() => h.close());

  it("keeps the Stripe secret sealed: never returned, not stored in clear, live keys refused in a sandbox", async () => {
    const settings = await h.ok("GET", "/v1/payment_settings");
    expect(settings).toMatchObject({
      object: "payment_settings",
      providers: {
        manual: { configured: true },
        stripe: { configured: true, secret_key_hint: `sk_test_…${STRIPE_TEST_KEY.slice(-4)}` },
      },
      automatic_collection: false,
      dunning: { schedule_days: [0, 3, 7], default: true },
    });
    expect(JSON.stringify(settings)).not.toContain(STRIPE_TEST_KEY);
    const row = await h.t.database.db
      .selectFrom("payment_settings")
      .selectAll()
      .where("tenant_id", "=", h.tenant.id)
      .executeTakeFirstOrThrow();
    expect(row.stripe_secret_sealed).toBeTruthy();
    expect(row.stripe_secret_sealed).not.toContain(STRIPE_TEST_KEY.slice(8));

    const live = await h.request("PUT", "/v1/payment_settings", {
      stripe: { secret_key: "sk_live_abcdefgh1234" },
    });
    expect(live.statusCode).toBe(422);
    expect(live.json().errors).toEqual([
      { field: "stripe.secret_key", message: expect.stringContaining("live") },
    ]);
    const garbage = await h.request("PUT", "/v1/payment_settings", { stripe: { secret_key: "hunter2" } });
    expect(garbage.statusCode).toBe(422);
    const unordered = await h.request("PUT", "/v1/payment_settings", {
      dunning: { schedule_days: [0, 7, 3] },
    });
    expect(unordered.statusCode).toBe(422);
    expect(
      (await h.request("PUT", "/v1/payment_settings", { dunning: { schedule_days: [] } })).statusCode,
    ).toBe(400);
    expect(
      (await h.request("PUT", "/v1/payment_settings", { dunning: { schedule_days: ["1"] } })).statusCode,
    ).toBe(400);
    // Nothing refused changed anything.
    expect(await h.ok("GET", "/v1/payment_settings")).toEqual(settings);
  });

  it("saves payment methods: the first is the default, a later one can take over, duplicates are 409", async () => {
    const subscriber = await h.customer("succeed");
    const url = `/v1/customers/${subscriber.customerId}/payment_methods`;
    const [first] = (await h.ok("GET", url)).data;
    expect(first).toMatchObject({
      object: "payment_method",
      provider: "stripe",
      provider_payment_method_id: subscriber.paymentMethod,
      provider_customer_id: subscriber.stripeCustomer,
      default: true,
    });
    expect(first.id).toMatch(/^pm_/);
    const second = await h.ok("POST", url, {
      provider: "stripe",
      provider_payment_method_id: "pm_other",
      default: true,
    });
    expect(second.default).toBe(true);
    const listed = (await h.ok("GET", url)).data;
    expect(listed.map((method: { id: string; default: boolean }) => [method.id, method.default])).toEqual([
      [second.id, true],
      [first.id, false],
    ]);
    const duplicate = await h.request("POST", url, {
      provider: "stripe",
      provider_payment_method_id: "pm_other",
    });
    expect(duplicate.statusCode).toBe(409);
    expect((await h.ok("DELETE", `${url}/${second.id}`)).id).toBe(second.id);
    expect((await h.ok("GET", url)).data.map((method: { id: string }) => method.id)).toEqual([first.id]);
    expect((await h.request("DELETE", `${url}/${second.id}`)).statusCode).toBe(404);
    expect(
      (await h.request("POST", url, { provider: "paypal", provider_payment_method_id: "x" })).statusCode,
    ).toBe(400);
    expect((await h.request("POST", url, { provider: "stripe" })).statusCode).toBe(400);
    const unknown = await h.request("POST", "/v1/customers/cus_unknown/payment_methods", {
      provider: "stripe",
      provider_payment_method_id: "pm_x",
    });
    expect(unknown.statusCode).toBe(404);
  });

  it("charges the default method through Stripe (PaymentIntent, off-session, idempotency key) and marks the invoice PAID", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    const before = h.stripe.charges().length;
    const paid = await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }, 200);
    expect(paid).toMatchObject({
      id: invoiceId,
      status: "PAID",
      amount_paid: 1000,
      payment_method: "stripe",
    });
    expect(paid.paid_at).toBe(h.t.clock.now().toISOString());
    const charges = h.stripe.charges().slice(before);
    expect(charges).toHaveLength(1);
    const [charge] = charges;
    expect(charge?.params).toMatchObject({
      amount: "1000",
      currency: "usd",
      confirm: "true",
      off_session: "true",
      payment_method: subscriber.paymentMethod,
      customer: subscriber.stripeCustomer,
      "metadata[aforo_invoice_id]": invoiceId,
    });
    const { data } = await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`);
    expect(data).toHaveLength(1);
    const [payment] = data;
    expect(payment).toMatchObject({
      object: "payment",
      invoice_id: invoiceId,
      customer_id: subscriber.customerId,
      amount: 1000,
      currency: "USD",
      status: "SUCCEEDED",
      provider: "stripe",
      provider_payment_id: expect.stringMatching(/^pi_/),
      failure_code: null,
      failure_message: null,
      attempt: 1,
      trigger: "operator",
    });
    expect(charge?.idempotencyKey).toBe(`aforo_${payment.id}`);
    expect(await h.ok("GET", `/v1/payments/${payment.id}`)).toEqual(payment);
    const published = h.events.filter((event) => event.data.id === payment.id || event.data.id === invoiceId);
    expect(published.map((event) => [event.type, event.inTransaction])).toEqual([
      ["payment.succeeded", true],
      ["invoice.paid", true],
    ]);
    // A paid invoice cannot be paid again.
    expect(
      (await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" })).statusCode,
    ).toBe(409);
  });

  it("answers a decline 402 in Stripe's terms, records the FAILED payment and leaves the invoice OPEN", async () => {
    const subscriber = await h.customer("insufficient_funds");
    const invoiceId = await h.openInvoice(subscriber);
    const refused = await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" });
    expect(refused.statusCode).toBe(402);
    expect(refused.headers["content-type"]).toContain("application/problem+json");
    const problem = refused.json();
    expect(problem).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/payment-failed`,
      status: 402,
      failure_code: "insufficient_funds",
      failure_message: "Your card has insufficient funds.",
    });
    const payment = await h.ok("GET", `/v1/payments/${problem.payment_id}`);
    expect(payment).toMatchObject({
      status: "FAILED",
      failure_code: "insufficient_funds",
      provider_payment_id: expect.stringMatching(/^pi_/),
    });
    expect((await h.ok("GET", `/v1/invoices/${invoiceId}`)).status).toBe("OPEN");
    expect(h.events.filter((event) => event.data.id === payment.id).map((event) => event.type)).toEqual([
      "payment.failed",
    ]);
    // An operator's failed charge does not start dunning by itself.
    const subscription = await h.ok("GET", `/v1/subscriptions/${subscriber.subscriptionId}`);
    expect(subscription.status).toBe("ACTIVE");
  });

  it("records a charge that needs the customer to authenticate as FAILED (nobody is there off-session)", async () => {
    const subscriber = await h.customer("authentication_required");
    const invoiceId = await h.openInvoice(subscriber);
    const refused = await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" });
    expect(refused.statusCode).toBe(402);
    expect(refused.json()).toMatchObject({ failure_code: "authentication_required" });
    expect((await h.ok("GET", `/v1/invoices/${invoiceId}`)).status).toBe("OPEN");
  });

  it("follows a processing charge (a bank debit) until Stripe settles it", async () => {
    const subscriber = await h.customer("processing");
    const invoiceId = await h.openInvoice(subscriber);
    const answered = await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }, 200);
    expect(answered.status).toBe("OPEN");
    const [payment] = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    expect(payment).toMatchObject({ status: "PENDING", provider_payment_id: expect.stringMatching(/^pi_/) });
    h.stripe.settle(payment.provider_payment_id, "succeeded");
    h.t.clock.advance(FIVE_MINUTES_MS);
    await h.t.context.payments.runDue();
    expect(await h.ok("GET", `/v1/payments/${payment.id}`)).toMatchObject({ status: "SUCCEEDED" });
    expect((await h.ok("GET", `/v1/invoices/${invoiceId}`)).status).toBe("PAID");
    const lookups = h.stripe.requests.filter(
      (request) =>
        request.method === "GET" && request.path === `/v1/payment_intents/${payment.provider_payment_id}`,
    );
    expect(lookups).toHaveLength(1);
    expect(
      h.stripe.charges().filter((charge) => charge.params["metadata[aforo_invoice_id]"] === invoiceId),
    ).toHaveLength(1);
  });

  it("keeps manual payments working: a bare POST pays, the operator's reference is kept, a wrong amount is 422", async () => {
    const subscriber = await h.customer(null);
    const invoiceId = await h.openInvoice(subscriber);
    expect((await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { amount: 999 })).statusCode).toBe(422);
    expect(
      (await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" })).statusCode,
    ).toBe(422);
    const paid = await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { reference: "wire-2026-11-0042" }, 200);
    expect(paid).toMatchObject({ status: "PAID", amount_paid: 1000, payment_method: "manual" });
    const { data } = await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`);
    expect(data).toEqual([
      expect.objectContaining({
        status: "SUCCEEDED",
        provider: "manual",
        provider_payment_id: "wire-2026-11-0042",
        payment_method_id: null,
        amount: 1000,
        attempt: 1,
      }),
    ]);
    const bare = await h.openInvoice(await h.customer(null));
    const response = await h.t.request("POST", `/v1/invoices/${bare}/pay`, {
      key: h.tenant.testKey,
      tenant: h.tenant.id,
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().status).toBe("PAID");
  });

  it("charges once when two collections of the same invoice run at the same time", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    const before = h.stripe.charges().length;
    const responses = await Promise.all([
      h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }),
      h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }),
    ]);
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses[0]).toBe(200);
    // The loser saw the charge in flight (409 payment-in-progress) or the invoice already PAID (409).
    expect(statuses[1]).toBe(409);
    expect(h.stripe.charges().length - before).toBe(1);
    const { data } = await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`);
    expect(data.map((payment: { status: string }) => payment.status)).toEqual(["SUCCEEDED"]);
  });

  it("leaves a charge PENDING when Stripe fails, and resumes it later with the same idempotency key", async () => {
    h.t.context.payments.stripeEndpoint.maxNetworkRetries = 0;
    const subscriber = await h.customer("server_error");
    const invoiceId = await h.openInvoice(subscriber);
    const outage = await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" });
    expect(outage.statusCode).toBe(502);
    const paymentId = outage.json().payment_id;
    expect(await h.ok("GET", `/v1/payments/${paymentId}`)).toMatchObject({ status: "PENDING" });
    // While it is pending nobody else may charge the invoice.
    const again = await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" });
    expect(again.statusCode).toBe(409);
    expect(again.json().type).toBe(`${TEST_PUBLIC_URL}/problems/payment-in-progress`);
    expect((await h.request("POST", `/v1/invoices/${invoiceId}/pay`)).statusCode).toBe(409);

    h.stripe.card(subscriber.paymentMethod, "succeed", subscriber.stripeCustomer);
    await h.t.context.payments.runDue(); // not stale yet: left alone
    expect(await h.ok("GET", `/v1/payments/${paymentId}`)).toMatchObject({ status: "PENDING" });
    h.t.clock.advance(FIVE_MINUTES_MS);
    await h.t.context.payments.runDue();
    expect(await h.ok("GET", `/v1/payments/${paymentId}`)).toMatchObject({ status: "SUCCEEDED" });
    expect((await h.ok("GET", `/v1/invoices/${invoiceId}`)).status).toBe("PAID");
    const attempts = h.stripe.requests.filter(
      (request) => request.params["metadata[aforo_invoice_id]"] === invoiceId,
    );
    expect(attempts.map((request) => [request.status, request.idempotencyKey])).toEqual([
      [500, `aforo_${paymentId}`],
      [200, `aforo_${paymentId}`],
    ]);
  });

  it("lets the SDK retry a transient Stripe error with the same idempotency key", async () => {
    const subscriber = await h.customer("decline");
    const invoiceId = await h.openInvoice(subscriber);
    // A fresh provider picks the endpoint up: re-save the key.
    h.t.context.payments.stripeEndpoint.maxNetworkRetries = 1;
    await h.ok("PUT", "/v1/payment_settings", { stripe: { secret_key: STRIPE_TEST_KEY } }, 200);
    h.stripe.card(subscriber.paymentMethod, "server_error", subscriber.stripeCustomer);
    const outage = await h.request("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" });
    expect(outage.statusCode).toBe(502);
    const attempts = h.stripe.requests.filter(
      (request) => request.params["metadata[aforo_invoice_id]"] === invoiceId,
    );
    expect(attempts).toHaveLength(2);
    expect(new Set(attempts.map((request) => request.idempotencyKey)).size).toBe(1);
    h.t.context.payments.stripeEndpoint.maxNetworkRetries = 0;
    await h.ok("PUT", "/v1/payment_settings", { stripe: { secret_key: STRIPE_TEST_KEY } }, 200);
  });

  it("charges a wallet's auto top-up request once and credits its CASH bucket once", async () => {
    const subscriber = await h.customer("succeed");
    const wallet = await h.ok("POST", `/v1/customers/${subscriber.customerId}/wallets`, { currency: "USD" });
    await h.ok("POST", `/v1/wallets/${wallet.id}/credits`, { amount: 1000, bucket: "CASH" });
    await h.ok("PUT", `/v1/wallets/${wallet.id}/auto_top_up`, { threshold: 500, amount: 2000 }, 200);
    await h.ok("POST", "/v1/wallets/debit", {
      customer_id: subscriber.customerId,
      amount: 700,
      currency: "USD",
      strategy: "WATERFALL",
      idempotency_key: `d-${wallet.id}`,
    });
    const [request] = (await h.ok("GET", `/v1/wallets/${wallet.id}/top_up_requests`)).data;
    expect(request).toMatchObject({ status: "PENDING", amount: 2000 });

    await h.t.context.payments.runDue();
    await h.t.context.payments.runDue();
    const after = await h.ok("GET", `/v1/wallets/${wallet.id}`);
    expect(after.balance).toBe(300 + 2000);
    expect(after.buckets.CASH).toBe(300 + 2000);
    expect((await h.ok("GET", `/v1/wallets/${wallet.id}/top_up_requests`)).data[0].status).toBe("SUCCEEDED");
    const { data } = await h.ok("GET", `/v1/payments?top_up_request_id=${request.id}`);
    expect(data).toEqual([
      expect.objectContaining({
        top_up_request_id: request.id,
        invoice_id: null,
        amount: 2000,
        currency: "USD",
        status: "SUCCEEDED",
        trigger: "top_up",
      }),
    ]);
    const charges = h.stripe
      .charges()
      .filter((charge) => charge.params["metadata[aforo_top_up_request_id]"] === request.id);
    expect(charges).toHaveLength(1);
    const credits = (await h.ok("GET", `/v1/wallets/${wallet.id}/ledger`)).data.filter(
      (entry: { type: string; amount: number }) => entry.type === "CREDIT" && entry.amount === 2000,
    );
    expect(credits).toHaveLength(1);
  });

  it("fails a top-up request whose card is declined, crediting nothing", async () => {
    const subscriber = await h.customer("decline");
    const wallet = await h.ok("POST", `/v1/customers/${subscriber.customerId}/wallets`, { currency: "USD" });
    await h.ok("POST", `/v1/wallets/${wallet.id}/credits`, { amount: 600, bucket: "CASH" });
    await h.ok("PUT", `/v1/wallets/${wallet.id}/auto_top_up`, { threshold: 500, amount: 1500 }, 200);
    const debit = await h.request("POST", "/v1/wallets/debit", {
      customer_id: subscriber.customerId,
      amount: 200,
      currency: "USD",
      strategy: "WATERFALL",
      idempotency_key: `decline-${wallet.id}`,
    });
    expect(debit.statusCode).toBe(201);
    await h.t.context.payments.runDue();
    const [request] = (await h.ok("GET", `/v1/wallets/${wallet.id}/top_up_requests`)).data;
    expect(request.status).toBe("FAILED");
    expect((await h.ok("GET", `/v1/wallets/${wallet.id}`)).balance).toBe(400);
    const { data } = await h.ok("GET", `/v1/payments?top_up_request_id=${request.id}`);
    expect(data).toEqual([expect.objectContaining({ status: "FAILED", failure_code: "generic_decline" })]);
  });

  it("answers 404 for another tenant's payments, methods, invoices and dunning cycles", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    await h.ok("POST", `/v1/invoices/${invoiceId}/pay`, { method: "provider" }, 200);
    const [payment] = (await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data;
    const [method] = (await h.ok("GET", `/v1/customers/${subscriber.customerId}/payment_methods`)).data;
    const other = await h.t.createTenant();
    const asOther = (method: "GET" | "POST" | "DELETE", url: string, body?: unknown) =>
      h.t.request(method, url, { key: other.testKey, tenant: other.id, body });
    expect((await asOther("GET", `/v1/payments/${payment.id}`)).statusCode).toBe(404);
    expect((await asOther("GET", `/v1/payments?invoice_id=${invoiceId}`)).json().data).toEqual([]);
    expect((await asOther("GET", `/v1/customers/${subscriber.customerId}/payment_methods`)).statusCode).toBe(
      404,
    );
    expect(
      (await asOther("DELETE", `/v1/customers/${subscriber.customerId}/payment_methods/${method.id}`))
        .statusCode,
    ).toBe(404);
    expect(
      (
        await asOther("POST", `/v1/customers/${subscriber.customerId}/payment_methods`, {
          provider: "stripe",
          provider_payment_method_id: "pm_x",
        })
      ).statusCode,
    ).toBe(404);
    expect((await asOther("POST", `/v1/invoices/${invoiceId}/pay`)).statusCode).toBe(404);
    expect((await asOther("GET", "/v1/dunning_cycles/dun_01jzzzzzzzzzzzzzzzzzzzzzzz")).statusCode).toBe(404);
    // The other tenant has no Stripe configured: saving a method there is refused.
    const own = await asOther("POST", "/v1/customers", {
      name: "Other",
      email: "o@example.com",
      currency: "USD",
    });
    const refused = await asOther("POST", `/v1/customers/${own.json().id}/payment_methods`, {
      provider: "stripe",
      provider_payment_method_id: "pm_x",
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().errors).toEqual([{ field: "provider", message: "stripe is not configured" }]);
    // The live mode of the same tenant sees nothing of the sandbox.
    const live = await h.t.request("GET", `/v1/payments/${payment.id}`, {
      key: h.tenant.liveKey,
      tenant: h.tenant.id,
    });
    expect(live.statusCode).toBe(404);
  });

  it("refuses bad pay bodies with 4xx and changes nothing", async () => {
    const subscriber = await h.customer("succeed");
    const invoiceId = await h.openInvoice(subscriber);
    const pay = (body: unknown) => h.request("POST", `/v1/invoices/${invoiceId}/pay`, body);
    expect((await pay({ method: "card" })).statusCode).toBe(400);
    expect((await pay({ amount: "1000" })).statusCode).toBe(400);
    expect((await pay({ amount: -1 })).statusCode).toBe(400);
    expect((await pay({ method: "manual", payment_method_id: "pm_x" })).statusCode).toBe(422);
    expect((await pay({ method: "provider", reference: "wire" })).statusCode).toBe(422);
    expect((await pay({ payment_method_id: "pm_not_saved" })).statusCode).toBe(422);
    expect((await h.request("GET", "/v1/payments?status=LOST")).statusCode).toBe(400);
    expect((await h.ok("GET", `/v1/invoices/${invoiceId}`)).status).toBe("OPEN");
    expect((await h.ok("GET", `/v1/payments?invoice_id=${invoiceId}`)).data).toEqual([]);
    expect((await h.request("GET", "/v1/payments/pay_unknown")).statusCode).toBe(404);
  });
});
