import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  alertsEmpty,
  lowBalanceReason,
  meteredDebitOf,
  refundByBucket,
  spendableOf,
  uncoveredOf,
  usageDebitKey,
} from "./prepaid.ts";

describe("prepaid usage (pure)", () => {
  it("debits the change in the rated charge, at most the spendable balance, never a decrease", () => {
    expect(meteredDebitOf({ chargedMinor: 150n, debitedMinor: 100n, spendableMinor: 1000n })).toBe(50n);
    expect(meteredDebitOf({ chargedMinor: 150n, debitedMinor: 100n, spendableMinor: 20n })).toBe(20n);
    expect(meteredDebitOf({ chargedMinor: 90n, debitedMinor: 100n, spendableMinor: 1000n })).toBe(0n);
    expect(meteredDebitOf({ chargedMinor: 150n, debitedMinor: 100n, spendableMinor: 0n })).toBe(0n);
  });

  it("debits in total exactly the last rated charge when the wallet can pay, whatever the steps (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: 10_000n }), { maxLength: 30 }), (increments) => {
        let charged = 0n;
        let debited = 0n;
        for (const increment of increments) {
          charged += increment;
          debited += meteredDebitOf({
            chargedMinor: charged,
            debitedMinor: debited,
            spendableMinor: 10n ** 9n,
          });
        }
        expect(debited).toBe(charged);
      }),
    );
  });

  it("reports usage the wallet did not cover", () => {
    expect(uncoveredOf({ usageMinor: 150n, debitedMinor: 100n })).toBe(50n);
    expect(uncoveredOf({ usageMinor: 90n, debitedMinor: 100n })).toBe(0n);
  });

  it("alerts when a debit empties the wallet, or when usage first goes uncovered on an empty one", () => {
    const base = { uncoveredBefore: 0n, uncoveredAfter: 0n };
    expect(alertsEmpty({ ...base, balanceBefore: 30n, balanceAfter: 0n })).toBe(true);
    expect(alertsEmpty({ ...base, balanceBefore: 30n, balanceAfter: 5n })).toBe(false);
    expect(
      alertsEmpty({ balanceBefore: 0n, balanceAfter: 0n, uncoveredBefore: 0n, uncoveredAfter: 7n }),
    ).toBe(true);
    expect(
      alertsEmpty({ balanceBefore: 0n, balanceAfter: 0n, uncoveredBefore: 7n, uncoveredAfter: 9n }),
    ).toBe(false);
  });

  it("announces an empty ALERT wallet, else a downward crossing of the escrow threshold, once", () => {
    const move = { uncoveredBefore: 0n, uncoveredAfter: 0n, thresholdMinor: 500n };
    expect(lowBalanceReason({ ...move, onEmpty: "ALERT", balanceBefore: 600n, balanceAfter: 0n })).toBe(
      "empty",
    );
    expect(lowBalanceReason({ ...move, onEmpty: "BLOCK", balanceBefore: 600n, balanceAfter: 0n })).toBe(
      "below_threshold",
    );
    expect(lowBalanceReason({ ...move, onEmpty: "ALERT", balanceBefore: 600n, balanceAfter: 400n })).toBe(
      "below_threshold",
    );
    expect(
      lowBalanceReason({ ...move, onEmpty: "ALERT", balanceBefore: 400n, balanceAfter: 300n }),
    ).toBeNull();
    expect(
      lowBalanceReason({ ...move, onEmpty: "BLOCK", balanceBefore: 900n, balanceAfter: 600n }),
    ).toBeNull();
  });

  it("gives back cash first, then bonus, then promotional, never more than each bucket gave", () => {
    const debited = { PROMOTIONAL: 500n, BONUS: 100n, CASH: 50n };
    expect(refundByBucket(debited, 30n)).toEqual([{ bucket: "CASH", amount: 30n }]);
    expect(refundByBucket(debited, 400n)).toEqual([
      { bucket: "CASH", amount: 50n },
      { bucket: "BONUS", amount: 100n },
      { bucket: "PROMOTIONAL", amount: 250n },
    ]);
    expect(() => refundByBucket(debited, 651n)).toThrow();
  });

  it("counts only unexpired lots as spendable", () => {
    const now = new Date("2026-11-10T00:00:00Z");
    const lots = [
      { remaining: 100n, expiresAt: null },
      { remaining: 40n, expiresAt: new Date("2026-11-09T00:00:00Z") },
      { remaining: 5n, expiresAt: new Date("2026-11-11T00:00:00Z") },
    ];
    expect(spendableOf(lots, now)).toBe(105n);
  });

  it("keys a metered debit by the period and the running total it reaches", () => {
    const start = new Date("2026-11-01T00:00:00Z");
    expect(usageDebitKey("sub_1", start, 42n)).toBe("usage:sub_1:2026-11-01T00:00:00.000Z:42");
  });
});
