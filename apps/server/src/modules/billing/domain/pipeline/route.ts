import type { StageResult } from "./types.ts";

export interface RouteInput {
  total: bigint;
}

export interface RouteOutput {
  /** What the customer's wallet pays (prepaid balance). */
  walletMinor: bigint;
  /** What the invoice carries. */
  invoiceMinor: bigint;
}

/**
 * Stage 9. Decides what the wallet pays and what the invoice carries. Wallets arrive in a later
 * issue: until then everything goes to the invoice, and the stage stays so that the trace and the
 * order of the ten stages do not change when they come.
 */
export function route(input: RouteInput): StageResult<RouteOutput> {
  return {
    output: { walletMinor: 0n, invoiceMinor: input.total },
    trace: [
      {
        stage: "route",
        note: "no wallet: the invoice carries the whole total",
        amounts: { wallet: "0", invoice: String(input.total) },
      },
    ],
  };
}
