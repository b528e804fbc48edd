/** How far ahead of the server's clock an event may claim to be. */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;
/** Events older than this are accepted and flagged LATE. */
export const LATE_AFTER_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_BACKDATING_LIMIT_DAYS = 35;

export type TimingVerdict =
  | { kind: "clock-skew"; aheadMs: number }
  | { kind: "on-time" }
  | { kind: "late" }
  /** Older than the backdating limit: kept for reconciliation, not counted in usage. */
  | { kind: "reconciliation"; reason: "beyond-backdating-limit" | "period-closed" };

export interface TimingPolicy {
  backdatingLimitDays: number;
  /** True when a finalised invoice already covers this instant for this customer. */
  periodClosed?: (occurredAt: Date) => boolean;
}

export function judgeTiming(occurredAt: Date, now: Date, policy: TimingPolicy): TimingVerdict {
  const ageMs = now.getTime() - occurredAt.getTime();
  if (-ageMs > MAX_FUTURE_SKEW_MS) return { kind: "clock-skew", aheadMs: -ageMs };
  if (ageMs > policy.backdatingLimitDays * 24 * 60 * 60 * 1000) {
    return { kind: "reconciliation", reason: "beyond-backdating-limit" };
  }
  if (policy.periodClosed?.(occurredAt)) return { kind: "reconciliation", reason: "period-closed" };
  return ageMs > LATE_AFTER_MS ? { kind: "late" } : { kind: "on-time" };
}
