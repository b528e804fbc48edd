import { describe, expect, it } from "vitest";
import { applyClosedPeriodPayload, closedPeriodPayloads } from "./closed-period-feed.ts";
import { ClosedPeriods, type PeriodClose } from "./closed-periods.ts";

const scope = { tenantId: "ten_feed", mode: "live" as const };
const october = { start: new Date("2026-10-28T00:00:00Z"), end: new Date("2026-11-28T00:00:00Z") };
const unitId = (n: number) => `bu_${String(n).padStart(26, "0")}`;

describe("closed period notifications", () => {
  it("carries a bill run's periods in payloads PostgreSQL accepts, and closes every one of them", () => {
    const closes: PeriodClose[] = Array.from({ length: 2_000 }, (_, n) => ({
      customerId: `cus_${String(n).padStart(26, "0")}`,
      period: october,
      unitIds: [unitId(1), unitId(2)],
    }));
    // A plan billing 250 units travels in several entries.
    closes.push({
      customerId: "cus_many_units",
      period: october,
      unitIds: Array.from({ length: 250 }, (_, n) => unitId(n)),
    });
    const payloads = closedPeriodPayloads(scope, closes);
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(8_000);

    const heard = new ClosedPeriods();
    for (const payload of payloads) applyClosedPeriodPayload(heard, payload);
    const inside = new Date("2026-11-20T12:00:00Z");
    for (const { customerId, unitIds } of closes) {
      for (const id of unitIds) expect(heard.isClosed(scope, customerId, id, inside)).toBe(true);
    }
    expect(heard.isClosed(scope, "cus_many_units", unitId(249), october.end)).toBe(false);
    expect(heard.isClosed({ ...scope, mode: "test" }, "cus_many_units", unitId(0), inside)).toBe(false);
  });

  it("ignores a payload that is not one of its own", () => {
    const heard = new ClosedPeriods();
    for (const payload of [
      "not json",
      "null",
      '{"tenant":"ten_feed","mode":"sandbox","periods":[["cus_1",0,1,["bu_1"]]]}',
      '{"tenant":"ten_feed","mode":"live","periods":[["cus_1","x",1,["bu_1"]],["cus_1",0,1,[7]]]}',
    ]) {
      expect(() => applyClosedPeriodPayload(heard, payload)).not.toThrow();
    }
    expect(heard.isClosed(scope, "cus_1", "bu_1", new Date(0))).toBe(false);
  });
});
