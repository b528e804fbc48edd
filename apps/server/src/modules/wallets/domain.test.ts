import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Allocation,
  allocateWaterfall,
  autoTopUpAfter,
  type Bucket,
  buckets,
  compareLots,
  emptyBuckets,
  LedgerBatch,
  type LedgerTotals,
  type Lot,
  ledgerProblems,
  type NewEntry,
} from "./domain.ts";

const start = new Date("2026-01-01T00:00:00Z");
const zero: LedgerTotals = { balance: 0n, held: 0n, buckets: emptyBuckets(), entryCount: 0n };

function lot(id: string, bucket: Bucket, remaining: bigint, expiresAt: string | null = null): Lot {
  return {
    id,
    bucket,
    amount: remaining,
    remaining,
    expiresAt: expiresAt ? new Date(expiresAt) : null,
    createdAt: start,
  };
}

describe("waterfall allocation", () => {
  it("takes promotional, then bonus, then cash, and the soonest-expiring lot of a bucket first", () => {
    const lots = [
      lot("a", "CASH", 100n),
      lot("b", "BONUS", 30n, "2026-03-01T00:00:00Z"),
      lot("c", "PROMOTIONAL", 10n),
      lot("d", "BONUS", 20n, "2026-02-01T00:00:00Z"),
    ];
    expect(allocateWaterfall(lots, 70n, start)).toEqual([
      { lotId: "c", bucket: "PROMOTIONAL", amount: 10n },
      { lotId: "d", bucket: "BONUS", amount: 20n },
      { lotId: "b", bucket: "BONUS", amount: 30n },
      { lotId: "a", bucket: "CASH", amount: 10n },
    ]);
  });

  it("never spends an expired lot and refuses what the rest cannot cover", () => {
    const lots = [lot("a", "PROMOTIONAL", 50n, "2026-01-01T00:00:00Z"), lot("b", "CASH", 10n)];
    expect(allocateWaterfall(lots, 10n, start)).toEqual([{ lotId: "b", bucket: "CASH", amount: 10n }]);
    expect(allocateWaterfall(lots, 11n, start)).toBeUndefined();
  });
});

describe("auto top-up", () => {
  const config = { enabled: true, threshold: 100n, amount: 500n, bucket: "CASH" as const };

  it("requests one top-up per downward crossing and re-arms once the balance is back", () => {
    expect(autoTopUpAfter(config, true, 90n, true)).toEqual({ request: true, armed: false });
    expect(autoTopUpAfter(config, false, 50n, true)).toEqual({ request: false, armed: false });
    expect(autoTopUpAfter(config, false, 100n, false)).toEqual({ request: false, armed: true });
    expect(autoTopUpAfter(config, true, 40n, true)).toEqual({ request: true, armed: false });
  });

  it("requests nothing when disabled, on a credit, or without a rule", () => {
    expect(autoTopUpAfter({ ...config, enabled: false }, true, 10n, true).request).toBe(false);
    expect(autoTopUpAfter(config, true, 10n, false).request).toBe(false);
    expect(autoTopUpAfter(null, true, 0n, true).request).toBe(false);
  });
});

// ---- Property: a simulated wallet under random movements and clock advances ----------------------

type Operation =
  | { kind: "credit"; bucket: Bucket; amount: bigint; expiresInMs: number | null }
  | { kind: "debit"; amount: bigint }
  | { kind: "hold"; amount: bigint }
  | { kind: "commit"; pick: number; fraction: number }
  | { kind: "release"; pick: number }
  | { kind: "advance"; ms: number };

const bucketArbitrary = fc.constantFrom(...buckets);
const amount = fc.bigInt({ min: 1n, max: 500n });
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    kind: fc.constant("credit" as const),
    bucket: bucketArbitrary,
    amount,
    expiresInMs: fc.option(fc.integer({ min: 1, max: 10 * 86_400_000 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant("debit" as const), amount }),
  fc.record({ kind: fc.constant("hold" as const), amount }),
  fc.record({
    kind: fc.constant("commit" as const),
    pick: fc.nat(),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 3 * 86_400_000 }) }),
);

/** Lots that could have paid, ranked before the one the debit drew on last, must be empty after it. */
function respectsWaterfall(before: readonly Lot[], allocations: readonly Allocation[], now: Date): boolean {
  const last = allocations[allocations.length - 1];
  if (!last) return true;
  const lastLot = before.find((candidate) => candidate.id === last.lotId);
  if (!lastLot) return false;
  return before
    .filter((candidate) => compareLots(candidate, lastLot) < 0)
    .filter((candidate) => candidate.expiresAt === null || candidate.expiresAt > now)
    .every((candidate) => {
      const taken = allocations.find((allocation) => allocation.lotId === candidate.id)?.amount ?? 0n;
      return candidate.remaining === taken;
    });
}

describe("the ledger under random movements", () => {
  it("keeps balance = sum of entries, never overdraws, and debits in waterfall order", () => {
    fc.assert(
      fc.property(fc.array(operationArbitrary, { maxLength: 60 }), (operations) => {
        let now = start;
        let totals = zero;
        let lots: Lot[] = [];
        const entries: NewEntry[] = [];
        const holds: { id: string; allocations: Allocation[]; amount: bigint }[] = [];
        let counter = 0;
        const nextId = () => `id_${String(counter++).padStart(6, "0")}`;
        for (const operation of operations) {
          const batch = new LedgerBatch(totals, lots, nextId);
          batch.expire(now);
          if (operation.kind === "credit") {
            const expiresAt =
              operation.expiresInMs === null ? null : new Date(now.getTime() + operation.expiresInMs);
            batch.credit({
              id: nextId(),
              bucket: operation.bucket,
              amount: operation.amount,
              remaining: operation.amount,
              expiresAt,
              createdAt: now,
            });
          } else if (operation.kind === "debit") {
            const before = batch.lots;
            const allocations = allocateWaterfall(before, operation.amount, now);
            const debited = batch.debit(operation.amount, now);
            expect(debited === undefined).toBe(allocations === undefined);
            if (allocations) expect(respectsWaterfall(before, allocations, now)).toBe(true);
            if (!debited) expect(batch.totals.balance).toBeLessThan(operation.amount);
          } else if (operation.kind === "hold") {
            const id = nextId();
            const held = batch.hold(id, operation.amount, now);
            if (held) holds.push({ id, allocations: held.allocations, amount: operation.amount });
          } else if (operation.kind === "commit" || operation.kind === "release") {
            const [hold] = holds.splice(operation.pick % Math.max(holds.length, 1), 1);
            if (hold) {
              const committed =
                operation.kind === "commit"
                  ? (hold.amount * BigInt(Math.round(operation.fraction * 1000))) / 1000n
                  : 0n;
              batch.settleHold(hold.id, hold.allocations, committed);
            }
          } else {
            now = new Date(now.getTime() + operation.ms);
          }
          batch.expire(now);
          entries.push(...batch.entries);
          totals = batch.totals;
          lots = batch.lots;
          const openHolds = holds.reduce((total, hold) => total + hold.amount, 0n);
          expect(ledgerProblems(entries, totals, openHolds, lots)).toEqual([]);
          expect(totals.balance).toBeGreaterThanOrEqual(0n);
          const sum = entries.reduce((total, entry) => total + entry.amount, 0n);
          expect(sum).toBe(totals.balance);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("writes off only what is left of a lot, once, when it expires", () => {
    const batch = new LedgerBatch(
      zero,
      [],
      (() => {
        let n = 0;
        return () => `e${n++}`;
      })(),
    );
    batch.credit(lot("l", "BONUS", 100n, "2026-01-02T00:00:00Z"));
    batch.debit(30n, start);
    const later = new Date("2026-01-03T00:00:00Z");
    expect(batch.expire(later).map((entry) => [entry.type, entry.amount])).toEqual([["EXPIRY", -70n]]);
    expect(batch.expire(later)).toEqual([]);
    expect(batch.totals.balance).toBe(0n);
  });
});
