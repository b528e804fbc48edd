import { AforoError, ExactDecimal, formatDecimal } from "@aforo/core";
import { Decimal } from "decimal.js";
import type { Aggregation } from "../../catalog/domain/billable-unit.ts";

/**
 * The pure half of `GET /v1/usage`: which range and windows a query covers, whether the hourly
 * rollups can answer it, and the decimal arithmetic done outside SQL. No I/O here.
 */

export const usageWindows = ["hour", "day", "month"] as const;
export type UsageWindow = (typeof usageWindows)[number];

/** AVG is sum / count rounded half-up (away from zero) to this many decimal places. */
export const AVERAGE_DECIMAL_PLACES = 12;
/** More windows than this in one answer is a mistake (hourly windows over years), not a report. */
export const MAX_WINDOWS = 10_000;
export const MAX_GROUP_BY_PATHS = 5;

const HOUR_MS = 3_600_000;
const PROPERTY_PATH = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,4}$/;

/** Aggregations the hourly rollups hold enough to answer; UNIQUE and PERCENTILE_95 need raw values. */
const rollupAggregations: readonly Aggregation[] = ["COUNT", "SUM", "MAX", "AVG", "LATEST"];

export interface UsageRange {
  from: Date;
  to: Date;
}

export interface WindowSpan {
  start: Date;
  end: Date;
}

export function startOfUtcMonth(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** `from` defaults to the start of the current UTC month, `to` to now; from must precede to. */
export function resolveRange(from: string | undefined, to: string | undefined, now: Date): UsageRange {
  const range = {
    from: from === undefined ? startOfUtcMonth(now) : new Date(from),
    to: to === undefined ? now : new Date(to),
  };
  if (Number.isNaN(range.from.getTime()) || Number.isNaN(range.to.getTime())) {
    throw new AforoError("validation-failed", "from and to must be RFC 3339 date-times.", {
      errors: [{ field: Number.isNaN(range.from.getTime()) ? "from" : "to", message: "must be RFC 3339" }],
    });
  }
  if (range.from.getTime() >= range.to.getTime()) {
    throw new AforoError(
      "unprocessable-entity",
      `from (${range.from.toISOString()}) must be before to (${range.to.toISOString()}).`,
      { errors: [{ field: "from", message: "must be before to" }] },
    );
  }
  return range;
}

/** `group_by=model,tokens.kind` → ["model", "tokens.kind"]; paths are checked, duplicates dropped. */
export function parseGroupBy(text: string | undefined): string[] {
  if (text === undefined || text.trim() === "") return [];
  const paths = [...new Set(text.split(",").map((part) => part.trim()))];
  const invalid = paths.filter((path) => !PROPERTY_PATH.test(path));
  if (invalid.length > 0 || paths.length > MAX_GROUP_BY_PATHS) {
    throw new AforoError(
      "validation-failed",
      `group_by takes up to ${MAX_GROUP_BY_PATHS} comma-separated property paths (letters, digits, _ and -, dotted).`,
      {
        errors: [
          {
            field: "group_by",
            message: invalid.length > 0 ? `invalid path '${invalid[0]}'` : "too many paths",
          },
        ],
      },
    );
  }
  return paths;
}

/** The UTC bucket a moment falls in. */
export function bucketStart(at: Date, window: UsageWindow): Date {
  if (window === "hour") return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
  if (window === "day") return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  return startOfUtcMonth(at);
}

export function nextBucketStart(start: Date, window: UsageWindow): Date {
  if (window === "hour") return new Date(start.getTime() + HOUR_MS);
  if (window === "day")
    return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 1));
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

/**
 * A bucket cut to the queried range: the first and last windows are partial when from/to do not
 * fall on window boundaries, so a row never claims time it did not measure.
 */
export function clipWindow(bucket: Date, window: UsageWindow | null, range: UsageRange): WindowSpan {
  if (window === null) return { start: range.from, end: range.to };
  const end = nextBucketStart(bucket, window);
  return {
    start: bucket.getTime() < range.from.getTime() ? range.from : bucket,
    end: end.getTime() > range.to.getTime() ? range.to : end,
  };
}

/** Every window of the range, in order (one spanning the range when there is no window). */
export function windowsOf(range: UsageRange, window: UsageWindow | null): WindowSpan[] {
  if (window === null) return [{ start: range.from, end: range.to }];
  const spans: WindowSpan[] = [];
  for (
    let bucket = bucketStart(range.from, window);
    bucket < range.to;
    bucket = nextBucketStart(bucket, window)
  ) {
    spans.push(clipWindow(bucket, window, range));
    if (spans.length > MAX_WINDOWS) throw tooManyWindows(window);
  }
  return spans;
}

/** Rough count, checked before any query runs. */
export function assertWindowCount(range: UsageRange, window: UsageWindow | null): void {
  if (window === null) return;
  const perWindowMs = window === "hour" ? HOUR_MS : window === "day" ? 24 * HOUR_MS : 28 * 24 * HOUR_MS;
  if ((range.to.getTime() - range.from.getTime()) / perWindowMs > MAX_WINDOWS + 1)
    throw tooManyWindows(window);
}

function tooManyWindows(window: UsageWindow): AforoError {
  return new AforoError(
    "unprocessable-entity",
    `The range holds more than ${MAX_WINDOWS} ${window} windows; narrow the range or use a wider window.`,
    { errors: [{ field: "window", message: `more than ${MAX_WINDOWS} windows` }] },
  );
}

export function isHourAligned(at: Date): boolean {
  return at.getTime() % HOUR_MS === 0;
}

/**
 * The hourly rollups answer exactly when every hour they hold lies wholly inside or outside the
 * range (from/to on hour boundaries), nothing splits events by property (no group_by), and the
 * aggregation can be composed from per-hour count, sum, max and latest.
 */
export function canUseRollups(
  aggregation: Aggregation,
  groupBy: readonly string[],
  range: UsageRange,
): boolean {
  return (
    rollupAggregations.includes(aggregation) &&
    groupBy.length === 0 &&
    isHourAligned(range.from) &&
    isHourAligned(range.to)
  );
}

/**
 * sum / count, rounded half-up to AVERAGE_DECIMAL_PLACES. The quotient is first truncated at a
 * precision that keeps every digit up to the rounding position (and more), so the half-up decision
 * sees the true digits: one rounding, never two.
 */
export function averageOf(sum: string, count: string): string {
  const total = new ExactDecimal(sum);
  const events = new ExactDecimal(count);
  if (events.isZero()) return "0";
  const integerDigits = Math.max(total.abs().toFixed(0).length, 1);
  const Wide = Decimal.clone({
    defaults: true,
    precision: integerDigits + AVERAGE_DECIMAL_PLACES + 10,
    rounding: Decimal.ROUND_DOWN,
    toExpNeg: -9e15,
    toExpPos: 9e15,
  });
  const quotient = new Wide(sum).div(new Wide(count));
  return formatDecimal(
    new ExactDecimal(quotient.toDecimalPlaces(AVERAGE_DECIMAL_PLACES, Decimal.ROUND_HALF_UP)),
  );
}

/** NUMERIC text from SQL ("3.00", null) as the API prints decimals ("3"); nothing is "0". */
export function canonicalDecimal(text: string | null | undefined): string {
  if (text === null || text === undefined) return "0";
  return formatDecimal(new ExactDecimal(text));
}
