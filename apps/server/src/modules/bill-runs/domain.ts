import { formatDecimal, parseDecimal } from "@aforo/core";
import { subscriptionPeriodAt, subscriptionPeriodsBetween } from "../subscriptions/domain/lifecycle.ts";
import { localDay, type Period } from "../subscriptions/domain/period.ts";
import type { Subscription } from "../subscriptions/domain/subscription.ts";

export type BillRunStatus = "RUNNING" | "COMPLETED" | "FAILED";

export interface BillRun {
  id: string;
  tenantId: string;
  mode: "live" | "test";
  status: BillRunStatus;
  asOf: Date;
  /** Known once the run has counted the subscriptions it walks. */
  subscriptionsTotal: number | null;
  subscriptionsProcessed: number;
  periodsInvoiced: number;
  invoicesCreated: number;
  /** The first MAX_STORED_INVOICE_IDS invoice ids the run created; `invoicesCreated` counts all. */
  invoiceIds: string[];
  error: string | null;
  heartbeatAt: Date;
  createdAt: Date;
  completedAt: Date | null;
}

/** A run over 10,000 subscriptions must not carry a 10,000-element array in every progress write. */
export const MAX_STORED_INVOICE_IDS = 1_000;

/** Appends created invoice ids, keeping at most MAX_STORED_INVOICE_IDS. */
export function withInvoiceIds(stored: readonly string[], created: readonly string[]): string[] {
  const room = MAX_STORED_INVOICE_IDS - stored.length;
  return room <= 0 ? [...stored] : [...stored, ...created.slice(0, room)];
}

/** A RUNNING run whose process stopped writing its heartbeat: the next run may take over. */
export function isAbandoned(run: BillRun, now: Date, abandonAfterMs: number): boolean {
  return run.status === "RUNNING" && now.getTime() - run.heartbeatAt.getTime() > abandonAfterMs;
}

/**
 * The periods of a subscription a run as of `asOf` must invoice, oldest first, given the end of
 * the last period already invoiced (`billedThrough`, null when none):
 * - only periods that ended by `asOf` (the current one waits for the next run);
 * - never the trial (nothing is billed in it);
 * - a subscription that ended mid-period has a last, shortened period [start, endedAt), due once
 *   `endedAt` has passed;
 * - a subscription that has not started has none.
 */
export function periodsToInvoice(
  subscription: Subscription,
  billedThrough: Date | null,
  asOf: Date,
): Period[] {
  const endedAt = subscription.endedAt;
  const untilMs = Math.min(asOf.getTime(), endedAt?.getTime() ?? Number.POSITIVE_INFINITY);
  const from = billedThrough ?? subscription.startAt;
  if (from.getTime() >= untilMs) return [];
  const trialEndMs = subscription.trialEndAt?.getTime();
  const due: Period[] = [];
  for (const period of subscriptionPeriodsBetween(subscription, from, new Date(untilMs))) {
    if (trialEndMs !== undefined && period.end.getTime() <= trialEndMs) continue;
    if (endedAt && period.end.getTime() > endedAt.getTime()) {
      if (period.start.getTime() < endedAt.getTime() && endedAt.getTime() <= asOf.getTime()) {
        due.push({ start: period.start, end: endedAt });
      }
      continue;
    }
    if (period.end.getTime() <= asOf.getTime()) due.push(period);
  }
  return due;
}

// ---- Late events (reconciliation) -----------------------------------------------------------------

/** A usage event kept for reconciliation (flag RECONCILIATION: not counted in its period's usage). */
export interface ReconciliationEvent {
  id: string;
  billableUnitId: string;
  occurredAt: Date;
  quantity: string;
  /** What the unit aggregates (properties[field] or quantity); null for COUNT. */
  value: string | null;
}

/** Late usage of one closed period and one unit, to be billed as an adjustment on a later invoice. */
export interface PendingAdjustment {
  /** The closed period the events belong to. */
  periodStart: Date;
  periodEnd: Date;
  billableUnitId: string;
  /** Oldest first; the adjustment line's trace. */
  eventIds: string[];
  eventCount: number;
  /** Sum of the events' values (their quantities where they have none), as an exact decimal. */
  valueSum: string;
}

/**
 * Groups late events by the subscription period they occurred in and by unit. With `before`, only
 * periods that ended by then (an invoice of the period starting at `before` adjusts earlier ones).
 */
export function groupAdjustments(
  subscription: Subscription,
  events: readonly ReconciliationEvent[],
  before?: Date,
): PendingAdjustment[] {
  const groups = new Map<string, PendingAdjustment>();
  const sorted = [...events].sort(
    (a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || (a.id < b.id ? -1 : 1),
  );
  for (const event of sorted) {
    const period = subscriptionPeriodAt(subscription, event.occurredAt);
    if (before && period.end.getTime() > before.getTime()) continue;
    const key = `${period.start.toISOString()}\u0000${event.billableUnitId}`;
    let group = groups.get(key);
    if (!group) {
      group = {
        periodStart: period.start,
        periodEnd: period.end,
        billableUnitId: event.billableUnitId,
        eventIds: [],
        eventCount: 0,
        valueSum: "0",
      };
      groups.set(key, group);
    }
    group.eventIds.push(event.id);
    group.eventCount += 1;
    group.valueSum = formatDecimal(
      parseDecimal(group.valueSum).plus(parseDecimal(event.value ?? event.quantity)),
    );
  }
  return [...groups.values()].sort(
    (a, b) =>
      a.periodStart.getTime() - b.periodStart.getTime() || (a.billableUnitId < b.billableUnitId ? -1 : 1),
  );
}

/** "Adjustment for 2026-01-01 – 2026-02-01" (dates in the subscription's zone): the line's description. */
export function adjustmentDescription(
  adjustment: Pick<PendingAdjustment, "periodStart" | "periodEnd">,
  timeZone?: string,
): string {
  return `Adjustment for ${localDay(adjustment.periodStart, timeZone)} – ${localDay(adjustment.periodEnd, timeZone)}`;
}
