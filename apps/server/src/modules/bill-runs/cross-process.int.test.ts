import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppContext } from "../../context.ts";
import { testDatabaseKind } from "../../testing/test-app.ts";
import {
  eventually,
  type TwoProcesses,
  tenantWithOffering,
  twoProcesses,
} from "../../testing/two-processes.ts";
import type { BillableUnit } from "../catalog/domain/billable-unit.ts";

// Two API processes on one PostgreSQL: a period one of them invoices is closed in the other too.
describe.skipIf(testDatabaseKind() !== "postgres")("closed periods across processes", () => {
  let first: AppContext;
  let second: AppContext;
  let processes: TwoProcesses;

  beforeAll(async () => {
    processes = await twoProcesses(process.env.DATABASE_URL ?? "");
    ({ first, second } = processes);
    processes.clock.set("2026-11-28T10:00:00Z");
  });
  afterAll(() => processes.close());

  it("keeps an event for reconciliation in a process that did not run the bill run", async () => {
    const { scope, customer, offering, units } = await tenantWithOffering(
      first,
      "Cross Process Bill Runs",
      [{ model: "PER_UNIT", billable_unit: "api_calls", unit_price: "0.01" }],
      [{ key: "api_calls", name: "API calls", unitLabel: "calls", aggregation: "COUNT" }],
    );
    const unit = units[0] as BillableUnit;
    await first.subscriptions.create(scope, {
      customerId: customer.id,
      offeringId: offering.id,
      startAt: new Date("2026-10-28T00:00:00Z"),
    });
    const inInvoicedPeriod = new Date("2026-11-20T12:00:00Z");
    const closedInSecond = () =>
      second.billRuns.closedPeriods.isClosed(scope, customer.id, unit.id, inInvoicedPeriod);
    // The second process has heard of everything it needs to meter for this customer.
    expect(
      await eventually(() => second.subscriptions.listForCustomerCached(scope, customer.id).length === 1),
    ).toBe(true);
    expect(closedInSecond()).toBe(false);

    const run = await first.billRuns.startRun(scope, { execution: "inline" });
    expect(run).toMatchObject({ status: "COMPLETED", invoicesCreated: 1 });
    expect(await eventually(closedInSecond)).toBe(true);

    const late = await second.metering.ingestOne(
      scope,
      { metric_id: "api_calls", customer_id: customer.id, timestamp: inInvoicedPeriod.toISOString() },
      "api",
    );
    expect(late.flags).toEqual(expect.arrayContaining(["LATE", "RECONCILIATION"]));
  });
});
