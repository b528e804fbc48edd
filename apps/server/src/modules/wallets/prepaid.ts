/**
 * Prepaid and hybrid usage, pure (ADR 0015). A subscription period's usage charge is rated from
 * the stored events with the invoice's own stages and rounding, so it is a whole number of minor
 * units that only the invoice could disagree with; the wallet is debited the change in that
 * charge since the last debit, as far as its balance goes. What the balance could not cover stays
 * for the invoice. Keys are derived from the running total, so one amount is never debited twice.
 */
import { type Bucket, type BucketBalances, buckets, type Lot } from "./domain.ts";

export interface PeriodDebits {
  /** The period's usage charge when it was last rated. */
  usageMinor: bigint;
  /** What the wallet has paid of it so far. */
  debitedMinor: bigint;
  /** The same, by the bucket it came from. */
  byBucket: BucketBalances;
}

/** Math.min and Math.max for bigint (Math's take numbers only). */
export function smaller(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export function larger(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/**
 * What the wallet pays now: the part of the rated charge not yet debited, at most what it can
 * spend. A charge that went down (a LATEST or MAX unit, a plan change) debits nothing; the
 * settlement gives back any excess once the invoice knows the final total.
 */
export function meteredDebitOf(input: {
  chargedMinor: bigint;
  debitedMinor: bigint;
  spendableMinor: bigint;
}): bigint {
  const owed = input.chargedMinor - input.debitedMinor;
  if (owed <= 0n || input.spendableMinor <= 0n) return 0n;
  return smaller(owed, input.spendableMinor);
}

/** What the wallet can spend at `now`: what its unexpired lots have left (expired ones are breakage). */
export function spendableOf(lots: readonly Pick<Lot, "remaining" | "expiresAt">[], now: Date): bigint {
  let total = 0n;
  for (const lot of lots) {
    if (lot.expiresAt !== null && lot.expiresAt.getTime() <= now.getTime()) continue;
    total += lot.remaining;
  }
  return total;
}

/** Whether usage of a subscription on an offering with this billing mode is paid from the wallet. */
export function paysFromWallet(billingMode: string): boolean {
  return billingMode === "PREPAID" || billingMode === "HYBRID";
}

/** Usage served that the wallet has not paid (an overdraft the invoice carries). */
export function uncoveredOf(debits: Pick<PeriodDebits, "usageMinor" | "debitedMinor">): bigint {
  const uncovered = debits.usageMinor - debits.debitedMinor;
  return uncovered > 0n ? uncovered : 0n;
}

/**
 * Whether an ALERT escrow announces `wallet.low_balance` after a metered debit: when the debit
 * emptied the wallet, or when usage first goes uncovered in a period whose wallet was already
 * empty. Not on every later event of the same empty stretch.
 */
export function alertsEmpty(input: {
  balanceBefore: bigint;
  balanceAfter: bigint;
  uncoveredBefore: bigint;
  uncoveredAfter: bigint;
}): boolean {
  if (input.balanceAfter > 0n) return false;
  if (input.balanceBefore > 0n) return true;
  return input.uncoveredBefore === 0n && input.uncoveredAfter > 0n;
}

/**
 * Why a metered debit announces `wallet.low_balance`, if it does: "empty" when an ALERT escrow's
 * wallet runs dry (alertsEmpty), else "below_threshold" when the balance crosses the escrow's
 * low-balance threshold downwards (BLOCK or ALERT). One event per debit at most.
 */
export function lowBalanceReason(input: {
  onEmpty: "BLOCK" | "ALERT";
  thresholdMinor: bigint;
  balanceBefore: bigint;
  balanceAfter: bigint;
  uncoveredBefore: bigint;
  uncoveredAfter: bigint;
}): "empty" | "below_threshold" | null {
  if (input.onEmpty === "ALERT" && alertsEmpty(input)) return "empty";
  if (input.balanceBefore >= input.thresholdMinor && input.balanceAfter < input.thresholdMinor) {
    return "below_threshold";
  }
  return null;
}

/**
 * Gives `amount` back in reverse waterfall order (cash, bonus, promotional), never more per bucket
 * than the period's metered debits took from it: refunding the tail of the waterfall leaves the
 * wallet exactly as if only the final amount had been debited.
 */
export function refundByBucket(
  debited: BucketBalances,
  amount: bigint,
): { bucket: Bucket; amount: bigint }[] {
  const parts: { bucket: Bucket; amount: bigint }[] = [];
  let left = amount;
  for (const bucket of [...buckets].reverse()) {
    if (left <= 0n) break;
    const take = smaller(debited[bucket], left);
    if (take > 0n) parts.push({ bucket, amount: take });
    left -= take;
  }
  if (left > 0n) throw new Error("a settlement never gives back more than the period's metered debits took");
  return parts;
}

/** The key of the metered debit that takes the period's debited total to `runningTotal`. */
export function usageDebitKey(subscriptionId: string, periodStart: Date, runningTotal: bigint): string {
  return `usage:${subscriptionId}:${periodStart.toISOString()}:${runningTotal}`;
}

/** The key of the debit an invoice's settlement makes from the wallet's balance. */
export function invoiceDebitKey(invoiceId: string): string {
  return `invoice:${invoiceId}`;
}

/** The key of the credit (one per bucket) that gives an excess of metered debits back. */
export function invoiceRefundKey(invoiceId: string, bucket: Bucket): string {
  return `invoice:${invoiceId}:refund:${bucket}`;
}
