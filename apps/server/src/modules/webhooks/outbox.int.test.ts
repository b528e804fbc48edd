import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../clock.ts";
import { type AppContext, createContext } from "../../context.ts";
import type { DatabaseHandle } from "../../db/database.ts";
import { migrateToLatest } from "../../db/migrate.ts";
import type { TenantScope } from "../../http/route-config.ts";
import { openTestDatabase, testConfig } from "../../testing/test-app.ts";
import { eventually, TestReceiver } from "./test-receiver.ts";

describe("the webhook outbox", () => {
  let receiver: TestReceiver;
  let database: DatabaseHandle;
  let drop: () => Promise<void>;
  const clock = new ManualClock("2026-11-28T10:00:00Z");
  const contexts: AppContext[] = [];

  async function start(background: boolean): Promise<AppContext> {
    const context = await createContext(testConfig(), database, clock, { background });
    contexts.push(context);
    return context;
  }

  async function stop(context: AppContext): Promise<void> {
    contexts.splice(contexts.indexOf(context), 1);
    await context.stop();
  }

  const deliveries = (endpointId: string) =>
    database.db
      .selectFrom("webhook_deliveries")
      .select(["id", "status", "attempt_count"])
      .where("endpoint_id", "=", endpointId)
      .execute();

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    ({ database, drop } = await openTestDatabase());
    await migrateToLatest(database.db);
  });
  afterAll(async () => {
    for (const context of contexts) await context.stop();
    await drop();
    await receiver.close();
  });

  it("loses no event when the process stops between the commit and the delivery", async () => {
    // The first process commits a change with its event, then stops before anything is sent.
    const first = await start(false);
    const { tenant } = await first.tenants.create({ name: "Restarted" });
    const scope: TenantScope = { tenantId: tenant.id, mode: "test" };
    const { endpoint, secret } = await first.webhooks.create(scope, {
      url: receiver.url("/restart"),
      events: ["api_key.created"],
    });
    const issued = await first.keys.create({
      tenantId: tenant.id,
      mode: "test",
      kind: "secret",
      name: "late",
    });
    expect(await deliveries(endpoint.id)).toMatchObject([{ status: "pending", attempt_count: 0 }]);
    await stop(first);
    expect(receiver.at("/restart")).toEqual([]);

    // A new process on the same database sends it (its sweep runs at start), signed and intact.
    const second = await start(true);
    const [request] = await receiver.waitFor("/restart", 1);
    if (!request) throw new Error("no delivery");
    expect(new Webhook(secret).verify(request.body, request.headers)).toMatchObject({
      type: "api_key.created",
      data: { id: issued.record.id },
    });
    await eventually(
      () => deliveries(endpoint.id),
      (rows) => rows[0]?.status === "succeeded",
    );
    await second.webhooks.sweep();
    expect(receiver.at("/restart")).toHaveLength(1);
    await stop(second);
  });

  it("sends again an attempt abandoned by a dead process once its lease has expired", async () => {
    const context = await start(true);
    const { tenant } = await context.tenants.create({ name: "Abandoned" });
    const scope: TenantScope = { tenantId: tenant.id, mode: "test" };
    receiver.answer("/abandoned", "hang");
    const { endpoint } = await context.webhooks.create(scope, {
      url: receiver.url("/abandoned"),
      events: ["api_key.created"],
    });
    context.webhooks.configure({ timeoutMs: 60_000 });
    await context.keys.create({ tenantId: tenant.id, mode: "test", kind: "secret" });
    // The attempt is under way (the receiver never answers): its lease is held.
    await receiver.waitFor("/abandoned", 1);
    const [held] = await database.db
      .selectFrom("webhook_deliveries")
      .select(["locked_until", "attempt_count"])
      .where("endpoint_id", "=", endpoint.id)
      .execute();
    expect(held?.attempt_count).toBe(0);
    expect(held?.locked_until?.getTime()).toBeGreaterThan(clock.now().getTime());
    // While the lease is held nobody else sends it.
    expect(await context.webhooks.sweep()).toBe(0);
    // The process "dies" mid-attempt (the lease stays); past the lease, another sweep sends again.
    receiver.answer("/abandoned", { status: 200 });
    const lease = held?.locked_until?.getTime() ?? 0;
    clock.set(new Date(lease + 1));
    expect(await context.webhooks.sweep()).toBe(1);
    expect(receiver.at("/abandoned")).toHaveLength(2);
    expect(await deliveries(endpoint.id)).toMatchObject([{ status: "succeeded", attempt_count: 1 }]);
    // The abandoned attempt finally gets a failing answer: it is logged, but it no longer holds the
    // lease, so the state the later attempt wrote stands.
    receiver.release(500);
    await context.webhooks.settle();
    const [delivery] = await deliveries(endpoint.id);
    expect(delivery).toMatchObject({ status: "succeeded", attempt_count: 1 });
    const logged = await database.db
      .selectFrom("webhook_attempts")
      .select(["status_code"])
      .where("delivery_id", "=", delivery?.id ?? "")
      .orderBy("id")
      .execute();
    expect(logged.map((attempt) => attempt.status_code).sort()).toEqual([200, 500]);
    context.webhooks.configure({ timeoutMs: 10_000 });
  });

  it("publishes nothing when the change's transaction rolls back", async () => {
    const context = contexts[0] ?? (await start(true));
    const { tenant } = await context.tenants.create({ name: "Rolled back" });
    const scope: TenantScope = { tenantId: tenant.id, mode: "test" };
    const { endpoint } = await context.webhooks.create(scope, {
      url: receiver.url("/rolled-back"),
      events: ["*"],
    });
    await expect(
      database.db.transaction().execute(async (trx) => {
        await context.webhooks.publish(trx, scope, "invoice.paid", { id: "inv_never" });
        throw new Error("the change failed");
      }),
    ).rejects.toThrow("the change failed");
    expect(await deliveries(endpoint.id)).toEqual([]);
    await database.db
      .transaction()
      .execute((trx) => context.webhooks.publish(trx, scope, "invoice.paid", { id: "inv_committed" }));
    const [request] = await receiver.waitFor("/rolled-back", 1);
    expect(JSON.parse(request?.body ?? "{}")).toMatchObject({
      type: "invoice.paid",
      data: { id: "inv_committed" },
    });
    await context.webhooks.sweep();
    expect(receiver.at("/rolled-back")).toHaveLength(1);
  });

  it("commits the change even when the queue cannot take the delivery job, and the sweep sends it", async () => {
    const context = contexts[0] ?? (await start(true));
    const { tenant } = await context.tenants.create({ name: "Queue down" });
    const scope: TenantScope = { tenantId: tenant.id, mode: "test" };
    const { endpoint } = await context.webhooks.create(scope, {
      url: receiver.url("/queue-down"),
      events: ["api_key.created"],
    });
    await context.jobs.stop();
    const issued = await context.keys.create({ tenantId: tenant.id, mode: "test", kind: "secret" });
    expect(context.keys.authenticate(issued.secret)?.id).toBe(issued.record.id);
    expect(await deliveries(endpoint.id)).toHaveLength(1);
    await context.webhooks.sweep();
    const [request] = await receiver.waitFor("/queue-down", 1);
    expect(JSON.parse(request?.body ?? "{}")).toMatchObject({ data: { id: issued.record.id } });
  });
});
