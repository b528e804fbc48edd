import { randomBytes } from "node:crypto";
import type { TenantScope } from "../../http/route-config.ts";
import { createTestApp, type TestApp, type TestTenant } from "../../testing/test-app.ts";
import { subscriptionPeriodAt } from "../subscriptions/domain/lifecycle.ts";
import type { WebhookEventType, WebhookPublisher } from "../webhooks/publisher.ts";
import { type CardBehaviour, StripeDouble } from "./stripe-double.ts";

const DAY_MS = 86_400_000;

/** A response body as the tests read it (what `response.json()` gives). */
type Json = ReturnType<typeof JSON.parse>;
export const STRIPE_TEST_KEY = `sk_test_${randomBytes(12).toString("hex")}`;

export interface PublishedEvent {
  scope: TenantScope;
  type: WebhookEventType;
  data: Record<string, unknown>;
  /** Published with a transaction (the one recording the change), as the outbox requires. */
  inTransaction: boolean;
}

/** A publisher that remembers what it was told, for tests. */
export function recordingPublisher(events: PublishedEvent[]): WebhookPublisher {
  return {
    publish: async (trx, scope, type, data) => {
      events.push({ scope, type, data, inTransaction: trx.isTransaction });
    },
  };
}

export interface PaymentsHarness {
  t: TestApp;
  stripe: StripeDouble;
  tenant: TestTenant;
  scope: TenantScope;
  events: PublishedEvent[];
  request(
    method: "GET" | "POST" | "PUT" | "DELETE",
    url: string,
    body?: unknown,
  ): ReturnType<TestApp["request"]>;
  /** POST expecting `status`; returns the JSON body. */
  ok(method: "GET" | "POST" | "PUT" | "DELETE", url: string, body?: unknown, status?: number): Promise<Json>;
  /**
   * A customer with a daily 10.00 USD subscription started a day ago (ACTIVE), a card at the
   * Stripe double saved as the default method, and a consumer key.
   */
  customer(card: CardBehaviour | null): Promise<Subscriber>;
  /** Invoices (and finalises) the subscriber's first day: an OPEN invoice of 1000 minor units. */
  openInvoice(subscriber: Subscriber): Promise<string>;
  close(): Promise<void>;
}

export interface Subscriber {
  customerId: string;
  subscriptionId: string;
  paymentMethod: string;
  stripeCustomer: string;
  consumerKey: string;
  periodStart: Date;
}

let counter = 0;

/**
 * A test app with Stripe pointed at a local double and Stripe configured for a sandbox tenant.
 * `automaticCollection` false: invoices are only paid through POST /v1/invoices/{id}/pay, so tests
 * of the operator's payments do not race the collection queued at finalisation.
 */
export async function paymentsHarness(
  options: { automaticCollection?: boolean } = {},
): Promise<PaymentsHarness> {
  const stripe = await StripeDouble.start();
  stripe.acceptKey(STRIPE_TEST_KEY);
  const t = await createTestApp({ config: { stripeApiUrl: stripe.url } });
  // The SDK's own retries (with back-off sleeps) are tested once, with retries switched on there.
  t.context.payments.stripeEndpoint.maxNetworkRetries = 0;
  const events: PublishedEvent[] = [];
  t.context.payments.webhooks = recordingPublisher(events);
  t.clock.set("2026-11-28T00:00:00Z");
  const tenant = await t.createTenant();
  const scope: TenantScope = { tenantId: tenant.id, mode: "test" };
  const request: PaymentsHarness["request"] = (method, url, body) =>
    t.request(method, url, { key: tenant.testKey, tenant: tenant.id, body });
  const ok: PaymentsHarness["ok"] = async (method, url, body, status) => {
    const response = await request(method, url, body);
    const expected = status ?? (method === "POST" ? 201 : 200);
    if (response.statusCode !== expected) {
      throw new Error(`${method} ${url} answered ${response.statusCode}, not ${expected}: ${response.body}`);
    }
    return response.json();
  };
  await ok(
    "PUT",
    "/v1/payment_settings",
    { stripe: { secret_key: STRIPE_TEST_KEY }, automatic_collection: options.automaticCollection ?? true },
    200,
  );
  await ok("POST", "/v1/billable_units", {
    key: "api_calls",
    name: "API calls",
    unit_label: "calls",
    aggregation: "COUNT",
  });
  const plan = await ok("POST", "/v1/rate_plans", {
    name: "Daily",
    currency: "USD",
    billing_period: { interval: "day", count: 1 },
    items: [{ model: "FLAT_RATE", flat_amount: "10", timing: "in_arrears" }],
    entitlements: [{ feature: "sso", type: "boolean" }],
  });
  const offering = await ok("POST", "/v1/offerings", {
    name: "Daily offering",
    rate_plan_ids: [plan.id],
    billing_mode: "POSTPAID",
    status: "PUBLISHED",
  });

  const customer: PaymentsHarness["customer"] = async (card) => {
    counter += 1;
    const created = await ok("POST", "/v1/customers", {
      name: `Customer ${counter}`,
      email: `billing${counter}@example.com`,
      currency: "USD",
    });
    const paymentMethod = `pm_card_${counter}_${randomBytes(4).toString("hex")}`;
    const stripeCustomer = `cus_stripe_${counter}`;
    if (card) {
      stripe.card(paymentMethod, card, stripeCustomer);
      await ok("POST", `/v1/customers/${created.id}/payment_methods`, {
        provider: "stripe",
        provider_payment_method_id: paymentMethod,
        provider_customer_id: stripeCustomer,
      });
    }
    // A day before the last midnight: its first period (midnight to midnight) has ended.
    const now = t.clock.now().getTime();
    const periodStart = new Date(now - (now % DAY_MS) - DAY_MS);
    const subscription = await ok("POST", "/v1/subscriptions", {
      customer_id: created.id,
      offering_id: offering.id,
      start_at: periodStart.toISOString(),
    });
    const key = await ok("POST", `/v1/subscriptions/${subscription.id}/api_keys`, { name: "gateway" });
    return {
      customerId: created.id,
      subscriptionId: subscription.id,
      paymentMethod,
      stripeCustomer,
      consumerKey: key.key,
      periodStart,
    };
  };

  const openInvoice: PaymentsHarness["openInvoice"] = async (subscriber) => {
    const subscription = await t.context.subscriptions.get(scope, subscriber.subscriptionId);
    const period = subscriptionPeriodAt(subscription, subscription.startAt);
    const { invoiceId } = await t.context.billing.invoicePeriod(scope, subscriber.subscriptionId, period, {});
    return invoiceId;
  };

  return {
    t,
    stripe,
    tenant,
    scope,
    events,
    request,
    ok,
    customer,
    openInvoice,
    close: async () => {
      await t.close();
      await stripe.close();
    },
  };
}
