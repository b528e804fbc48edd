import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContext } from "../../context.ts";
import type { Database } from "../../db/schema.ts";
import type { TenantScope } from "../../http/route-config.ts";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, TEST_PUBLIC_URL, type TestApp, testConfig } from "../../testing/test-app.ts";
import type { WebhookPublisher } from "../webhooks/publisher.ts";

type Body = Record<string, unknown>;
type Method = "GET" | "POST";
const NOV = { start: new Date("2026-11-01T00:00:00Z"), end: new Date("2026-12-01T00:00:00Z") };
const MID_NOV = "2026-11-10T12:00:00Z";
const AFTER_NOV = "2026-12-01T00:00:01Z";

interface Entry {
  type: string;
  bucket: string;
  amount: number;
  idempotency_key: string | null;
}

/** Prepaid and hybrid billing end to end: usage debits the wallet as metered, invoices settle the rest. */
describe("prepaid and hybrid billing", () => {
  let t: TestApp;
  let f: Fixture;
  let scope: TenantScope;
  let counter = 0;
  const published: { type: string; data: Record<string, unknown> }[] = [];
  const recorder: WebhookPublisher = {
    publish: async (_trx, _scope, type, data) => {
      published.push({ type, data });
    },
  };

  const as = (method: Method, url: string, body?: unknown) => t.request(method, url, { ...f.as, body });

  async function ok(method: Method, url: string, body?: unknown, status = method === "POST" ? 201 : 200) {
    const response = await as(method, url, body);
    if (response.statusCode !== status)
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  /** A plan, an offering in `billingMode`, a customer and a subscription since November 1st. */
  async function subscribe(
    items: Body[],
    offering: Body,
    options: { promotionCode?: string } = {},
  ): Promise<{ customerId: string; subscriptionId: string; walletId: string | undefined }> {
    counter += 1;
    const plan = await ok("POST", "/v1/rate_plans", {
      name: `Plan ${counter}`,
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items,
      entitlements: [{ feature: "search", type: "boolean" }],
    });
    const published = await ok("POST", "/v1/offerings", {
      name: `Offering ${counter}`,
      rate_plan_ids: [plan.id],
      trial_days: 0,
      status: "PUBLISHED",
      ...offering,
    });
    const customer = await createCustomer(t, f, { email: `c${counter}@example.com` });
    const subscription = await ok("POST", "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: published.id,
      start_at: NOV.start.toISOString(),
      ...(options.promotionCode ? { promotion_code: options.promotionCode } : {}),
    });
    const wallets = (await ok("GET", `/v1/customers/${customer.id}/wallets`)).data;
    return { customerId: customer.id, subscriptionId: subscription.id, walletId: wallets[0]?.id };
  }

  /** Events in one batch (one group commit), each with its own key. */
  async function meter(customerId: string, unit: string, quantities: string[], keyPrefix?: string) {
    const prefix = keyPrefix ?? `e${++counter}`;
    const response = await as("POST", "/v1/meter/batch", {
      events: quantities.map((quantity, index) => ({
        customer_id: customerId,
        metric_id: unit,
        quantity,
        timestamp: MID_NOV,
        idempotency_key: `${prefix}-${index}`,
      })),
    });
    if (response.statusCode >= 300)
      throw new Error(`meter answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  const wallet = (id: string) => ok("GET", `/v1/wallets/${id}`);

  async function ledger(walletId: string): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | undefined;
    for (;;) {
      const query: Record<string, string> = { limit: "100", ...(cursor ? { starting_after: cursor } : {}) };
      const body = (await t.request("GET", `/v1/wallets/${walletId}/ledger`, { ...f.as, query })).json();
      entries.push(...body.data);
      if (!body.has_more) break;
      cursor = body.data[body.data.length - 1].id;
    }
    return entries;
  }

  const usageDebits = async (walletId: string) =>
    (await ledger(walletId)).filter(
      (entry) => entry.type === "DEBIT" && entry.idempotency_key?.startsWith("usage:"),
    );
  const sum = (entries: Entry[]) => entries.reduce((total, entry) => total + entry.amount, 0);

  async function invoice(subscriptionId: string) {
    const { invoiceId } = await t.context.billing.invoicePeriod(scope, subscriptionId, NOV, {});
    return ok("GET", `/v1/invoices/${invoiceId}`);
  }

  const check = (customerId: string) =>
    as("POST", "/v1/canAccess", { customer_id: customerId, feature: "search" });

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set(MID_NOV);
    f = await sandbox(t);
    scope = { tenantId: f.tenant.id, mode: "test" };
    t.context.wallets.webhooks = recorder;
    await createUnit(t, f, { key: "tokens", aggregation: "SUM" });
    await createUnit(t, f, { key: "calls", aggregation: "COUNT" });
  });
  afterAll(() => t.close());

  it("debits a PREPAID offering's usage as it is metered, rounding the running total once", async () => {
    // 0.001 per token: 13 events of 7 tokens are 0.091 → 9 cents. Rounding each event would be 13.
    const { customerId, subscriptionId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "tokens", unit_price: "0.001" }],
      { billing_mode: "PREPAID", initial_credits: "10.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    for (let batch = 0; batch < 13; batch++) {
      await meter(customerId, "tokens", ["7"]);
      await t.context.prepaidUsage.idle();
    }
    expect((await wallet(walletId)).balance).toBe(1000 - 9);
    const debits = await usageDebits(walletId);
    expect(sum(debits)).toBe(-9);
    expect(debits.every((entry) => entry.bucket === "PROMOTIONAL")).toBe(true);
    expect(await t.context.wallets.verify(scope, walletId)).toEqual([]);

    // The invoice's usage line is exactly what the wallet paid; it charges nothing twice.
    t.clock.set(AFTER_NOV);
    const final = await invoice(subscriptionId);
    t.clock.set(MID_NOV);
    const usage = final.lines.filter((line: { type: string }) => line.type === "USAGE_FEE");
    expect(usage.map((line: { amount: number }) => line.amount)).toEqual([9]);
    expect(final).toMatchObject({ total: 9, credits_applied: 9, amount_due: 0, status: "PAID" });
    expect((await wallet(walletId)).balance).toBe(1000 - 9);
    expect((await ledger(walletId)).filter((entry) => entry.type === "DEBIT")).toHaveLength(debits.length);
  });

  it("debits once whatever is retried: duplicates, a restart on the same database, a re-rating", async () => {
    const { customerId, subscriptionId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.25" }],
      { billing_mode: "PREPAID", initial_credits: "20.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1", "1", "1"], `dup-${customerId}`);
    await t.context.prepaidUsage.idle();
    expect((await wallet(walletId)).balance).toBe(2000 - 100);

    const replay = await meter(customerId, "calls", ["1", "1", "1", "1"], `dup-${customerId}`);
    expect(replay.results.every((result: { status: string }) => result.status === "DUPLICATE")).toBe(true);
    await t.context.prepaidUsage.idle();
    await t.context.wallets.debitMeteredUsage(scope, {
      subscriptionId,
      periodStart: NOV.start,
      periodEnd: NOV.end,
      chargedMinor: 100n,
    });
    expect((await wallet(walletId)).balance).toBe(2000 - 100);

    const restarted = await createContext(testConfig(), t.database, t.clock);
    try {
      await restarted.prepaidUsage.idle();
    } finally {
      await restarted.stop();
    }
    expect((await wallet(walletId)).balance).toBe(2000 - 100);
    expect(await usageDebits(walletId)).toHaveLength(1);
    expect(await t.context.wallets.verify(scope, walletId)).toEqual([]);
  });

  it("refuses canAccess at zero with BLOCK; usage served beyond the balance stays for the invoice", async () => {
    const { customerId, subscriptionId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.50" }],
      { billing_mode: "PREPAID", initial_credits: "1.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    expect((await check(customerId)).statusCode).toBe(200);
    await meter(customerId, "calls", ["1", "1", "1"]);
    await t.context.prepaidUsage.idle();
    expect((await wallet(walletId)).balance).toBe(0);
    const blocked = await check(customerId);
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/wallet-empty`,
      allowed: false,
      decision: "block",
    });
    expect(published.filter((event) => event.data.customer_id === customerId)).toEqual([]);

    t.clock.set(AFTER_NOV);
    const final = await invoice(subscriptionId);
    t.clock.set(MID_NOV);
    // 1.50 of usage: 1.00 paid from the wallet as it was metered, 0.50 left for the invoice.
    expect(final).toMatchObject({ total: 150, credits_applied: 100, amount_due: 50, status: "OPEN" });
    expect(sum(await usageDebits(walletId))).toBe(-100);
    // The wallet paid part of it: voiding would keep those credits with no invoice for them.
    const voided = await t.request("POST", `/v1/invoices/${final.id}/void`, f.as);
    expect(voided.statusCode).toBe(409);
    expect(voided.json().type).toBe(`${TEST_PUBLIC_URL}/problems/invalid-transition`);
    expect((await ledger(walletId)).filter((entry) => entry.idempotency_key?.startsWith("invoice:"))).toEqual(
      [],
    );
  });

  it("allows at zero with ALERT and announces wallet.low_balance once per empty stretch", async () => {
    const { customerId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.50" }],
      {
        billing_mode: "PREPAID",
        initial_credits: "1.00",
        escrow: { low_balance_threshold: "0.50", on_empty: "ALERT" },
      },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1", "1"]);
    await t.context.prepaidUsage.idle();
    expect((await wallet(walletId)).balance).toBe(0);
    expect((await check(customerId)).statusCode).toBe(200);
    await meter(customerId, "calls", ["1"]);
    await t.context.prepaidUsage.idle();
    const alerts = published.filter(
      (event) => event.type === "wallet.low_balance" && event.data.customer_id === customerId,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.data).toMatchObject({
      wallet_id: walletId,
      balance: 0,
      threshold: 50,
      reason: "empty",
      on_empty: "ALERT",
    });
  });

  it("announces the escrow's low-balance threshold once when metered usage crosses it", async () => {
    const { customerId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "1.00" }],
      {
        billing_mode: "PREPAID",
        initial_credits: "10.00",
        escrow: { low_balance_threshold: "5.00", on_empty: "BLOCK" },
      },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1", "1", "1"]); // 6.00 left: above
    await t.context.prepaidUsage.idle();
    await meter(customerId, "calls", ["1", "1"]); // 4.00: crosses
    await t.context.prepaidUsage.idle();
    await meter(customerId, "calls", ["1"]); // 3.00: still below
    await t.context.prepaidUsage.idle();
    const lows = published.filter(
      (event) => event.type === "wallet.low_balance" && event.data.customer_id === customerId,
    );
    expect(lows.map((event) => event.data)).toEqual([
      expect.objectContaining({ balance: 400, threshold: 500, reason: "below_threshold", on_empty: "BLOCK" }),
    ]);
    expect((await check(customerId)).statusCode).toBe(200);
  });

  it("HYBRID: the wallet pays part of the invoice and the invoice carries the rest; a re-run debits once", async () => {
    const other = await sandbox(t);
    const own = f;
    f = other;
    try {
      await createUnit(t, f, { key: "calls", aggregation: "COUNT" });
      const { customerId, subscriptionId, walletId } = await subscribe(
        [
          { model: "FLAT_RATE", flat_amount: "20", timing: "in_arrears" },
          { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.10" },
        ],
        { billing_mode: "HYBRID", initial_credits: "5.00" },
      );
      if (!walletId) throw new Error("initial credits open the wallet");
      await meter(
        customerId,
        "calls",
        Array.from({ length: 30 }, () => "1"),
      );
      await t.context.prepaidUsage.idle();
      expect((await wallet(walletId)).balance).toBe(500 - 300);

      t.clock.set(AFTER_NOV);
      const first = await as("POST", "/v1/bill_runs", { as_of: AFTER_NOV });
      expect(first.statusCode, first.body).toBe(201);
      const second = await as("POST", "/v1/bill_runs", { as_of: AFTER_NOV });
      expect(second.json()).toMatchObject({ invoices_created: 0 });
      const [invoiceId] = first.json().invoice_ids;
      // Invoicing the period again (a retried run) finds it invoiced and moves nothing.
      await t.context.billing.invoicePeriod({ tenantId: f.tenant.id, mode: "test" }, subscriptionId, NOV, {});
      const final = await ok("GET", `/v1/invoices/${invoiceId}`);
      t.clock.set(MID_NOV);
      // 20.00 + 3.00 = 23.00: 3.00 paid as metered, the 2.00 left in the wallet, 18.00 invoiced.
      expect(final).toMatchObject({ total: 2300, credits_applied: 500, amount_due: 1800, status: "OPEN" });
      const settle = final.trace.find((entry: { stage: string }) => entry.stage === "settle");
      expect(settle.amounts).toMatchObject({
        credits_applied: "500",
        amount_due: "1800",
        wallet_debit: "200",
      });
      const entries = await ledger(walletId);
      const invoiceDebits = entries.filter((entry) => entry.idempotency_key === `invoice:${invoiceId}`);
      expect(sum(invoiceDebits)).toBe(-200);
      expect((await wallet(walletId)).balance).toBe(0);
      expect(await t.context.wallets.verify({ tenantId: f.tenant.id, mode: "test" }, walletId)).toEqual([]);
    } finally {
      f = own;
    }
  });

  it("gives back metered debits a discount made unnecessary, so no cent is lost", async () => {
    await ok("POST", "/v1/promotions", { code: "HALFPREPAID", percent_off: "50", duration: "forever" });
    const { customerId, subscriptionId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "1.00" }],
      { billing_mode: "PREPAID", initial_credits: "10.00" },
      { promotionCode: "HALFPREPAID" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1", "1", "1"]);
    await t.context.prepaidUsage.idle();
    expect((await wallet(walletId)).balance).toBe(600);
    t.clock.set(AFTER_NOV);
    const final = await invoice(subscriptionId);
    t.clock.set(MID_NOV);
    expect(final).toMatchObject({ total: 200, credits_applied: 200, amount_due: 0, status: "PAID" });
    const refunds = (await ledger(walletId)).filter(
      (entry) => entry.type === "CREDIT" && entry.amount === 200,
    );
    expect(refunds).toEqual([
      expect.objectContaining({
        bucket: "PROMOTIONAL",
        idempotency_key: `invoice:${final.id}:refund:PROMOTIONAL`,
      }),
    ]);
    expect((await wallet(walletId)).balance).toBe(800);
    expect(await t.context.wallets.verify(scope, walletId)).toEqual([]);
  });

  it("previews at period end what the final prepaid invoice settles, and the preview debits nothing", async () => {
    for (const calls of [0, 7, 31]) {
      t.clock.set(MID_NOV);
      const { customerId, subscriptionId, walletId } = await subscribe(
        [
          { model: "FLAT_RATE", flat_amount: "1.00", timing: "in_arrears" },
          { model: "PER_UNIT", billable_unit: "calls", unit_price: "0.10" },
        ],
        { billing_mode: "PREPAID", initial_credits: "3.00" },
      );
      if (!walletId) throw new Error("initial credits open the wallet");
      if (calls > 0)
        await meter(
          customerId,
          "calls",
          Array.from({ length: calls }, () => "1"),
        );
      await t.context.prepaidUsage.idle();
      t.clock.set(new Date(NOV.end.getTime() - 1));
      const before = (await wallet(walletId)).balance;
      const preview = await ok("POST", "/v1/invoices/preview", { subscription_id: subscriptionId }, 200);
      expect((await wallet(walletId)).balance).toBe(before);
      t.clock.set(AFTER_NOV);
      const final = await invoice(subscriptionId);
      for (const field of ["total", "credits_applied", "amount_due", "trace"]) {
        expect(preview[field], `${field} with ${calls} calls`).toEqual(final[field]);
      }
      expect(final.credits_applied + final.amount_due).toBe(final.total);
    }
    t.clock.set(MID_NOV);
  });

  it("finalises a prepaid draft with the wallet as it is at finalisation", async () => {
    const { customerId, subscriptionId, walletId } = await subscribe(
      [
        { model: "FLAT_RATE", flat_amount: "4.00", timing: "in_arrears" },
        { model: "PER_UNIT", billable_unit: "calls", unit_price: "1.00" },
      ],
      { billing_mode: "PREPAID", initial_credits: "3.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1"]);
    await t.context.prepaidUsage.idle();
    t.clock.set(AFTER_NOV);
    const { invoiceId } = await t.context.billing.draftPeriod(scope, subscriptionId, NOV);
    const draft = await ok("GET", `/v1/invoices/${invoiceId}`);
    expect(draft).toMatchObject({ status: "DRAFT", total: 600, credits_applied: 300, amount_due: 300 });
    await ok("POST", `/v1/wallets/${walletId}/credits`, { amount: 1000, bucket: "CASH" });
    const final = await ok("POST", `/v1/invoices/${invoiceId}/finalize`, undefined, 200);
    t.clock.set(MID_NOV);
    // 2.00 metered + 4.00 from the balance (1.00 left + 10.00 topped up after the draft).
    expect(final).toMatchObject({ total: 600, credits_applied: 600, amount_due: 0, status: "PAID" });
    expect((await wallet(walletId)).balance).toBe(100 + 1000 - 400);
    expect((await as("POST", `/v1/invoices/${invoiceId}/finalize`)).statusCode).toBe(409);
    expect((await wallet(walletId)).balance).toBe(100 + 1000 - 400);
  });

  it("leaves POSTPAID invoices and wallets alone", async () => {
    const { customerId, subscriptionId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "1.00" }],
      { billing_mode: "POSTPAID" },
    );
    const created = await ok("POST", `/v1/customers/${customerId}/wallets`, { currency: "USD" });
    await ok("POST", `/v1/wallets/${created.id}/credits`, { amount: 1000, bucket: "CASH" });
    await meter(customerId, "calls", ["1", "1"]);
    await t.context.prepaidUsage.idle();
    t.clock.set(AFTER_NOV);
    const final = await invoice(subscriptionId);
    t.clock.set(MID_NOV);
    expect(final).toMatchObject({ total: 200, credits_applied: 0, amount_due: 200, status: "OPEN" });
    expect((await wallet(created.id)).balance).toBe(1000);
  });

  it("never debits another tenant's subscription", async () => {
    const { customerId, subscriptionId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "1.00" }],
      { billing_mode: "PREPAID", initial_credits: "5.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    const stranger = await sandbox(t);
    const strangerScope = { tenantId: stranger.tenant.id, mode: "test" as const };
    const input = { subscriptionId, periodStart: NOV.start, periodEnd: NOV.end, chargedMinor: 300n };
    expect(await t.context.wallets.debitMeteredUsage(strangerScope, input)).toBeUndefined();
    expect(await t.context.wallets.invoiceWallet(strangerScope, subscriptionId, NOV.start)).toBeNull();
    expect(await t.context.wallets.debitMeteredUsage({ ...scope, mode: "live" }, input)).toBeUndefined();
    expect((await wallet(walletId)).balance).toBe(500);
    expect(customerId).toMatch(/^cus_/);
  });

  it("never debits more than the charge when two processes meter and debit one period at once", async () => {
    const { customerId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.01" }],
      { billing_mode: "PREPAID", initial_credits: "100.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    const second = await createContext(testConfig(), t.database, t.clock);
    try {
      const events = (process: string, index: number) => [
        {
          customer_id: customerId,
          metric_id: "calls",
          timestamp: MID_NOV,
          idempotency_key: `${process}-${index}`,
        },
      ];
      await Promise.all(
        Array.from({ length: 40 }, (_, index) =>
          (index % 2 === 0 ? t.context : second).metering.ingest(scope, events("p", index), "api"),
        ),
      );
      await Promise.all([t.context.prepaidUsage.idle(), second.prepaidUsage.idle()]);
    } finally {
      await second.stop();
    }
    expect((await wallet(walletId)).balance).toBe(10_000 - 40);
    expect(sum(await usageDebits(walletId))).toBe(-40);
    expect(await t.context.wallets.verify(scope, walletId)).toEqual([]);
  });

  it("debits after a crash what was committed but not yet debited, exactly once", async () => {
    const { customerId, walletId } = await subscribe(
      [{ model: "PER_UNIT", billable_unit: "calls", unit_price: "0.05" }],
      { billing_mode: "PREPAID", initial_credits: "10.00" },
    );
    if (!walletId) throw new Error("initial credits open the wallet");
    await meter(customerId, "calls", ["1", "1"]);
    await t.context.prepaidUsage.idle();
    expect((await wallet(walletId)).balance).toBe(1000 - 10);
    // The debiter stops (as a killed process would) after these events are committed.
    await t.context.prepaidUsage.stop();
    await meter(customerId, "calls", ["1", "1", "1"]);
    expect((await wallet(walletId)).balance).toBe(1000 - 10);
    for (let restart = 0; restart < 2; restart++) {
      const restarted = await createContext(testConfig(), t.database, t.clock);
      try {
        await restarted.prepaidUsage.idle();
      } finally {
        await restarted.stop();
      }
      expect((await wallet(walletId)).balance).toBe(1000 - 25);
    }
    const db: Kysely<Database> = t.database.db;
    const row = await db
      .selectFrom("prepaid_usage")
      .selectAll()
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("customer_id", "=", customerId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ usage_minor: 25n, debited_minor: 25n, debited_promotional: 25n });
    expect(await t.context.wallets.verify(scope, walletId)).toEqual([]);
  });
});
