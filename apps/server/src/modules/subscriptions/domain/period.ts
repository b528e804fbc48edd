import { Temporal } from "temporal-polyfill";
import type { BillingPeriodSpec } from "./subscription.ts";

/**
 * Billing period arithmetic, in UTC. Periods are a grid anchored on a start instant:
 * - `day` / `week`: boundaries every `count` days (weeks) from the start's UTC midnight;
 * - `month` / `year`: boundaries at UTC midnight of `billingAnchorDay` every `count` months
 *   (12 × `count` for years), the day clamped to short months (anchor 31 → Feb 28/29, Apr 30, and
 *   back to the 31st in months that have it). The first boundary is the first anchor day on or after
 *   the start's date (Stripe's `billing_cycle_anchor` by day of month: a short first stub).
 * The start instant itself is one more boundary, so the periods tile all of time without gaps or
 * overlaps, and the first period of a subscription starts exactly when it does.
 */
export interface PeriodAnchor extends BillingPeriodSpec {
  startAt: Date;
  /** 1-31; null (or absent) means the start date's day. Ignored for day and week periods. */
  billingAnchorDay: number | null;
}

/** [start, end) */
export interface Period {
  start: Date;
  end: Date;
}

const DAY_MS = 86_400_000;
/** Guards periodsBetween against a run-away range (daily periods over 270 years). */
export const MAX_PERIODS = 100_000;

function utcDate(instant: Date): Temporal.PlainDate {
  return Temporal.Instant.fromEpochMilliseconds(instant.getTime()).toZonedDateTimeISO("UTC").toPlainDate();
}

function midnight(date: Temporal.PlainDate): Date {
  return new Date(date.toZonedDateTime("UTC").epochMilliseconds);
}

function monthIndex(date: Temporal.PlainDate): number {
  return date.year * 12 + (date.month - 1);
}

/** Midnight UTC of `day` (clamped to the month's length) in the month with this index. */
function monthBoundary(index: number, day: number): Date {
  const year = Math.floor(index / 12);
  const month = index - year * 12 + 1;
  return midnight(Temporal.PlainDate.from({ year, month, day }, { overflow: "constrain" }));
}

/** The anchor day a subscription starting at `startAt` uses when none is given (null for day/week). */
export function defaultBillingAnchorDay(
  interval: BillingPeriodSpec["interval"],
  startAt: Date,
): number | null {
  return interval === "month" || interval === "year" ? utcDate(startAt).day : null;
}

function gridPeriod(anchor: PeriodAnchor, instant: Date): Period {
  const startDate = utcDate(anchor.startAt);
  if (anchor.interval === "day" || anchor.interval === "week") {
    const origin = midnight(startDate).getTime();
    const step = anchor.count * (anchor.interval === "week" ? 7 : 1) * DAY_MS;
    const k = Math.floor((instant.getTime() - origin) / step);
    return { start: new Date(origin + k * step), end: new Date(origin + (k + 1) * step) };
  }
  const months = anchor.interval === "year" ? 12 * anchor.count : anchor.count;
  const day = anchor.billingAnchorDay ?? startDate.day;
  const clampedInStartMonth = Math.min(day, startDate.daysInMonth);
  const origin = monthIndex(startDate) + (clampedInStartMonth >= startDate.day ? 0 : 1);
  const boundary = (k: number) => monthBoundary(origin + k * months, day);
  let k = Math.floor((monthIndex(utcDate(instant)) - origin) / months);
  // The estimate is off by at most one: the instant may lie before its month's anchor day.
  while (boundary(k).getTime() > instant.getTime()) k -= 1;
  while (boundary(k + 1).getTime() <= instant.getTime()) k += 1;
  return { start: boundary(k), end: boundary(k + 1) };
}

/** The period [start, end) that contains `instant`. */
export function periodContaining(anchor: PeriodAnchor, instant: Date): Period {
  const period = gridPeriod(anchor, instant);
  const startAt = anchor.startAt.getTime();
  // The start instant splits the grid period it falls in.
  if (period.start.getTime() < startAt && startAt < period.end.getTime()) {
    return instant.getTime() < startAt
      ? { start: period.start, end: new Date(startAt) }
      : { start: new Date(startAt), end: period.end };
  }
  return period;
}

/** Every period that overlaps [from, to), in order (the first may start before `from`). */
export function periodsBetween(anchor: PeriodAnchor, from: Date, to: Date): Period[] {
  const periods: Period[] = [];
  if (from.getTime() >= to.getTime()) return periods;
  let period = periodContaining(anchor, from);
  while (period.start.getTime() < to.getTime()) {
    periods.push(period);
    if (periods.length > MAX_PERIODS) throw new RangeError(`more than ${MAX_PERIODS} periods in range`);
    period = periodContaining(anchor, period.end);
  }
  return periods;
}

/** The share of `period` that lies at or after `at`, as an exact ratio of milliseconds. */
export function remainingShare(period: Period, at: Date): { remainingMs: number; periodMs: number } {
  const periodMs = period.end.getTime() - period.start.getTime();
  const remaining = period.end.getTime() - at.getTime();
  return { remainingMs: Math.min(periodMs, Math.max(0, remaining)), periodMs };
}
