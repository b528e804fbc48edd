import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PeriodAnchor, periodContaining, periodsBetween, remainingShare } from "./period.ts";

const at = (iso: string) => new Date(iso);
const iso = (period: { start: Date; end: Date }) => [period.start.toISOString(), period.end.toISOString()];

function monthly(startAt: string, billingAnchorDay: number | null = null, count = 1): PeriodAnchor {
  return { startAt: at(startAt), billingAnchorDay, interval: "month", count };
}

describe("periodContaining", () => {
  it("starts monthly periods at midnight UTC of the anchor day, the first one at the start instant", () => {
    const anchor = monthly("2026-01-10T14:30:00Z");
    expect(iso(periodContaining(anchor, at("2026-01-20T00:00:00Z")))).toEqual([
      "2026-01-10T14:30:00.000Z",
      "2026-02-10T00:00:00.000Z",
    ]);
    expect(iso(periodContaining(anchor, at("2026-02-10T00:00:00Z")))).toEqual([
      "2026-02-10T00:00:00.000Z",
      "2026-03-10T00:00:00.000Z",
    ]);
    expect(iso(periodContaining(anchor, at("2026-03-09T23:59:59.999Z")))).toEqual([
      "2026-02-10T00:00:00.000Z",
      "2026-03-10T00:00:00.000Z",
    ]);
  });

  it("clamps anchor day 31 to short months and returns to the 31st in months that have it", () => {
    const anchor = monthly("2026-01-31T00:00:00Z", 31);
    const starts = periodsBetween(anchor, at("2026-01-31T00:00:00Z"), at("2026-08-01T00:00:00Z")).map(
      (period) => period.start.toISOString().slice(0, 10),
    );
    expect(starts).toEqual([
      "2026-01-31",
      "2026-02-28",
      "2026-03-31",
      "2026-04-30",
      "2026-05-31",
      "2026-06-30",
      "2026-07-31",
    ]);
  });

  it("lands on February 29 in leap years", () => {
    const anchor = monthly("2028-01-31T00:00:00Z", 31);
    expect(iso(periodContaining(anchor, at("2028-02-15T00:00:00Z")))).toEqual([
      "2028-01-31T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
    ]);
  });

  it("opens with a short stub until the first anchor day after the start", () => {
    const anchor = monthly("2026-01-20T09:00:00Z", 15);
    expect(iso(periodContaining(anchor, at("2026-02-01T00:00:00Z")))).toEqual([
      "2026-01-20T09:00:00.000Z",
      "2026-02-15T00:00:00.000Z",
    ]);
    expect(iso(periodContaining(anchor, at("2026-02-20T00:00:00Z")))).toEqual([
      "2026-02-15T00:00:00.000Z",
      "2026-03-15T00:00:00.000Z",
    ]);
  });

  it("counts quarters and years from the first anchor boundary", () => {
    const quarterly = monthly("2026-01-10T00:00:00Z", null, 3);
    expect(iso(periodContaining(quarterly, at("2026-05-01T00:00:00Z")))).toEqual([
      "2026-04-10T00:00:00.000Z",
      "2026-07-10T00:00:00.000Z",
    ]);
    const yearly: PeriodAnchor = {
      startAt: at("2024-02-29T00:00:00Z"),
      billingAnchorDay: null,
      interval: "year",
      count: 1,
    };
    expect(iso(periodContaining(yearly, at("2025-06-01T00:00:00Z")))).toEqual([
      "2025-02-28T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
    ]);
    expect(periodContaining(yearly, at("2028-03-01T00:00:00Z")).start.toISOString()).toBe(
      "2028-02-29T00:00:00.000Z",
    );
  });

  it("anchors day and week periods at the start's midnight", () => {
    const daily: PeriodAnchor = {
      startAt: at("2026-03-05T18:00:00Z"),
      billingAnchorDay: null,
      interval: "day",
      count: 1,
    };
    expect(iso(periodContaining(daily, at("2026-03-05T20:00:00Z")))).toEqual([
      "2026-03-05T18:00:00.000Z",
      "2026-03-06T00:00:00.000Z",
    ]);
    expect(iso(periodContaining(daily, at("2026-03-09T01:00:00Z")))).toEqual([
      "2026-03-09T00:00:00.000Z",
      "2026-03-10T00:00:00.000Z",
    ]);
    const biweekly: PeriodAnchor = {
      startAt: at("2026-03-05T00:00:00Z"),
      billingAnchorDay: 31,
      interval: "week",
      count: 2,
    };
    expect(iso(periodContaining(biweekly, at("2026-03-20T00:00:00Z")))).toEqual([
      "2026-03-19T00:00:00.000Z",
      "2026-04-02T00:00:00.000Z",
    ]);
  });
});

describe("periodsBetween", () => {
  it("lists every period overlapping the range, contiguous", () => {
    const periods = periodsBetween(
      monthly("2026-01-15T00:00:00Z"),
      at("2026-02-01T00:00:00Z"),
      at("2026-04-15T00:00:00Z"),
    );
    expect(periods.map(iso)).toEqual([
      ["2026-01-15T00:00:00.000Z", "2026-02-15T00:00:00.000Z"],
      ["2026-02-15T00:00:00.000Z", "2026-03-15T00:00:00.000Z"],
      ["2026-03-15T00:00:00.000Z", "2026-04-15T00:00:00.000Z"],
    ]);
    expect(
      periodsBetween(monthly("2026-01-15T00:00:00Z"), at("2026-02-01T00:00:00Z"), at("2026-02-01T00:00:00Z")),
    ).toEqual([]);
  });
});

describe("remainingShare", () => {
  it("is the milliseconds left over the period's length, clamped to the period", () => {
    const period = { start: at("2026-04-01T00:00:00Z"), end: at("2026-05-01T00:00:00Z") };
    expect(remainingShare(period, at("2026-04-16T00:00:00Z"))).toEqual({
      remainingMs: 15 * 86_400_000,
      periodMs: 30 * 86_400_000,
    });
    expect(remainingShare(period, at("2026-03-01T00:00:00Z")).remainingMs).toBe(30 * 86_400_000);
    expect(remainingShare(period, at("2026-06-01T00:00:00Z")).remainingMs).toBe(0);
  });
});

const MIN = Date.UTC(1990, 0, 1);
const MAX = Date.UTC(2150, 0, 1);
const anchorArbitrary = fc.record({
  startAt: fc.integer({ min: MIN, max: MAX }).map((ms) => new Date(ms)),
  billingAnchorDay: fc.option(fc.integer({ min: 1, max: 31 }), { nil: null }),
  interval: fc.constantFrom("day" as const, "week" as const, "month" as const, "year" as const),
  count: fc.integer({ min: 1, max: 12 }),
});
const instantArbitrary = fc.integer({ min: MIN, max: MAX }).map((ms) => new Date(ms));

describe("periods (properties)", () => {
  it("tile time: each instant lies in its period, and neighbours meet exactly", () => {
    fc.assert(
      fc.property(anchorArbitrary, instantArbitrary, (anchor, instant) => {
        const period = periodContaining(anchor, instant);
        expect(period.start.getTime()).toBeLessThanOrEqual(instant.getTime());
        expect(period.end.getTime()).toBeGreaterThan(instant.getTime());
        expect(periodContaining(anchor, period.end).start).toEqual(period.end);
        expect(periodContaining(anchor, new Date(period.start.getTime() - 1)).end).toEqual(period.start);
        expect(periodContaining(anchor, new Date(period.end.getTime() - 1))).toEqual(period);
      }),
      { numRuns: 300 },
    );
  });

  it("start month periods on the anchor day clamped to the month, at midnight UTC", () => {
    fc.assert(
      fc.property(anchorArbitrary, instantArbitrary, (raw, instant) => {
        const anchor = { ...raw, interval: "month" as const, billingAnchorDay: raw.billingAnchorDay ?? 31 };
        const { start } = periodContaining(anchor, instant);
        if (start.getTime() === anchor.startAt.getTime()) return;
        const daysInMonth = new Date(
          Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0),
        ).getUTCDate();
        expect(start.getUTCDate()).toBe(Math.min(anchor.billingAnchorDay, daysInMonth));
        expect(start.getTime() % 86_400_000).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it("make the start instant a boundary", () => {
    fc.assert(
      fc.property(anchorArbitrary, (anchor) => {
        expect(periodContaining(anchor, anchor.startAt).start).toEqual(anchor.startAt);
      }),
    );
  });

  it("periodsBetween covers the range without gaps or overlaps", () => {
    fc.assert(
      fc.property(
        anchorArbitrary.filter((anchor) => anchor.interval !== "day"),
        instantArbitrary,
        fc.integer({ min: 0, max: 400 * 86_400_000 }),
        (anchor, from, length) => {
          const to = new Date(from.getTime() + length);
          const periods = periodsBetween(anchor, from, to);
          if (length === 0) {
            expect(periods).toEqual([]);
            return;
          }
          expect(periods[0]?.start.getTime()).toBeLessThanOrEqual(from.getTime());
          expect(periods.at(-1)?.end.getTime()).toBeGreaterThanOrEqual(to.getTime());
          for (let i = 1; i < periods.length; i++) expect(periods[i]?.start).toEqual(periods[i - 1]?.end);
        },
      ),
      { numRuns: 100 },
    );
  });
});
