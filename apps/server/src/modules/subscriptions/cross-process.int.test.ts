import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppContext } from "../../context.ts";
import { testDatabaseKind } from "../../testing/test-app.ts";
import {
  eventually,
  type TwoProcesses,
  tenantWithOffering,
  twoProcesses,
} from "../../testing/two-processes.ts";
import type { Subscription } from "./domain/subscription.ts";

// Two API processes on one PostgreSQL: the edge of one sees subscriptions the other changes.
describe.skipIf(testDatabaseKind() !== "postgres")("subscriptions across processes", () => {
  let first: AppContext;
  let second: AppContext;
  let processes: TwoProcesses;

  beforeAll(async () => {
    processes = await twoProcesses(process.env.DATABASE_URL ?? "");
    ({ first, second } = processes);
  });
  afterAll(() => processes.close());

  it("tells another process's directory and listeners of every change", async () => {
    const { scope, customer, offering } = await tenantWithOffering(first, "Cross Process Subscriptions", [
      { model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" },
    ]);
    const heard: Subscription[] = [];
    second.subscriptions.onChange((subscription) => heard.push(subscription));

    const subscription = await first.subscriptions.create(scope, {
      customerId: customer.id,
      offeringId: offering.id,
    });
    expect(
      await eventually(() => second.subscriptions.listForCustomerCached(scope, customer.id).length === 1),
    ).toBe(true);
    await first.subscriptions.cancel(scope, subscription.id);
    expect(
      await eventually(() => second.subscriptions.getCached(scope, subscription.id)?.status === "CANCELLED"),
    ).toBe(true);
    expect(heard.map((item) => item.status)).toEqual(["ACTIVE", "CANCELLED"]);
  });
});
