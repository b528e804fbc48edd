import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TaxResult } from "../../ports.ts";
import { aggregate } from "./aggregate.ts";
import { allowance } from "./allowance.ts";
import { commit } from "./commit.ts";
import { allocate, discount, promotionApplies } from "./discount.ts";
import { runPipeline, usageCharge } from "./index.ts";
import { quotaCheck } from "./quota-check.ts";
import { rate } from "./rate.ts";
import { rollover } from "./rollover.ts";
import { route } from "./route.ts";
import { settle } from "./settle.ts";
import { tax } from "./tax.ts";
import { type AppliedPromotion, type PipelineInput, type PricedPlan, usageItemsOf } from "./types.ts";

const period = { start: new Date("2026-03-01T00:00:00Z"), end: new Date("2026-04-01T00:00:00Z") };
const next = { start: period.end, end: new Date("2026-05-01T00:00:00Z") };

function plan(overrides: Partial<PricedPlan> = {}): PricedPlan {
  return {
    ratePlanId: "rp_1",
    version: 1,
    name: "Pro",
    currency: "USD",
    rounding: "half_up",
    items: [
      { model: "FLAT_RATE", flat_amount: "49", timing: "in_advance" },
      {
        model: "GRADUATED",
        billable_unit: "calls",
        tiers: [
          { up_to: "1000", unit_price: "0.010" },
          { up_to: "10000", unit_price: "0.008" },
          { up_to: null, unit_price: "0.005" },
        ],
      },
      {
        model: "PER_UNIT",
        billable_unit: "tokens",
        unit_price: "0.001",
        included_free: "100",
        cap: "1000",
        rollover: { max: "50" },
      },
    ],
    minimumCommitment: null,
    maximumSpend: null,
    ...overrides,
  };
}

const noTax = async (): Promise<TaxResult> => ({ lines: [], exclusiveTaxMinor: 0n, inclusiveTaxMinor: 0n });

function input(overrides: Partial<PipelineInput> = {}): PipelineInput {
  return {
    currency: "USD",
    period,
    advancePeriods: [next],
    chargeUsage: true,
    plans: [plan()],
    usage: [
      { unitKey: "calls", aggregation: "COUNT", quantity: "15000" },
      { unitKey: "tokens", aggregation: "SUM", quantity: "2000" },
    ],
    carryIn: { tokens: "30" },
    promotion: null,
    periodsAlreadyDiscounted: 0,
    taxContext: { country: "US", region: null, exempt: false, taxId: null },
    ...overrides,
  };
}

const percent = (overrides: Partial<AppliedPromotion> = {}): AppliedPromotion => ({
  promotionId: "promo_1",
  code: "SAVE10",
  percentOff: "10",
  amountOff: null,
  currency: null,
  duration: "repeating",
  durationInPeriods: 2,
  ...overrides,
});

describe("pipeline stages (each pure)", () => {
  const items = usageItemsOf([plan()]);

  it("quota check records the quantity above a cap without changing usage", () => {
    const result = quotaCheck({ items, usage: input().usage, carryIn: { tokens: "30" } });
    // 2000 − (100 included + 30 rolled over) − 1000 cap = 870 not billed.
    expect(result.output.overCap).toEqual({ tokens: "870" });
    expect(result.trace[0]).toMatchObject({ stage: "quota_check", amounts: { "tokens.over_cap": "870" } });
  });

  it("rollover applies the carry-in and computes the carry-out up to max", () => {
    const used = rollover({
      items,
      usage: [{ unitKey: "tokens", aggregation: "SUM", quantity: "40" }],
      carryIn: { tokens: "30" },
      chargeUsage: true,
    });
    // 30 carried in covers 30 of 40; 10 from this period's 100; 90 unused → max 50.
    expect(used.output).toEqual({ rolloverIn: { tokens: "30" }, carryOut: { tokens: "50" } });
    const trial = rollover({ items, usage: [], carryIn: { tokens: "30" }, chargeUsage: false });
    expect(trial.output).toEqual({ rolloverIn: {}, carryOut: {} });
  });

  it("aggregate keeps priced units, zero-filled, and records the rest", () => {
    const result = aggregate({ items, usage: [{ unitKey: "other", aggregation: "MAX", quantity: "3" }] });
    expect(result.output.quantities).toEqual({ calls: "0", tokens: "0" });
    expect(result.trace.map((entry) => entry.note).join("\n")).toContain(
      "other: 3 used, priced by no plan item",
    );
  });

  it("allowance splits each quantity into free and billable", () => {
    const result = allowance({
      items,
      quantities: { calls: "5", tokens: "120" },
      rolloverIn: { tokens: "30" },
    });
    expect(result.output.allowances).toEqual({
      "rp_1:tokens": { included: "100", rolloverIn: "30", total: "130", consumed: "120", overage: "0" },
    });
  });

  it("rate charges usage, in-arrears fees for the period and in-advance fees for the periods it opens", () => {
    const result = rate({
      plans: [
        plan({ items: [...plan().items, { model: "FLAT_RATE", flat_amount: "5", timing: "in_arrears" }] }),
      ],
      currency: "USD",
      period,
      advancePeriods: [period, next],
      chargeUsage: true,
      quantities: { calls: "15000", tokens: "2000" },
      rolloverIn: { tokens: "30" },
    });
    expect(
      result.output.lines.map((line) => [
        line.type,
        line.amountMinor,
        line.periodStart.toISOString().slice(0, 10),
      ]),
    ).toEqual([
      ["CHARGE", 4900n, "2026-03-01"],
      ["CHARGE", 4900n, "2026-04-01"],
      ["USAGE_FEE", 10700n, "2026-03-01"],
      ["USAGE_FEE", 100n, "2026-03-01"], // capped at 1000 × 0.001
      ["CHARGE", 500n, "2026-03-01"],
    ]);
    const trial = rate({
      plans: [plan()],
      currency: "USD",
      period,
      advancePeriods: [next],
      chargeUsage: false,
      quantities: {},
      rolloverIn: {},
    });
    expect(trial.output.lines.map((line) => line.amountMinor)).toEqual([4900n]);
  });

  it("commit trues up to the minimum and caps at the maximum, over the period's own lines", () => {
    const base = rate({
      plans: [plan()],
      currency: "USD",
      period,
      advancePeriods: [next],
      chargeUsage: true,
      quantities: { calls: "100" },
      rolloverIn: {},
    });
    const minimum = commit({
      plans: [plan({ minimumCommitment: "20.00" })],
      lines: base.output.lines,
      period,
      chargeUsage: true,
    });
    // The in-advance 49.00 is for April, so March's spend is 1.00: true-up 19.00.
    expect(minimum.output.lines.at(-1)).toMatchObject({
      type: "CHARGE",
      model: "MINIMUM_COMMITMENT",
      amountMinor: 1900n,
    });
    const maximum = commit({
      plans: [plan({ maximumSpend: "0.50" })],
      lines: base.output.lines,
      period,
      chargeUsage: true,
    });
    expect(maximum.output.lines.at(-1)).toMatchObject({ model: "MAXIMUM_SPEND", amountMinor: -50n });
  });

  it("discount lasts its duration and its shares add up exactly", () => {
    expect(promotionApplies(percent({ duration: "once" }), 0)).toBe(true);
    expect(promotionApplies(percent({ duration: "once" }), 1)).toBe(false);
    expect(promotionApplies(percent(), 1)).toBe(true);
    expect(promotionApplies(percent(), 2)).toBe(false);
    expect(promotionApplies(percent({ duration: "forever" }), 99)).toBe(true);
    const lines = rate({
      plans: [plan()],
      currency: "USD",
      period,
      advancePeriods: [next],
      chargeUsage: true,
      quantities: { calls: "1001" },
      rolloverIn: {},
    }).output.lines;
    const result = discount({
      lines,
      currency: "USD",
      period,
      promotion: percent({ percentOff: "33.3" }),
      periodsAlreadyDiscounted: 0,
    });
    // subtotal 4900 + 1001 = 5901 → 33.3 % = 1965.033 → 1965
    expect(result.output.discountMinor).toBe(1965n);
    expect(result.output.lines.at(-1)).toMatchObject({ type: "DISCOUNT", amountMinor: -1965n });
    expect(result.output.taxableMinor.reduce((a, b) => a + b, 0n)).toBe(5901n - 1965n);
    const amountOff = discount({
      lines,
      currency: "USD",
      period,
      promotion: percent({ percentOff: null, amountOff: "100", currency: "USD" }),
      periodsAlreadyDiscounted: 0,
    });
    expect(amountOff.output.discountMinor).toBe(5901n);
  });

  it("allocate splits any discount exactly over positive amounts (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -1000n, max: 100000n }), { minLength: 1, maxLength: 8 }),
        fc.bigInt({ min: 0n, max: 100000n }),
        (amounts, wanted) => {
          const positive = amounts.reduce((sum, amount) => (amount > 0n ? sum + amount : sum), 0n);
          // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigint
          const discountMinor = wanted > positive ? positive : wanted;
          const shares = allocate(amounts, discountMinor);
          expect(shares.reduce((a, b) => a + b, 0n)).toBe(discountMinor);
          shares.forEach((share, index) => {
            expect(share >= 0n).toBe(true);
            expect(share <= ((amounts[index] ?? 0n) > 0n ? (amounts[index] ?? 0n) : 0n)).toBe(true);
          });
        },
      ),
    );
  });

  it("tax adds exclusive taxes and only reports inclusive ones", () => {
    const lines = rate({
      plans: [plan()],
      currency: "USD",
      period,
      advancePeriods: [next],
      chargeUsage: false,
      quantities: {},
      rolloverIn: {},
    }).output.lines;
    const result = tax({
      lines,
      taxableMinor: [4900n],
      result: {
        lines: [
          {
            lineId: "0",
            name: "VAT",
            jurisdiction: "DE",
            ratePercent: "19",
            inclusive: true,
            taxMinor: 782n,
          },
          {
            lineId: "0",
            name: "Levy",
            jurisdiction: "DE",
            ratePercent: "1",
            inclusive: false,
            taxMinor: 49n,
          },
        ],
        exclusiveTaxMinor: 49n,
        inclusiveTaxMinor: 782n,
      },
    });
    expect(result.output).toMatchObject({ taxTotal: 49n, taxIncluded: 782n });
    expect(result.output.lines[0]?.taxMinor).toBe(831n);
    expect(result.output.breakdown).toHaveLength(2);
  });

  it("route sends everything to the invoice without a wallet and settle makes it due", () => {
    const routed = route({ total: 1234n, wallet: null });
    expect(routed.output).toMatchObject({ walletMinor: 0n, invoiceMinor: 1234n, fromBalanceMinor: 0n });
    expect(settle({ total: 1234n, routed: routed.output }).output).toEqual({
      creditsApplied: 0n,
      amountDue: 1234n,
      walletDebitMinor: 0n,
      walletRefundMinor: 0n,
    });
  });

  it("route counts usage paid as metered once, then the balance, and the invoice carries the rest", () => {
    // 1,234 due: 400 of usage was debited as metered, the balance has 500 → 900 from the wallet.
    const partly = route({ total: 1234n, wallet: { meteredMinor: 400n, availableMinor: 500n } });
    expect(partly.output).toEqual({
      walletMinor: 900n,
      invoiceMinor: 334n,
      meteredMinor: 400n,
      fromBalanceMinor: 500n,
      refundMinor: 0n,
    });
    expect(settle({ total: 1234n, routed: partly.output }).output).toEqual({
      creditsApplied: 900n,
      amountDue: 334n,
      walletDebitMinor: 500n,
      walletRefundMinor: 0n,
    });
    // A rich wallet pays everything but never more than the total.
    const covered = route({ total: 1234n, wallet: { meteredMinor: 400n, availableMinor: 5000n } });
    expect(covered.output).toMatchObject({ walletMinor: 1234n, invoiceMinor: 0n, fromBalanceMinor: 834n });
    // Metered debits beyond the total (a discount came after) go back; nothing is debited.
    const excess = route({ total: 700n, wallet: { meteredMinor: 1000n, availableMinor: 50n } });
    expect(excess.output).toEqual({
      walletMinor: 700n,
      invoiceMinor: 0n,
      meteredMinor: 700n,
      fromBalanceMinor: 0n,
      refundMinor: 300n,
    });
    expect(settle({ total: 700n, routed: excess.output }).output).toMatchObject({
      creditsApplied: 700n,
      amountDue: 0n,
      walletRefundMinor: 300n,
    });
  });

  it("route and settle keep credits_applied + amount_due = total and never overdraw (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -500n, max: 100_000n }),
        fc.bigInt({ min: 0n, max: 100_000n }),
        fc.bigInt({ min: 0n, max: 100_000n }),
        (total, meteredMinor, availableMinor) => {
          const routed = route({ total, wallet: { meteredMinor, availableMinor } }).output;
          const settled = settle({ total, routed }).output;
          const payable = total > 0n ? total : 0n;
          expect(settled.creditsApplied + settled.amountDue).toBe(payable);
          expect(settled.amountDue >= 0n && settled.walletDebitMinor <= availableMinor).toBe(true);
          expect(routed.meteredMinor + settled.walletRefundMinor).toBe(meteredMinor);
          expect(settled.creditsApplied).toBe(routed.meteredMinor + settled.walletDebitMinor);
        },
      ),
    );
  });
});

describe("runPipeline", () => {
  it("runs the ten stages in order and traces each", async () => {
    const result = await runPipeline(input({ promotion: percent() }), noTax);
    const stages = [...new Set(result.trace.map((entry) => entry.stage))];
    expect(stages).toEqual([
      "quota_check",
      "rollover",
      "aggregate",
      "allowance",
      "rate",
      "commit",
      "discount",
      "tax",
      "route",
      "settle",
    ]);
    // 49.00 + 107.00 + 1.00 (tokens capped) = 157.00; 10 % off → 15.70.
    expect(result).toMatchObject({
      subtotal: 15700n,
      discountTotal: 1570n,
      taxTotal: 0n,
      total: 14130n,
      amountDue: 14130n,
      promotionId: "promo_1",
    });
    expect(result.carryOut).toEqual({ tokens: "0" });
  });

  it("asks the tax provider for each line after the discount", async () => {
    const asked: bigint[] = [];
    const result = await runPipeline(input({ promotion: percent(), usage: [] }), async (lines) => {
      asked.push(...lines.map((line) => line.amountMinor));
      return {
        lines: lines.map((line) => ({
          lineId: line.lineId,
          name: "Sales tax",
          jurisdiction: "US",
          ratePercent: "10",
          inclusive: false,
          taxMinor: line.amountMinor / 10n,
        })),
        exclusiveTaxMinor: 0n,
        inclusiveTaxMinor: 0n,
      };
    });
    // 4900 flat; usage lines are 0; 10 % discount = 490 → taxable 4410.
    expect(asked).toEqual([4410n, 0n, 0n]);
    expect(result).toMatchObject({ subtotal: 4900n, discountTotal: 490n, taxTotal: 441n, total: 4851n });
  });

  it("keeps Σ lines = subtotal − discount and total = that + tax for any usage (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 50000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 1, max: 100 }),
        async (calls, tokens, percentOff) => {
          const result = await runPipeline(
            input({
              usage: [
                { unitKey: "calls", aggregation: "COUNT", quantity: String(calls) },
                { unitKey: "tokens", aggregation: "SUM", quantity: String(tokens) },
              ],
              promotion: percent({ percentOff: String(percentOff) }),
            }),
            async (lines) => ({
              lines: lines.map((line) => ({
                lineId: line.lineId,
                name: "T",
                jurisdiction: "X",
                ratePercent: "7",
                inclusive: false,
                taxMinor: (line.amountMinor * 7n) / 100n,
              })),
              exclusiveTaxMinor: 0n,
              inclusiveTaxMinor: 0n,
            }),
          );
          const sum = result.lines.reduce((total, line) => total + line.amountMinor, 0n);
          expect(sum).toBe(result.subtotal - result.discountTotal);
          expect(result.total).toBe(sum + result.taxTotal);
          expect(result.discountTotal >= 0n && result.discountTotal <= result.subtotal).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("usageCharge (what prepaid wallets are debited as usage is metered)", () => {
  it("equals the invoice's usage lines for the same usage, each rounded once (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 0, max: 9_000 }),
        fc.integer({ min: 0, max: 200 }),
        async (calls, tokens, carried) => {
          const pipelineInput = input({
            usage: [
              { unitKey: "calls", aggregation: "COUNT", quantity: String(calls) },
              { unitKey: "tokens", aggregation: "SUM", quantity: String(tokens) },
            ],
            carryIn: { tokens: String(carried) },
          });
          const invoice = await runPipeline(pipelineInput, noTax);
          const usageLines = invoice.lines.filter((line) => line.type === "USAGE_FEE");
          const charged = usageCharge(pipelineInput);
          expect(charged.amountMinor).toBe(usageLines.reduce((sum, line) => sum + line.amountMinor, 0n));
          expect(charged.lines.map((line) => line.amountMinor)).toEqual(
            usageLines.map((line) => line.amountMinor),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it("charges no usage in a trial period", () => {
    expect(usageCharge(input({ chargeUsage: false })).amountMinor).toBe(0n);
  });
});
