import { hourStart, minuteStart, type Window } from "./domain/windows.ts";

const RETAIN_HOURS_MS = 40 * 24 * 3_600_000;
const RETAIN_MINUTES_MS = 2 * 3_600_000;

interface CachedWindow extends Window {
  value: number;
}

interface Series {
  hours: Map<number, number>;
  minutes: Map<number, number>;
  /** Sums of the windows decisions asked for, kept current as usage arrives. */
  windows: CachedWindow[];
  lastPrunedMs: number;
}

/**
 * Usage per customer and billable unit, in process memory, for quota decisions: hourly buckets for
 * 40 days and minute buckets for two hours, so any quota window (billing period, day, hour, minute)
 * is a sum of buckets. The windows decisions use are cached and updated in place, so a decision is
 * a map lookup. Check-and-consume is atomic because JavaScript runs it without interleaving.
 *
 * Counters are for enforcement: they hold plain numbers (exact for integer quantities below 2^53);
 * invoices are computed from the database's NUMERIC values, never from these.
 */
export class UsageCounters {
  readonly #series = new Map<string, Series>();

  static key(tenantId: string, mode: string, customerId: string, billableUnitId: string): string {
    return `${tenantId}\u0000${mode}\u0000${customerId}\u0000${billableUnitId}`;
  }

  add(key: string, atMs: number, amount: number): void {
    const series = this.#get(key);
    const hour = hourStart(atMs);
    series.hours.set(hour, (series.hours.get(hour) ?? 0) + amount);
    const minute = minuteStart(atMs);
    series.minutes.set(minute, (series.minutes.get(minute) ?? 0) + amount);
    for (const window of series.windows) {
      if (atMs >= window.startMs && atMs < window.endMs) window.value += amount;
    }
    this.#prune(series, atMs);
  }

  /** What was used in [window.startMs, window.endMs). */
  used(key: string, window: Window): number {
    const series = this.#get(key);
    const cached = series.windows.find((w) => w.startMs === window.startMs && w.endMs === window.endMs);
    if (cached) return cached.value;
    const value = this.#sum(series, window);
    // Keep the few windows in use; an older one (a past period) is dropped first.
    series.windows.push({ ...window, value });
    if (series.windows.length > 6) series.windows.shift();
    return value;
  }

  /** Loads usage recorded before this process started (hourly rollups and the last hour's events). */
  loadHour(key: string, hourStartMs: number, amount: number): void {
    const series = this.#get(key);
    series.hours.set(hourStartMs, (series.hours.get(hourStartMs) ?? 0) + amount);
    series.windows = [];
  }

  loadMinute(key: string, minuteStartMs: number, amount: number): void {
    const series = this.#get(key);
    series.minutes.set(minuteStartMs, (series.minutes.get(minuteStartMs) ?? 0) + amount);
    series.windows = [];
  }

  /**
   * After a load that brought the hour `hourStartMs` as an hourly total and only its last minutes
   * as minute buckets: the rest of the hour goes into the hour's first minute. Every window that
   * ends after the loaded minutes began then sums exactly (a window ending mid-hour sums the
   * hour's minutes whole; a minute window finds its own minute); only a minute window of this
   * hour that is already over would misplace it, and decisions never ask for one.
   */
  foldHourIntoMinutes(hourStartMs: number): void {
    const hourEndMs = hourStartMs + 3_600_000;
    for (const series of this.#series.values()) {
      const hour = series.hours.get(hourStartMs);
      if (hour === undefined) continue;
      const rest = hour - sumRange(series.minutes, hourStartMs, hourEndMs);
      if (rest === 0) continue;
      series.minutes.set(hourStartMs, (series.minutes.get(hourStartMs) ?? 0) + rest);
      series.windows = [];
    }
  }

  clear(): void {
    this.#series.clear();
  }

  /**
   * Whole hours from hour buckets, the current partial hour from minute buckets (kept two hours).
   * A window that starts mid-hour (a subscription's first period, a trial) counts from the top of
   * that hour: minute buckets of a start long past are gone, and usage in the minutes before a
   * subscription began is rare; the end is exact, so a quota renews at its boundary instant.
   */
  #sum(series: Series, window: Window): number {
    const firstHour = hourStart(window.startMs);
    const lastHour = hourStart(window.endMs);
    if (firstHour === lastHour) return sumRange(series.minutes, window.startMs, window.endMs);
    return sumRange(series.hours, firstHour, lastHour) + sumRange(series.minutes, lastHour, window.endMs);
  }

  #get(key: string): Series {
    let series = this.#series.get(key);
    if (!series) {
      series = { hours: new Map(), minutes: new Map(), windows: [], lastPrunedMs: 0 };
      this.#series.set(key, series);
    }
    return series;
  }

  #prune(series: Series, nowMs: number): void {
    if (nowMs - series.lastPrunedMs < 60_000) return;
    series.lastPrunedMs = nowMs;
    for (const start of series.hours.keys()) if (start < nowMs - RETAIN_HOURS_MS) series.hours.delete(start);
    for (const start of series.minutes.keys())
      if (start < nowMs - RETAIN_MINUTES_MS) series.minutes.delete(start);
  }
}

function sumRange(buckets: Map<number, number>, fromMs: number, toMs: number): number {
  let total = 0;
  for (const [start, amount] of buckets) {
    if (start >= fromMs && start < toMs) total += amount;
  }
  return total;
}
