import { describe, expect, it } from "vitest";
import { Buckets, UsageCounters } from "./counters.ts";
import { fixedWindow } from "./domain/windows.ts";

const at = (iso: string) => new Date(iso).getTime();

describe("usage counters", () => {
  it("sums usage in a billing period, a day, an hour and a minute", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    counters.add(key, at("2026-11-01T00:00:00Z"), 5);
    counters.add(key, at("2026-11-28T09:59:59Z"), 2);
    counters.add(key, at("2026-11-28T10:00:00Z"), 3);
    counters.add(key, at("2026-11-28T10:00:30Z"), 4);
    const period = { startMs: at("2026-11-01T00:00:00Z"), endMs: at("2026-12-01T00:00:00Z") };
    expect(counters.used(key, period)).toBe(14);
    expect(counters.used(key, fixedWindow("day", at("2026-11-28T12:00:00Z")))).toBe(9);
    expect(counters.used(key, fixedWindow("hour", at("2026-11-28T10:30:00Z")))).toBe(7);
    expect(counters.used(key, fixedWindow("minute", at("2026-11-28T10:00:59Z")))).toBe(7);
  });

  it("keeps a window it was asked for current as usage arrives", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    const hour = fixedWindow("hour", at("2026-11-28T10:00:00Z"));
    expect(counters.used(key, hour)).toBe(0);
    counters.add(key, at("2026-11-28T10:10:00Z"), 1);
    counters.add(key, at("2026-11-28T11:00:00Z"), 1);
    expect(counters.used(key, hour)).toBe(1);
  });

  it("starts a new window at its boundary instant", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    counters.add(key, at("2026-11-28T23:59:59.999Z"), 10);
    expect(counters.used(key, fixedWindow("day", at("2026-11-28T23:59:59.999Z")))).toBe(10);
    expect(counters.used(key, fixedWindow("day", at("2026-11-29T00:00:00Z")))).toBe(0);
  });

  it("keeps counting a window that started mid-hour long after its minute buckets are gone", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    const period = { startMs: at("2026-11-15T10:37:00Z"), endMs: at("2026-12-15T00:00:00Z") };
    counters.add(key, at("2026-11-15T10:40:00Z"), 5);
    counters.add(key, at("2026-11-20T08:00:00Z"), 1);
    // The 10:40 minute bucket has been pruned by now; the hour bucket still holds it.
    expect(counters.used(key, period)).toBe(6);
  });

  it("is exact at the end of a window that ends mid-hour", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    const trial = { startMs: at("2026-11-01T10:37:00Z"), endMs: at("2026-11-15T10:37:00Z") };
    counters.add(key, at("2026-11-15T10:36:59Z"), 2);
    counters.add(key, at("2026-11-15T10:37:00Z"), 3);
    expect(counters.used(key, trial)).toBe(2);
  });

  it("folds a loaded hour into its first minute so windows ending in it stay exact after a restart", () => {
    const counters = new UsageCounters();
    const key = UsageCounters.key("ten", "test", "cus", "bu");
    // What a restart at 10:20:30 loads: the hour's total (10:05, 10:19 and 10:20:10) and the
    // current minute's events, then the fold.
    counters.loadHour(key, at("2026-11-15T10:00:00Z"), 2 + 3 + 4);
    counters.loadMinute(key, at("2026-11-15T10:20:00Z"), 4);
    counters.foldHourIntoMinutes(at("2026-11-15T10:00:00Z"));
    const trial = { startMs: at("2026-11-01T09:00:00Z"), endMs: at("2026-11-15T10:37:00Z") };
    expect(counters.used(key, trial)).toBe(9);
    expect(counters.used(key, fixedWindow("minute", at("2026-11-15T10:20:30Z")))).toBe(4);
    expect(counters.used(key, fixedWindow("hour", at("2026-11-15T10:20:30Z")))).toBe(9);
    counters.add(key, at("2026-11-15T10:21:00Z"), 1);
    expect(counters.used(key, trial)).toBe(10);
    expect(counters.used(key, fixedWindow("minute", at("2026-11-15T10:21:00Z")))).toBe(1);
  });
});

describe("buckets", () => {
  it("keeps buckets ordered whatever order usage arrives in, and sums and drops by start", () => {
    const buckets = new Buckets();
    for (const [start, amount] of [
      [300, 1],
      [100, 2],
      [300, 4],
      [200, 8],
      [500, 16],
      [100, 32],
      [400, 64],
    ] as const) {
      buckets.add(start, amount);
    }
    expect(buckets.size).toBe(5);
    expect(buckets.get(100)).toBe(34);
    expect(buckets.get(300)).toBe(5);
    expect(buckets.get(250)).toBeUndefined();
    expect(buckets.sum(100, 300)).toBe(42);
    expect(buckets.sum(150, 501)).toBe(93);
    expect(buckets.sum(600, 700)).toBe(0);
    buckets.dropBefore(300);
    expect(buckets.size).toBe(3);
    expect(buckets.sum(0, 1_000)).toBe(85);
  });
});
