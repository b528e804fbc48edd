import type { StageResult } from "./types.ts";

export interface SettleInput {
  invoiceMinor: bigint;
  /** Credits available to apply (wallet waterfall, later issue). */
  creditsAvailable: bigint;
}

export interface SettleOutput {
  creditsApplied: bigint;
  amountDue: bigint;
}

/**
 * Stage 10. Applies credits (none until wallets exist) and fixes the amount due. Finalisation
 * (the number) and payment happen in the service, which owns the transaction.
 */
export function settle(input: SettleInput): StageResult<SettleOutput> {
  const payable = input.invoiceMinor > 0n ? input.invoiceMinor : 0n;
  const creditsApplied = input.creditsAvailable < payable ? input.creditsAvailable : payable;
  const amountDue = payable - creditsApplied;
  return {
    output: { creditsApplied, amountDue },
    trace: [
      {
        stage: "settle",
        note: `credits applied ${creditsApplied}; amount due ${amountDue}`,
        amounts: { credits_applied: String(creditsApplied), amount_due: String(amountDue) },
      },
    ],
  };
}
