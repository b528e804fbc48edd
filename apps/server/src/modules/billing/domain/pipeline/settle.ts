import type { RouteOutput } from "./route.ts";
import type { StageResult } from "./types.ts";

export interface SettleInput {
  total: bigint;
  routed: RouteOutput;
}

export interface SettleOutput {
  /** What the wallet pays of the total (metered usage and the debit below). */
  creditsApplied: bigint;
  amountDue: bigint;
  /** The waterfall debit (promotional → bonus → cash) the finalisation makes from the balance. */
  walletDebitMinor: bigint;
  /** What the finalisation gives back to the wallet (reverse waterfall). */
  walletRefundMinor: bigint;
}

/**
 * Stage 10. Fixes what the wallet pays (`credits_applied`), the movements that make it so, and
 * the amount due: the rest. Pure: the service makes the movements inside the finalising
 * transaction, keyed by the invoice, together with the number; a preview makes none.
 */
export function settle(input: SettleInput): StageResult<SettleOutput> {
  const { total, routed } = input;
  const payable = total > 0n ? total : 0n;
  const creditsApplied = routed.walletMinor;
  const amountDue = payable - creditsApplied;
  const movement =
    routed.fromBalanceMinor > 0n || routed.refundMinor > 0n
      ? `; wallet debit ${routed.fromBalanceMinor} (waterfall), give-back ${routed.refundMinor}`
      : "";
  return {
    output: {
      creditsApplied,
      amountDue,
      walletDebitMinor: routed.fromBalanceMinor,
      walletRefundMinor: routed.refundMinor,
    },
    trace: [
      {
        stage: "settle",
        note: `credits applied ${creditsApplied}; amount due ${amountDue}${movement}`,
        amounts: {
          credits_applied: String(creditsApplied),
          amount_due: String(amountDue),
          ...(movement
            ? { wallet_debit: String(routed.fromBalanceMinor), wallet_refund: String(routed.refundMinor) }
            : {}),
        },
      },
    ],
  };
}
