import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, TEST_PUBLIC_URL, type TestApp } from "../../testing/test-app.ts";

describe("wallets", () => {
  let t: TestApp;
  let f: Fixture;
  const scope = () => ({ tenantId: f.tenant.id, mode: "test" as const });
  const as = (method: "GET" | "POST" | "PUT", url: string, body?: unknown) =>
    t.request(method, url, { ...f.as, body });

  async function ok(
    method: "GET" | "POST" | "PUT",
    url: string,
    body?: unknown,
    status = method === "POST" ? 201 : 200,
  ) {
    const response = await as(method, url, body);
    if (response.statusCode !== status)
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  /** A customer with a USD wallet holding these credits. */
  async function funded(credits: { amount: number; bucket?: string; expires_at?: string }[]) {
    const customer = await createCustomer(t, f);
    const wallet = await ok("POST", `/v1/customers/${customer.id}/wallets`, { currency: "USD" });
    for (const credit of credits) await ok("POST", `/v1/wallets/${wallet.id}/credits`, credit);
    return { customerId: customer.id as string, walletId: wallet.id as string };
  }

  async function ledgerSum(walletId: string): Promise<{ sum: number; entries: Record<string, unknown>[] }> {
    const entries: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (;;) {
      const query: Record<string, string> = { limit: "100", ...(cursor ? { starting_after: cursor } : {}) };
      const response = await t.request("GET", `/v1/wallets/${walletId}/ledger`, { ...f.as, query });
      const body = response.json();
      entries.push(...body.data);
      if (!body.has_more) break;
      cursor = body.data[body.data.length - 1].id;
    }
    return { sum: entries.reduce((total, entry) => total + (entry.amount as number), 0), entries };
  }

  const debit = (customerId: string, amount: number, key: string) =>
    as("POST", "/v1/wallets/debit", {
      customer_id: customerId,
      amount,
      currency: "USD",
      strategy: "WATERFALL",
      idempotency_key: key,
    });

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set("2026-11-15T12:00:00Z");
    f = await sandbox(t);
  });
  afterAll(() => t.close());

  it("opens one wallet per customer and currency and lists it in minor units", async () => {
    const customer = await createCustomer(t, f);
    const created = await as("POST", `/v1/customers/${customer.id}/wallets`, { currency: "USD" });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      object: "wallet",
      currency: "USD",
      balance: 0,
      held: 0,
      buckets: { PROMOTIONAL: 0, BONUS: 0, CASH: 0 },
    });
    expect(created.json().id).toMatch(/^wal_/);
    const again = await as("POST", `/v1/customers/${customer.id}/wallets`, { currency: "USD" });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(created.json().id);
    await ok("POST", `/v1/customers/${customer.id}/wallets`, { currency: "EUR" });
    const listed = await ok("GET", `/v1/customers/${customer.id}/wallets`);
    expect(listed.data.map((wallet: { currency: string }) => wallet.currency)).toEqual(["EUR", "USD"]);
  });

  it("debits in the waterfall order promotional → bonus → cash, and the balance is the sum of the ledger", async () => {
    const { customerId, walletId } = await funded([
      { amount: 1000, bucket: "CASH" },
      { amount: 300, bucket: "BONUS" },
      { amount: 200, bucket: "PROMOTIONAL" },
    ]);
    const response = await debit(customerId, 600, "waterfall-1");
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({
      object: "wallet_debit",
      amount: 600,
      strategy: "WATERFALL",
      balance_after: 900,
    });
    expect(
      body.entries.map((entry: { bucket: string; amount: number }) => [entry.bucket, entry.amount]),
    ).toEqual([
      ["PROMOTIONAL", -200],
      ["BONUS", -300],
      ["CASH", -100],
    ]);
    const [wallet] = (await ok("GET", `/v1/customers/${customerId}/wallets`)).data;
    expect(wallet).toMatchObject({ balance: 900, held: 0, buckets: { PROMOTIONAL: 0, BONUS: 0, CASH: 900 } });
    const { sum, entries } = await ledgerSum(walletId);
    expect(sum).toBe(900);
    expect(entries[0]).toMatchObject({ type: "DEBIT", balance_after: 900, idempotency_key: "waterfall-1" });
    expect(await t.context.wallets.verify(scope(), walletId)).toEqual([]);
  });

  it("replays a debit with the same key (same entries) and refuses the key with another amount (409)", async () => {
    const { customerId } = await funded([{ amount: 500 }]);
    const first = await debit(customerId, 120, "order-42");
    const replay = await debit(customerId, 120, "order-42");
    expect(replay.statusCode).toBe(201);
    expect(replay.json()).toEqual(first.json());
    const [wallet] = (await ok("GET", `/v1/customers/${customerId}/wallets`)).data;
    expect(wallet.balance).toBe(380);
    const conflict = await debit(customerId, 121, "order-42");
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().type).toBe(`${TEST_PUBLIC_URL}/problems/idempotency-key-reused`);
  });

  it("refuses a debit the spendable balance cannot cover with 422 insufficient-funds", async () => {
    const { customerId } = await funded([{ amount: 100 }]);
    const response = await debit(customerId, 101, "too-much");
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/insufficient-funds`,
      errors: [{ field: "amount" }],
    });
    const noWallet = await createCustomer(t, f);
    expect((await debit(noWallet.id, 1, "no-wallet")).statusCode).toBe(422);
    const [wallet] = (await ok("GET", `/v1/customers/${customerId}/wallets`)).data;
    expect(wallet.balance).toBe(100);
  });

  it("lets exactly 20 of 50 concurrent debits of 10 through a balance of 200", async () => {
    const { customerId, walletId } = await funded([
      { amount: 120, bucket: "CASH" },
      { amount: 80, bucket: "BONUS" },
    ]);
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) => debit(customerId, 10, `concurrent-${customerId}-${index}`)),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 201)).toHaveLength(20);
    expect(statuses.filter((status) => status === 422)).toHaveLength(30);
    const wallet = await ok("GET", `/v1/wallets/${walletId}`);
    expect(wallet).toMatchObject({ balance: 0, buckets: { PROMOTIONAL: 0, BONUS: 0, CASH: 0 } });
    expect((await ledgerSum(walletId)).sum).toBe(0);
    expect(await t.context.wallets.verify(scope(), walletId)).toEqual([]);
  });

  it("reserves with a hold, commits part of it and gives the rest back; a release gives all of it back", async () => {
    const { customerId, walletId } = await funded([{ amount: 1000 }]);
    const hold = await ok("POST", `/v1/wallets/${walletId}/holds`, { amount: 400, idempotency_key: "h-1" });
    expect(hold).toMatchObject({ object: "hold", status: "HELD", amount: 400 });
    expect(hold.id).toMatch(/^hold_/);
    expect(await ok("GET", `/v1/wallets/${walletId}`)).toMatchObject({ balance: 600, held: 400 });
    // Held money cannot be debited.
    expect((await debit(customerId, 601, "over-hold")).statusCode).toBe(422);
    const committed = await ok("POST", `/v1/holds/${hold.id}/commit`, { amount: 250 }, 200);
    expect(committed).toMatchObject({ status: "COMMITTED", committed_amount: 250 });
    expect(await ok("GET", `/v1/wallets/${walletId}`)).toMatchObject({ balance: 750, held: 0 });
    expect((await as("POST", `/v1/holds/${hold.id}/release`)).statusCode).toBe(409);

    const second = await ok("POST", `/v1/wallets/${walletId}/holds`, { amount: 700, idempotency_key: "h-2" });
    const replay = await ok("POST", `/v1/wallets/${walletId}/holds`, { amount: 700, idempotency_key: "h-2" });
    expect(replay.id).toBe(second.id);
    expect(
      (await as("POST", `/v1/wallets/${walletId}/holds`, { amount: 5, idempotency_key: "h-2" })).statusCode,
    ).toBe(409);
    expect(await ok("POST", `/v1/holds/${second.id}/release`, undefined, 200)).toMatchObject({
      status: "RELEASED",
    });
    expect(await ok("GET", `/v1/wallets/${walletId}`)).toMatchObject({ balance: 750, held: 0 });
    const { sum, entries } = await ledgerSum(walletId);
    expect(sum).toBe(750);
    expect(entries.map((entry) => entry.type).reverse()).toEqual([
      "CREDIT",
      "HOLD",
      "RELEASE",
      "DEBIT",
      "HOLD",
      "RELEASE",
    ]);
    expect(await t.context.wallets.verify(scope(), walletId)).toEqual([]);
  });

  it("writes off expired credit as an EXPIRY entry once, and never spends it", async () => {
    const { customerId, walletId } = await funded([
      { amount: 300, bucket: "PROMOTIONAL", expires_at: "2026-11-20T00:00:00Z" },
      { amount: 100, bucket: "CASH" },
    ]);
    await ok("POST", "/v1/wallets/debit", {
      customer_id: customerId,
      amount: 50,
      currency: "USD",
      strategy: "WATERFALL",
      idempotency_key: `before-expiry-${walletId}`,
    });
    t.clock.set("2026-11-21T00:00:00Z");
    await t.context.wallets.expire();
    await t.context.wallets.expire();
    const wallet = await ok("GET", `/v1/wallets/${walletId}`);
    expect(wallet).toMatchObject({ balance: 100, buckets: { PROMOTIONAL: 0, CASH: 100 } });
    const { sum, entries } = await ledgerSum(walletId);
    expect(sum).toBe(100);
    expect(entries.filter((entry) => entry.type === "EXPIRY")).toEqual([
      expect.objectContaining({ bucket: "PROMOTIONAL", amount: -250, balance_after: 100 }),
    ]);
    expect((await debit(customerId, 101, `after-expiry-${walletId}`)).statusCode).toBe(422);
    const past = await as("POST", `/v1/wallets/${walletId}/credits`, {
      amount: 5,
      expires_at: "2026-11-01T00:00:00Z",
    });
    expect(past.statusCode).toBe(422);
    t.clock.set("2026-11-15T12:00:00Z");
  });

  it("records exactly one top-up request per crossing below the threshold", async () => {
    const { customerId, walletId } = await funded([{ amount: 1000 }]);
    const configured = await ok("PUT", `/v1/wallets/${walletId}/auto_top_up`, {
      threshold: 500,
      amount: 2000,
      bucket: "CASH",
      enabled: true,
    });
    expect(configured.auto_top_up).toEqual({ enabled: true, threshold: 500, amount: 2000, bucket: "CASH" });
    const requests = async () => (await ok("GET", `/v1/wallets/${walletId}/top_up_requests`)).data;
    await debit(customerId, 400, `tu-1-${walletId}`);
    expect(await requests()).toHaveLength(0);
    await debit(customerId, 200, `tu-2-${walletId}`); // 400 left: crosses
    await debit(customerId, 100, `tu-3-${walletId}`); // still below: nothing new
    await debit(customerId, 100, `tu-2-${walletId}`).catch(() => undefined); // a replayed key is no crossing
    expect(await requests()).toEqual([
      expect.objectContaining({
        object: "top_up_request",
        amount: 2000,
        bucket: "CASH",
        status: "PENDING",
        balance_at_trigger: 400,
      }),
    ]);
    await ok("POST", `/v1/wallets/${walletId}/credits`, { amount: 700 }); // back to 1000: re-armed
    await debit(customerId, 600, `tu-4-${walletId}`); // crosses again
    expect(await requests()).toHaveLength(2);
  });

  it("answers 404 for another tenant's wallets, holds and customers", async () => {
    const { customerId, walletId } = await funded([{ amount: 100 }]);
    const hold = await ok("POST", `/v1/wallets/${walletId}/holds`, {
      amount: 10,
      idempotency_key: "x-tenant",
    });
    const other = await sandbox(t);
    const asOther = (method: "GET" | "POST" | "PUT", url: string, body?: unknown) =>
      t.request(method, url, { ...other.as, body });
    expect((await asOther("GET", `/v1/wallets/${walletId}`)).statusCode).toBe(404);
    expect((await asOther("GET", `/v1/wallets/${walletId}/ledger`)).statusCode).toBe(404);
    expect((await asOther("POST", `/v1/wallets/${walletId}/credits`, { amount: 5 })).statusCode).toBe(404);
    expect((await asOther("POST", `/v1/wallets/${walletId}/holds`, { amount: 5 })).statusCode).toBe(404);
    expect((await asOther("POST", `/v1/holds/${hold.id}/commit`, {})).statusCode).toBe(404);
    expect((await asOther("GET", `/v1/customers/${customerId}/wallets`)).statusCode).toBe(404);
    const live = await t.request("GET", `/v1/wallets/${walletId}`, {
      key: f.tenant.liveKey,
      tenant: f.tenant.id,
    });
    expect(live.statusCode).toBe(404);
    const otherDebit = await asOther("POST", "/v1/wallets/debit", {
      customer_id: customerId,
      amount: 1,
      currency: "USD",
      strategy: "WATERFALL",
      idempotency_key: "x-tenant",
    });
    expect(otherDebit.statusCode).toBe(422);
    expect(otherDebit.json().type).toBe(`${TEST_PUBLIC_URL}/problems/unknown-customer`);
  });

  it("grants an offering's initial credits once and blocks a prepaid customer whose wallet runs dry", async () => {
    await createUnit(t, f, { key: "api_calls", aggregation: "COUNT" });
    const plan = await ok("POST", "/v1/rate_plans", {
      name: "Prepaid",
      currency: "USD",
      billing_period: { interval: "month", count: 1 },
      items: [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.01" }],
      entitlements: [{ feature: "sso", type: "boolean" }],
    });
    const offering = await ok("POST", "/v1/offerings", {
      name: "Prepaid",
      rate_plan_ids: [plan.id],
      billing_mode: "PREPAID",
      initial_credits: "25.00",
      trial_days: 0,
      status: "PUBLISHED",
    });
    const customer = await createCustomer(t, f);
    const subscription = await ok("POST", "/v1/subscriptions", {
      customer_id: customer.id,
      offering_id: offering.id,
    });
    const [wallet] = (await ok("GET", `/v1/customers/${customer.id}/wallets`)).data;
    expect(wallet).toMatchObject({ currency: "USD", balance: 2500, buckets: { PROMOTIONAL: 2500 } });
    const { entries } = await ledgerSum(wallet.id);
    expect(entries).toEqual([
      expect.objectContaining({ type: "CREDIT", amount: 2500, idempotency_key: subscription.id }),
    ]);
    // Granting again under the subscription id changes nothing.
    await t.context.wallets.grantInitialCredits(scope(), customer.id, "USD", "25.00", subscription.id);
    expect((await ok("GET", `/v1/wallets/${wallet.id}`)).balance).toBe(2500);

    const check = () => as("POST", "/v1/canAccess", { customer_id: customer.id, feature: "sso" });
    expect((await check()).statusCode).toBe(200);
    expect((await debit(customer.id, 2500, `drain-${customer.id}`)).statusCode).toBe(201);
    const blocked = await check();
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json()).toMatchObject({
      type: `${TEST_PUBLIC_URL}/problems/wallet-empty`,
      allowed: false,
      decision: "block",
    });
    await ok("POST", `/v1/wallets/${wallet.id}/credits`, { amount: 100, bucket: "CASH" });
    expect((await check()).statusCode).toBe(200);
  });

  it("needs the wallets scopes", async () => {
    const key = await ok("POST", "/v1/api_keys", { mode: "test", scopes: ["customers:read"] });
    const response = await t.request("GET", "/v1/wallets/wal_nope", { key: key.key, tenant: f.tenant.id });
    expect(response.statusCode).toBe(403);
  });
});
