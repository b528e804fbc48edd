import { Temporal } from "temporal-polyfill";
import type { BillingPeriodSpec } from "./subscription.ts";

/**
 * Billing period arithmetic on the wall clock of a time zone (the billing entity's; UTC without
 * one). Periods are a grid anchored on a start instant:
 * - `day` / `week`: boundaries at local midnight every `count` days (weeks) from the start's local
 *   date;
 * - `month` / `year`: boundaries at local midnight of `billingAnchorDay` every `count` months
 *   (12 × `count` for years), the day clamped to short months (anchor 31 → Feb 28/29, Apr 30, and
 *   back to the 31st in months that have it). The first boundary is the first anchor day on or after
 *   the start's local date (Stripe's `billing_cycle_anchor` by day of month: a short first stub).
 * The start instant itself is one more boundary, so the periods tile all of time without gaps or
 * overlaps, and the first period of a subscription starts exactly when it does.
 *
 * Boundaries are instants (UTC `Date`s): in `America/New_York` March starts at 05:00Z and April at
 * 04:00Z, so a period that contains a daylight-saving switch is an hour shorter or longer than its
 * neighbours. That is the length of the customer's month, not an error. A local midnight that does
 * not exist (a zone that springs forward at 00:00) is the first instant of that local day.
 */
export interface PeriodAnchor extends BillingPeriodSpec {
  startAt: Date;
  /** 1-31; null (or absent) means the start date's day. Ignored for day and week periods. */
  billingAnchorDay: number | null;
  /** IANA zone whose midnights cut the periods; absent means UTC. */
  timeZone?: string | undefined;
}

/** [start, end) */
export interface Period {
  start: Date;
  end: Date;
}

export const UTC = "UTC";
const DAY_MS = 86_400_000;
/** Guards periodsBetween against a run-away range (daily periods over 270 years). */
export const MAX_PERIODS = 100_000;

/** The calendar date `instant` falls on in `timeZone`. */
export function localDate(instant: Date, timeZone: string = UTC): Temporal.PlainDate {
  return Temporal.Instant.fromEpochMilliseconds(instant.getTime()).toZonedDateTimeISO(timeZone).toPlainDate();
}

/** "2026-03-01": the local date of `instant` in `timeZone`, for invoice texts. */
export function localDay(instant: Date, timeZone: string = UTC): string {
  return localDate(instant, timeZone).toString();
}

/** The first instant of `date` in `timeZone` (its midnight, or later when midnight is skipped). */
function midnight(date: Temporal.PlainDate, timeZone: string): Date {
  return new Date(date.toZonedDateTime(timeZone).epochMilliseconds);
}

function monthIndex(date: Temporal.PlainDate): number {
  return date.year * 12 + (date.month - 1);
}

/** Local midnight of `day` (clamped to the month's length) in the month with this index. */
function monthBoundary(index: number, day: number, timeZone: string): Date {
  const year = Math.floor(index / 12);
  const month = index - year * 12 + 1;
  return midnight(Temporal.PlainDate.from({ year, month, day }, { overflow: "constrain" }), timeZone);
}

/**
 * `days` calendar days after `instant` at the same local time in `timeZone` (a 14-day trial that
 * spans a daylight-saving switch lasts 14 × 24 h ± 1 h). In UTC: exactly `days` × 24 h.
 */
export function addLocalDays(instant: Date, days: number, timeZone: string = UTC): Date {
  if (timeZone === UTC) return new Date(instant.getTime() + days * DAY_MS);
  const zoned = Temporal.Instant.fromEpochMilliseconds(instant.getTime()).toZonedDateTimeISO(timeZone);
  return new Date(zoned.add({ days }).epochMilliseconds);
}

/** The anchor day a subscription starting at `startAt` uses when none is given (null for day/week). */
export function defaultBillingAnchorDay(
  interval: BillingPeriodSpec["interval"],
  startAt: Date,
  timeZone: string = UTC,
): number | null {
  return interval === "month" || interval === "year" ? localDate(startAt, timeZone).day : null;
}

/** The grid boundary k, k+1 around `instant`, given the boundary function and a first guess of k. */
function bracket(instant: Date, boundary: (k: number) => Date, guess: number): Period {
  let k = guess;
  // The guess is off by at most one: the instant may lie before its month's (day's) boundary.
  while (boundary(k).getTime() > instant.getTime()) k -= 1;
  while (boundary(k + 1).getTime() <= instant.getTime()) k += 1;
  return { start: boundary(k), end: boundary(k + 1) };
}

function gridPeriod(anchor: PeriodAnchor, instant: Date): Period {
  const timeZone = anchor.timeZone ?? UTC;
  const startDate = localDate(anchor.startAt, timeZone);
  if (anchor.interval === "day" || anchor.interval === "week") {
    const stepDays = anchor.count * (anchor.interval === "week" ? 7 : 1);
    if (timeZone === UTC) {
      // Every UTC day is 24 h long: plain arithmetic, no calendar needed (the hot path).
      const origin = midnight(startDate, UTC).getTime();
      const step = stepDays * DAY_MS;
      const k = Math.floor((instant.getTime() - origin) / step);
      return { start: new Date(origin + k * step), end: new Date(origin + (k + 1) * step) };
    }
    const elapsedDays = startDate.until(localDate(instant, timeZone), { largestUnit: "days" }).days;
    const boundary = (k: number) => midnight(startDate.add({ days: k * stepDays }), timeZone);
    return bracket(instant, boundary, Math.floor(elapsedDays / stepDays));
  }
  const months = anchor.interval === "year" ? 12 * anchor.count : anchor.count;
  const day = anchor.billingAnchorDay ?? startDate.day;
  const clampedInStartMonth = Math.min(day, startDate.daysInMonth);
  const origin = monthIndex(startDate) + (clampedInStartMonth >= startDate.day ? 0 : 1);
  const boundary = (k: number) => monthBoundary(origin + k * months, day, timeZone);
  const guess = Math.floor((monthIndex(localDate(instant, timeZone)) - origin) / months);
  return bracket(instant, boundary, guess);
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

/**
 * The share of `period` that lies at or after `at`, as an exact ratio of milliseconds (elapsed
 * time: in a period with a daylight-saving switch an hour is an hour, whatever the wall clock says).
 */
export function remainingShare(period: Period, at: Date): { remainingMs: number; periodMs: number } {
  const periodMs = period.end.getTime() - period.start.getTime();
  const remaining = period.end.getTime() - at.getTime();
  return { remainingMs: Math.min(periodMs, Math.max(0, remaining)), periodMs };
}
