import fc from "fast-check";
import { Temporal } from "temporal-polyfill";
import { describe, expect, it } from "vitest";
import { newSubscription, subscriptionPeriodAt } from "./lifecycle.ts";
import {
  addLocalDays,
  defaultBillingAnchorDay,
  type PeriodAnchor,
  periodContaining,
  periodsBetween,
} from "./period.ts";

const at = (iso: string) => new Date(iso);
const iso = (period: { start: Date; end: Date }) => [period.start.toISOString(), period.end.toISOString()];
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const hours = (period: { start: Date; end: Date }) =>
  (period.end.getTime() - period.start.getTime()) / HOUR_MS;

function anchor(
  timeZone: string,
  interval: PeriodAnchor["interval"],
  startAt: string,
  billingAnchorDay: number | null = null,
  count = 1,
): PeriodAnchor {
  return { startAt: at(startAt), billingAnchorDay, interval, count, timeZone };
}

describe("periods in a time zone", () => {
  const NEW_YORK = "America/New_York";

  it("starts monthly periods at local midnight of the anchor day, as UTC instants", () => {
    // 2026-01-01 00:00 in New York (EST, UTC−5).
    const monthly = anchor(NEW_YORK, "month", "2026-01-01T05:00:00Z");
    expect(iso(periodContaining(monthly, at("2026-02-14T12:00:00Z")))).toEqual([
      "2026-02-01T05:00:00.000Z",
      "2026-03-01T05:00:00.000Z",
    ]);
    // 04:59Z on 1 March is still 28 February, 23:59 in New York: February's period.
    expect(periodContaining(monthly, at("2026-03-01T04:59:59.999Z")).start.toISOString()).toBe(
      "2026-02-01T05:00:00.000Z",
    );
  });

  it("makes the period with the spring-forward switch one hour shorter (northern hemisphere)", () => {
    const monthly = anchor(NEW_YORK, "month", "2026-01-01T05:00:00Z");
    // DST starts on 8 March 2026: March runs from EST midnight to EDT midnight.
    const march = periodContaining(monthly, at("2026-03-20T00:00:00Z"));
    expect(iso(march)).toEqual(["2026-03-01T05:00:00.000Z", "2026-04-01T04:00:00.000Z"]);
    expect(hours(march)).toBe(31 * 24 - 1);
  });

  it("makes the period with the fall-back switch one hour longer (northern hemisphere)", () => {
    const monthly = anchor(NEW_YORK, "month", "2026-01-01T05:00:00Z");
    // DST ends on 1 November 2026, the first day of the period.
    const november = periodContaining(monthly, at("2026-11-15T00:00:00Z"));
    expect(iso(november)).toEqual(["2026-11-01T04:00:00.000Z", "2026-12-01T05:00:00.000Z"]);
    expect(hours(november)).toBe(30 * 24 + 1);
  });

  it("follows the southern hemisphere's switches the other way round", () => {
    const monthly = anchor("Australia/Sydney", "month", "2026-01-01T00:00:00Z");
    // Sydney leaves daylight saving (UTC+11 → +10) on 5 April 2026 and re-enters it on 4 October.
    const april = periodContaining(monthly, at("2026-04-10T00:00:00Z"));
    expect(iso(april)).toEqual(["2026-03-31T13:00:00.000Z", "2026-04-30T14:00:00.000Z"]);
    expect(hours(april)).toBe(30 * 24 + 1);
    const october = periodContaining(monthly, at("2026-10-10T00:00:00Z"));
    expect(iso(october)).toEqual(["2026-09-30T14:00:00.000Z", "2026-10-31T13:00:00.000Z"]);
    expect(hours(october)).toBe(31 * 24 - 1);
  });

  it("clamps anchor day 31 to short months at local midnight (Asia/Kolkata, UTC+05:30)", () => {
    const monthly = anchor("Asia/Kolkata", "month", "2026-01-30T18:30:00Z", 31);
    const starts = periodsBetween(monthly, at("2026-01-30T18:30:00Z"), at("2026-05-01T00:00:00Z")).map(
      (period) => period.start.toISOString(),
    );
    expect(starts).toEqual([
      "2026-01-30T18:30:00.000Z", // 31 Jan
      "2026-02-27T18:30:00.000Z", // 28 Feb
      "2026-03-30T18:30:00.000Z", // 31 Mar
      "2026-04-29T18:30:00.000Z", // 30 Apr
    ]);
    const leap = anchor("Asia/Kolkata", "month", "2028-01-30T18:30:00Z", 31);
    expect(periodContaining(leap, at("2028-03-01T00:00:00Z")).start.toISOString()).toBe(
      "2028-02-28T18:30:00.000Z", // 29 Feb 2028
    );
  });

  it("cuts daily periods at every local midnight: 23 hours in spring, 25 in autumn", () => {
    const daily = anchor(NEW_YORK, "day", "2026-03-01T05:00:00Z");
    const spring = periodContaining(daily, at("2026-03-08T12:00:00Z"));
    expect(iso(spring)).toEqual(["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
    expect(hours(spring)).toBe(23);
    expect(iso(periodContaining(daily, at("2026-03-09T04:00:00Z")))).toEqual([
      "2026-03-09T04:00:00.000Z",
      "2026-03-10T04:00:00.000Z",
    ]);
    const autumn = periodContaining(daily, at("2026-11-01T12:00:00Z"));
    expect(iso(autumn)).toEqual(["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]);
    expect(hours(autumn)).toBe(25);
  });

  it("cuts weekly and yearly periods at local midnight too", () => {
    const weekly = anchor(NEW_YORK, "week", "2026-03-02T05:00:00Z");
    const week = periodContaining(weekly, at("2026-03-08T12:00:00Z"));
    expect(iso(week)).toEqual(["2026-03-02T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
    expect(hours(week)).toBe(7 * 24 - 1);
    const yearly = anchor(NEW_YORK, "year", "2026-01-01T05:00:00Z");
    expect(iso(periodContaining(yearly, at("2027-06-01T00:00:00Z")))).toEqual([
      "2027-01-01T05:00:00.000Z",
      "2028-01-01T05:00:00.000Z",
    ]);
  });

  it("starts a day whose midnight does not exist at its first instant (America/Santiago)", () => {
    // Chile springs forward at 24:00 on 5 September 2026: 6 September begins at 01:00 (UTC−3).
    const daily = anchor("America/Santiago", "day", "2026-09-01T04:00:00Z");
    const saturday = periodContaining(daily, at("2026-09-05T12:00:00Z"));
    expect(iso(saturday)).toEqual(["2026-09-05T04:00:00.000Z", "2026-09-06T04:00:00.000Z"]);
    const sunday = periodContaining(daily, at("2026-09-06T12:00:00Z"));
    expect(iso(sunday)).toEqual(["2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"]);
    expect(hours(sunday)).toBe(23);
  });

  it("keeps the start instant a boundary when it is not a local midnight", () => {
    // 22:00 on 28 February in New York (03:00Z on 1 March): anchored on the 28th, local time.
    const startAt = at("2026-03-01T03:00:00Z");
    expect(defaultBillingAnchorDay("month", startAt, NEW_YORK)).toBe(28);
    expect(defaultBillingAnchorDay("month", startAt)).toBe(1);
    const monthly: PeriodAnchor = {
      startAt,
      billingAnchorDay: 28,
      interval: "month",
      count: 1,
      timeZone: NEW_YORK,
    };
    expect(iso(periodContaining(monthly, startAt))).toEqual([
      "2026-03-01T03:00:00.000Z",
      "2026-03-28T04:00:00.000Z",
    ]);
  });

  it("adds trial days on the local calendar: same wall-clock time after a switch", () => {
    // 12:00 EST + 14 days = 12:00 EDT, 13 days and 23 hours later.
    expect(addLocalDays(at("2026-03-01T17:00:00Z"), 14, NEW_YORK).toISOString()).toBe(
      "2026-03-15T16:00:00.000Z",
    );
    expect(addLocalDays(at("2026-03-01T17:00:00Z"), 14).toISOString()).toBe("2026-03-15T17:00:00.000Z");
  });

  it("gives a subscription created in a zone its local grid and trial", () => {
    const { subscription } = newSubscription(
      {
        id: "sub_1",
        tenantId: "ten_1",
        mode: "test",
        customerId: "cus_1",
        offeringId: "off_1",
        trialDays: 7,
        items: [],
        billingPeriod: { interval: "month", count: 1 },
        currency: "USD",
        timezone: NEW_YORK,
      },
      // 10 March 2026, 21:00 in New York.
      at("2026-03-11T01:00:00Z"),
    );
    expect(subscription.timezone).toBe(NEW_YORK);
    expect(subscription.trialEndAt?.toISOString()).toBe("2026-03-18T01:00:00.000Z");
    // Anchored on the 17th: the trial-end date in New York, not the 18th in UTC.
    expect(subscription.billingAnchorDay).toBe(17);
    expect(iso(subscriptionPeriodAt(subscription, at("2026-04-20T00:00:00Z")))).toEqual([
      "2026-04-17T04:00:00.000Z",
      "2026-05-17T04:00:00.000Z",
    ]);
  });
});

const ZONES = [
  "UTC",
  "America/New_York",
  "Australia/Sydney",
  "Asia/Kolkata",
  "Europe/London",
  "America/Santiago",
];
const MIN = Date.UTC(1995, 0, 1);
const MAX = Date.UTC(2060, 0, 1);
const zonedAnchor = fc.record({
  startAt: fc.integer({ min: MIN, max: MAX }).map((ms) => new Date(ms)),
  billingAnchorDay: fc.option(fc.integer({ min: 1, max: 31 }), { nil: null }),
  interval: fc.constantFrom("day" as const, "week" as const, "month" as const, "year" as const),
  count: fc.integer({ min: 1, max: 12 }),
  timeZone: fc.constantFrom(...ZONES),
});
const instant = fc.integer({ min: MIN, max: MAX }).map((ms) => new Date(ms));

function wallClock(date: Date, timeZone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.fromEpochMilliseconds(date.getTime()).toZonedDateTimeISO(timeZone);
}

describe("periods in a time zone (properties)", () => {
  it("tile time in every zone: each instant lies in its period, and neighbours meet exactly", () => {
    fc.assert(
      fc.property(zonedAnchor, instant, (anchor, at) => {
        const period = periodContaining(anchor, at);
        expect(period.start.getTime()).toBeLessThanOrEqual(at.getTime());
        expect(period.end.getTime()).toBeGreaterThan(at.getTime());
        expect(periodContaining(anchor, period.end).start).toEqual(period.end);
        expect(periodContaining(anchor, new Date(period.start.getTime() - 1)).end).toEqual(period.start);
      }),
      { numRuns: 300 },
    );
  });

  it("start every grid period at the first instant of a local day, on the clamped anchor day for months", () => {
    fc.assert(
      fc.property(zonedAnchor, instant, (anchor, at) => {
        const { start } = periodContaining(anchor, at);
        if (start.getTime() === anchor.startAt.getTime()) return;
        const local = wallClock(start, anchor.timeZone);
        expect(local.startOfDay().epochMilliseconds).toBe(start.getTime());
        if (anchor.interval === "month" || anchor.interval === "year") {
          const day = anchor.billingAnchorDay ?? wallClock(anchor.startAt, anchor.timeZone).day;
          expect(local.day).toBe(Math.min(day, local.daysInMonth));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("give in UTC exactly what the zone-less grid gives", () => {
    fc.assert(
      fc.property(zonedAnchor, instant, (anchor, at) => {
        const { timeZone: _zone, ...utcAnchor } = anchor;
        expect(periodContaining({ ...utcAnchor, timeZone: "UTC" }, at)).toEqual(
          periodContaining(utcAnchor, at),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("differ from UTC by the zone's offset only, for day periods away from switches", () => {
    const daily = anchor("Asia/Kolkata", "day", "2026-01-01T00:00:00Z");
    const period = periodContaining(daily, at("2026-06-15T12:00:00Z"));
    expect(iso(period)).toEqual(["2026-06-14T18:30:00.000Z", "2026-06-15T18:30:00.000Z"]);
    expect(period.end.getTime() - period.start.getTime()).toBe(DAY_MS);
  });
});
