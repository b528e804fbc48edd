import type { InvoiceWalletState } from "../../ports.ts";
import type { StageResult } from "./types.ts";

export interface RouteInput {
  total: bigint;
  /**
   * The customer's wallet when the subscription's offering bills through it (PREPAID, HYBRID):
   * what it already paid of the period's usage as metered, and what it can spend. null: POSTPAID,
   * the invoice carries everything.
   */
  wallet: InvoiceWalletState | null;
}

export interface RouteOutput {
  /** What the customer's wallet pays of the total. */
  walletMinor: bigint;
  /** What the invoice carries. */
  invoiceMinor: bigint;
  /** Of `walletMinor`, the usage the wallet already paid as it was metered (not debited again). */
  meteredMinor: bigint;
  /** Of `walletMinor`, what the settle stage debits from the balance now. */
  fromBalanceMinor: bigint;
  /** Metered debits beyond what the invoice asks (a discount, a cap, a lower final rating): given back. */
  refundMinor: bigint;
}

const smaller = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * Stage 9. Decides what the wallet pays and what the invoice carries. For an offering billed
 * through the wallet, usage the wallet paid as it was metered counts first (it is never debited
 * twice), then the wallet's balance pays what is left, and the invoice carries the rest. If the
 * metered debits exceed the total, the excess goes back to the wallet. POSTPAID: the invoice
 * carries the whole total.
 */
export function route(input: RouteInput): StageResult<RouteOutput> {
  const { total, wallet } = input;
  if (wallet === null) {
    return {
      output: {
        walletMinor: 0n,
        invoiceMinor: total,
        meteredMinor: 0n,
        fromBalanceMinor: 0n,
        refundMinor: 0n,
      },
      trace: [
        {
          stage: "route",
          note: "no wallet: the invoice carries the whole total",
          amounts: { wallet: "0", invoice: String(total) },
        },
      ],
    };
  }
  const payable = total > 0n ? total : 0n;
  const meteredMinor = smaller(wallet.meteredMinor, payable);
  const refundMinor = wallet.meteredMinor - meteredMinor;
  const fromBalanceMinor = smaller(
    wallet.availableMinor > 0n ? wallet.availableMinor : 0n,
    payable - meteredMinor,
  );
  const walletMinor = meteredMinor + fromBalanceMinor;
  const invoiceMinor = total - walletMinor;
  const refund = refundMinor > 0n ? `; ${refundMinor} of metered debits beyond the total go back to it` : "";
  return {
    output: { walletMinor, invoiceMinor, meteredMinor, fromBalanceMinor, refundMinor },
    trace: [
      {
        stage: "route",
        note: `the wallet pays ${walletMinor} (${meteredMinor} of usage paid as metered, ${fromBalanceMinor} from its balance of ${wallet.availableMinor})${refund}; the invoice carries ${invoiceMinor}`,
        amounts: {
          wallet: String(walletMinor),
          invoice: String(invoiceMinor),
          metered: String(wallet.meteredMinor),
          available: String(wallet.availableMinor),
          from_balance: String(fromBalanceMinor),
          refund: String(refundMinor),
        },
      },
    ],
  };
}
