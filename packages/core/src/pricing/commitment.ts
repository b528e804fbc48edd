/**
 * Plan-level minimum commitment and maximum spend, on whole minor units after every line has been
 * rounded. Both return the amount of one extra invoice line (0n when none is needed), so the invoice
 * shows the adjustment instead of silently changing the usage lines.
 */

function requireNonNegative(value: bigint, name: string): void {
  if (value < 0n) throw new RangeError(`${name} must not be negative`);
}

/** The true-up that lifts a period's total to the minimum commitment: max(0, minimum − total). */
export function applyCommitment(totalMinor: bigint, minimumCommitmentMinor: bigint): bigint {
  requireNonNegative(totalMinor, "totalMinor");
  requireNonNegative(minimumCommitmentMinor, "minimumCommitmentMinor");
  return totalMinor < minimumCommitmentMinor ? minimumCommitmentMinor - totalMinor : 0n;
}

/**
 * The negative adjustment that brings a period's total down to the maximum spend:
 * min(0, maximum − total). Apply it after the commitment true-up (a maximum below the minimum is a
 * plan error the catalog rejects).
 */
export function applyMaximumSpend(totalMinor: bigint, maximumSpendMinor: bigint): bigint {
  requireNonNegative(totalMinor, "totalMinor");
  requireNonNegative(maximumSpendMinor, "maximumSpendMinor");
  return totalMinor > maximumSpendMinor ? maximumSpendMinor - totalMinor : 0n;
}
