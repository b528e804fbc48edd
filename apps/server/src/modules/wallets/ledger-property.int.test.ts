import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, type Fixture, sandbox } from "../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../testing/test-app.ts";
import { type Bucket, buckets } from "./domain.ts";
import type { WalletService } from "./service.ts";

type Step =
  | { kind: "credit"; bucket: Bucket; amount: number; expiresInHours: number | null }
  | { kind: "debits"; amounts: number[] }
  | { kind: "hold"; amount: number }
  | { kind: "commit"; pick: number; percent: number }
  | { kind: "release"; pick: number }
  | { kind: "advance"; hours: number }
  | { kind: "expire" };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("credit" as const),
    bucket: fc.constantFrom(...buckets),
    amount: fc.integer({ min: 1, max: 300 }),
    expiresInHours: fc.option(fc.integer({ min: 1, max: 72 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant("debits" as const),
    amounts: fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant("hold" as const), amount: fc.integer({ min: 1, max: 200 }) }),
  fc.record({
    kind: fc.constant("commit" as const),
    pick: fc.nat(),
    percent: fc.integer({ min: 0, max: 100 }),
  }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("advance" as const), hours: fc.integer({ min: 1, max: 48 }) }),
  fc.constant({ kind: "expire" as const }),
);

describe("the wallet ledger in storage", () => {
  let t: TestApp;
  let f: Fixture;
  let wallets: WalletService;
  const scope = () => ({ tenantId: f.tenant.id, mode: "test" as const });

  beforeAll(async () => {
    t = await createTestApp();
    f = await sandbox(t);
    wallets = t.context.wallets;
  });
  afterAll(() => t.close());

  async function run(steps: Step[], run: number): Promise<void> {
    t.clock.set("2026-06-01T00:00:00Z");
    const customer = await createCustomer(t, f);
    const { wallet } = await wallets.create(scope(), customer.id, "USD");
    const holds: { id: string; amount: bigint }[] = [];
    let keys = 0;
    for (const current of steps) {
      if (current.kind === "credit") {
        const expiresAt =
          current.expiresInHours === null
            ? undefined
            : new Date(t.clock.now().getTime() + current.expiresInHours * 3_600_000);
        await wallets.credit(scope(), wallet.id, {
          amount: BigInt(current.amount),
          bucket: current.bucket,
          expiresAt,
        });
      } else if (current.kind === "debits") {
        // Concurrent debits: exactly the ones the balance covers succeed, in some order.
        const before = await wallets.get(scope(), wallet.id);
        const results = await Promise.allSettled(
          current.amounts.map((amount) =>
            wallets.debit(scope(), {
              customerId: customer.id,
              amount: BigInt(amount),
              currency: "USD",
              idempotencyKey: `p${run}-${keys++}`,
            }),
          ),
        );
        const spent = results.reduce(
          (total, result) => total + (result.status === "fulfilled" ? result.value.debit.amount : 0n),
          0n,
        );
        for (const result of results) {
          if (result.status === "rejected")
            expect((result.reason as { slug?: string }).slug).toBe("insufficient-funds");
          else {
            const order = result.value.entries.map((entry) => buckets.indexOf(entry.bucket));
            expect(order).toEqual([...order].sort());
          }
        }
        const after = await wallets.get(scope(), wallet.id);
        expect(after.balance).toBeLessThanOrEqual(before.balance - spent);
      } else if (current.kind === "hold") {
        const hold = await wallets
          .hold(scope(), wallet.id, { amount: BigInt(current.amount) })
          .catch(() => undefined);
        if (hold) holds.push({ id: hold.id, amount: hold.amount });
      } else if (current.kind === "commit" || current.kind === "release") {
        const [hold] = holds.splice(current.pick % Math.max(holds.length, 1), 1);
        if (hold && current.kind === "commit")
          await wallets.commitHold(scope(), hold.id, (hold.amount * BigInt(current.percent)) / 100n);
        if (hold && current.kind === "release") await wallets.releaseHold(scope(), hold.id);
      } else if (current.kind === "advance") {
        t.clock.advance(current.hours * 3_600_000);
      } else {
        await wallets.expire(t.clock.now());
      }
      const state = await wallets.get(scope(), wallet.id);
      expect(state.balance).toBeGreaterThanOrEqual(0n);
      expect(state.held).toBe(holds.reduce((total, hold) => total + hold.amount, 0n));
      expect(await wallets.verify(scope(), wallet.id)).toEqual([]);
    }
  }

  it("keeps balance = sum of entries and never overdraws under concurrent debits, holds and expiries", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), (steps) => run(steps, runs++)),
      { numRuns: 15 },
    );
  }, 120_000);
});
