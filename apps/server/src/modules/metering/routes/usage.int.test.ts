import { Decimal } from "decimal.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createUnit, type Fixture, sandbox } from "../../../testing/fixtures.ts";
import { createTestApp, type TestApp } from "../../../testing/test-app.ts";

// An independent model of GET /v1/usage: plain arrays and decimal.js, no SQL, no shared helpers.

const NOW = "2026-11-28T10:00:00Z";
const BASE_MS = Date.parse("2026-11-25T00:00:00Z");
const QUARTER_MS = 15 * 60_000;
const MAX_QUARTERS = (Date.parse(NOW) - BASE_MS) / QUARTER_MS;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MODELS = ["gpt-4o", "claude", "llama"] as const;
const SEED = Number(process.env.AFORO_PROPERTY_SEED ?? 20261128);

const D = Decimal.clone({ precision: 100, rounding: Decimal.ROUND_HALF_UP });

type Aggregation = "COUNT" | "SUM" | "MAX" | "AVG" | "LATEST" | "UNIQUE" | "PERCENTILE_95";

interface UnitSpec {
  key: string;
  aggregation: Aggregation;
  field?: string;
  filters?: { field: string; operator: string; value: string }[];
  /** What the event contributes (null for COUNT), mirroring the unit's field. */
  pick: (event: GeneratedEvent) => string | null;
  /** Whether the unit's filters let the event count. */
  counts: (event: GeneratedEvent) => boolean;
}

interface GeneratedEvent {
  customer: number;
  occurredAtMs: number;
  model: string | undefined;
  status: number;
  quantity: string;
  tokens: string;
  latency: string;
  user: string;
}

const always = () => true;
const units: UnitSpec[] = [
  {
    key: "u_count",
    aggregation: "COUNT",
    filters: [{ field: "status", operator: "LESS_THAN", value: "400" }],
    pick: () => null,
    counts: (e) => e.status < 400,
  },
  { key: "u_sum", aggregation: "SUM", field: "tokens.input", pick: (e) => e.tokens, counts: always },
  { key: "u_max", aggregation: "MAX", pick: (e) => e.quantity, counts: always },
  { key: "u_avg", aggregation: "AVG", field: "latency", pick: (e) => e.latency, counts: always },
  { key: "u_latest", aggregation: "LATEST", pick: (e) => e.quantity, counts: always },
  { key: "u_unique", aggregation: "UNIQUE", field: "user", pick: (e) => e.user, counts: always },
  { key: "u_p95", aggregation: "PERCENTILE_95", field: "latency", pick: (e) => e.latency, counts: always },
];

const decimalText = fc
  .tuple(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 3 }))
  .map(([digits, scale]) => new D(digits).div(10 ** scale).toFixed());

const eventArbitrary: fc.Arbitrary<GeneratedEvent> = fc.record({
  customer: fc.integer({ min: 0, max: 2 }),
  // Quarter hours make equal timestamps common (LATEST must break ties by id); a few seconds
  // past the quarter keep events off the hour boundaries.
  occurredAtMs: fc
    .tuple(fc.integer({ min: 0, max: MAX_QUARTERS - 1 }), fc.constantFrom(0, 0, 37_000))
    .map(([quarter, extra]) => BASE_MS + quarter * QUARTER_MS + extra),
  model: fc.option(fc.constantFrom(...MODELS), { nil: undefined, freq: 5 }),
  status: fc.constantFrom(200, 200, 201, 500),
  quantity: decimalText,
  tokens: decimalText,
  latency: decimalText,
  user: fc.constantFrom("ana", "bo", "cy", "di"),
});

/** The unit's aggregation over events in send order (a later event has the greater id). */
function aggregate(aggregation: Aggregation, events: readonly GeneratedEvent[], spec: UnitSpec): string {
  if (events.length === 0) return "0";
  const values = events.map((event) => spec.pick(event) ?? "0");
  switch (aggregation) {
    case "COUNT":
      return String(events.length);
    case "SUM":
      return values.reduce((sum, v) => sum.plus(v), new D(0)).toFixed();
    case "MAX":
      return D.max(...values).toFixed();
    case "AVG": {
      const sum = values.reduce((total, v) => total.plus(v), new D(0));
      return sum.div(events.length).toDecimalPlaces(12, Decimal.ROUND_HALF_UP).toFixed();
    }
    case "LATEST": {
      let latest = 0;
      events.forEach((event, index) => {
        if (event.occurredAtMs >= (events[latest]?.occurredAtMs ?? 0)) latest = index;
      });
      return new D(values[latest] ?? "0").toFixed();
    }
    case "UNIQUE":
      return String(new Set(values).size);
    case "PERCENTILE_95": {
      const sorted = values.map((v) => new D(v)).sort((a, b) => a.comparedTo(b));
      const rank = Math.ceil((95 * sorted.length) / 100);
      return (sorted[rank - 1] ?? new D(0)).toFixed();
    }
  }
}

interface ExpectedRow {
  customer_id: string;
  window_start: string;
  window_end: string;
  group?: Record<string, unknown>;
  value: string;
}

function bucketOf(ms: number, window: "hour" | "day" | null, from: number): number {
  if (window === "hour") return Math.floor(ms / HOUR_MS) * HOUR_MS;
  if (window === "day") return Math.floor(ms / DAY_MS) * DAY_MS;
  return from;
}

function expectedRows(
  spec: UnitSpec,
  events: readonly GeneratedEvent[],
  customers: readonly string[],
  query: { from: number; to: number; window: "hour" | "day" | null; groupByModel: boolean },
): { rows: ExpectedRow[]; total: string } {
  const inRange = events.filter(
    (e) => spec.counts(e) && e.occurredAtMs >= query.from && e.occurredAtMs < query.to,
  );
  const groups = new Map<string, GeneratedEvent[]>();
  for (const event of inRange) {
    const key = JSON.stringify([
      bucketOf(event.occurredAtMs, query.window, query.from),
      customers[event.customer],
      query.groupByModel ? (event.model ?? null) : undefined,
    ]);
    groups.set(key, [...(groups.get(key) ?? []), event]);
  }
  const rows = [...groups.entries()].map(([key, members]) => {
    const [bucket, customer, model] = JSON.parse(key) as [number, string, string | null | undefined];
    const span = query.window === "hour" ? HOUR_MS : query.window === "day" ? DAY_MS : query.to - query.from;
    return {
      customer_id: customer,
      window_start: new Date(Math.max(bucket, query.from)).toISOString(),
      window_end: new Date(Math.min(bucket + span, query.to)).toISOString(),
      ...(query.groupByModel ? { group: { model: model ?? null } } : {}),
      value: aggregate(spec.aggregation, members, spec),
    };
  });
  return { rows: sortRows(rows), total: aggregate(spec.aggregation, inRange, spec) };
}

function sortRows<T extends { customer_id: string; window_start: string; group?: unknown }>(rows: T[]): T[] {
  const key = (row: T) => `${row.window_start}|${row.customer_id}|${JSON.stringify(row.group ?? null)}`;
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function toMeterEvent(event: GeneratedEvent, unit: string, customer: string, key: string) {
  return {
    customer_id: customer,
    metric_id: unit,
    quantity: event.quantity,
    timestamp: new Date(event.occurredAtMs).toISOString(),
    idempotency_key: key,
    properties: {
      ...(event.model ? { model: event.model } : {}),
      status: event.status,
      tokens: { input: event.tokens },
      latency: event.latency,
      user: event.user,
    },
  };
}

describe("GET /v1/usage", () => {
  let t: TestApp;
  let other: { fixture: Fixture; customers: string[] };
  let run = 0;

  async function scopeWithUnits(fixture: Fixture): Promise<string[]> {
    for (const spec of units) {
      await createUnit(t, fixture, {
        key: spec.key,
        aggregation: spec.aggregation,
        ...(spec.field ? { field: spec.field } : {}),
        ...(spec.filters ? { filters: spec.filters } : {}),
      });
    }
    const customers: string[] = [];
    for (let i = 0; i < 3; i++) customers.push((await createCustomer(t, fixture)).id);
    return customers;
  }

  async function ingest(
    fixture: Fixture,
    customers: string[],
    events: readonly GeneratedEvent[],
    tag: string,
  ) {
    const batch = events.flatMap((event, index) =>
      units.map((spec) =>
        toMeterEvent(event, spec.key, customers[event.customer] ?? "", `${tag}-${index}-${spec.key}`),
      ),
    );
    if (batch.length === 0) return;
    const response = await t.request("POST", "/v1/meter/batch", { ...fixture.as, body: { events: batch } });
    expect(response.statusCode).toBe(200);
    const rejected = response.json().results.filter((r: { status: string }) => r.status === "REJECTED");
    expect(rejected).toEqual([]);
  }

  async function usage(fixture: Fixture, query: Record<string, string>) {
    const response = await t.request("GET", "/v1/usage", { ...fixture.as, query });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as { data: ExpectedRow[]; total: string };
    return { ...body, data: sortRows(body.data), source: response.headers["x-aforo-usage-source"] };
  }

  beforeAll(async () => {
    t = await createTestApp();
    t.clock.set(NOW);
    const fixture = await sandbox(t);
    other = { fixture, customers: await scopeWithUnits(fixture) };
  });
  afterAll(() => t.close());

  it("matches an independent computation for every aggregation, window, grouping and range", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArbitrary, { minLength: 0, maxLength: 30 }), async (events) => {
        run += 1;
        const fixture = await sandbox(t);
        const customers = await scopeWithUnits(fixture);
        // The same events in the tenant's live mode and in another tenant: neither may leak in.
        const live: Fixture = {
          tenant: fixture.tenant,
          as: { key: fixture.tenant.liveKey, tenant: fixture.tenant.id },
        };
        await ingest(live, await scopeWithUnits(live), events, `live-${run}`);
        await ingest(other.fixture, other.customers, events, `other-${run}`);
        await ingest(fixture, customers, events, `main-${run}`);

        const aligned = { from: BASE_MS, to: Date.parse("2026-11-28T11:00:00Z") };
        const covering = { from: BASE_MS - 1_000, to: Date.parse(NOW) + 1_000 };
        const partial = { from: BASE_MS + 17 * HOUR_MS + 90_000, to: BASE_MS + 60 * HOUR_MS + 45 * 60_000 };
        const iso = (ms: number) => new Date(ms).toISOString();

        for (const spec of units) {
          const base = { metric_id: spec.key };
          const rollupCapable = !["UNIQUE", "PERCENTILE_95"].includes(spec.aggregation);
          const check = async (
            range: { from: number; to: number },
            window: "hour" | "day" | null,
            groupByModel: boolean,
            expectedSource: "rollups" | "events",
          ) => {
            const answer = await usage(fixture, {
              ...base,
              from: iso(range.from),
              to: iso(range.to),
              ...(window ? { window } : {}),
              ...(groupByModel ? { group_by: "model" } : {}),
            });
            const expected = expectedRows(spec, events, customers, { ...range, window, groupByModel });
            const label = `${spec.key} ${window ?? "range"}${groupByModel ? " by model" : ""} ${iso(range.from)}`;
            expect(
              answer.data.map((row) => ({ ...row, metric_id: undefined })),
              label,
            ).toEqual(expected.rows.map((row) => ({ ...row, metric_id: undefined })));
            expect(answer.total, label).toBe(expected.total);
            expect(answer.source, label).toBe(expectedSource);
            return answer;
          };
          const viaRollups = rollupCapable ? "rollups" : "events";
          const whole = await check(aligned, null, false, viaRollups);
          await check(aligned, "hour", false, viaRollups);
          await check(aligned, "day", false, viaRollups);
          await check(aligned, null, true, "events");
          await check(partial, "day", false, "events");
          // The raw path over a range holding the same events agrees with the rollups exactly.
          const raw = await check(covering, null, false, "events");
          expect(raw.total).toBe(whole.total);
          expect(raw.data.map((row) => [row.customer_id, row.value])).toEqual(
            whole.data.map((row) => [row.customer_id, row.value]),
          );
        }

        // One customer: every day of the range appears, "0" where nothing counted.
        const customer = customers[0] ?? "";
        const days = await usage(fixture, {
          metric_id: "u_sum",
          customer_id: customer,
          from: iso(aligned.from),
          to: iso(aligned.to),
          window: "day",
        });
        const spec = units[1] as UnitSpec;
        expect(days.data.map((row) => [row.window_start, row.value])).toEqual(
          [0, 1, 2, 3].map((day) => {
            const from = BASE_MS + day * DAY_MS;
            const members = events.filter(
              (e) => e.customer === 0 && e.occurredAtMs >= from && e.occurredAtMs < from + DAY_MS,
            );
            return [iso(from), aggregate("SUM", members, spec)];
          }),
        );
      }),
      { seed: SEED, numRuns: 15, endOnFailure: true },
    );
  });

  it("answers every billable unit, ordered by key, when no metric_id is given", async () => {
    const fixture = await sandbox(t);
    await createUnit(t, fixture, { key: "calls", aggregation: "COUNT" });
    await createUnit(t, fixture, { key: "bytes", aggregation: "SUM" });
    const customer = (await createCustomer(t, fixture)).id;
    for (const [metric, quantity, key] of [
      ["calls", 1, "x1"],
      ["calls", 1, "x2"],
      ["bytes", 2.5, "x3"],
    ] as const) {
      const response = await t.request("POST", "/v1/meter", {
        ...fixture.as,
        body: {
          customer_id: customer,
          metric_id: metric,
          quantity,
          idempotency_key: key,
          timestamp: "2026-11-28T09:00:00Z",
        },
      });
      expect(response.statusCode).toBe(202);
    }
    const answer = await usage(fixture, { customer_id: customer });
    expect(
      (answer.data as (ExpectedRow & { metric_id: string })[]).map((row) => [row.metric_id, row.value]),
    ).toEqual([
      ["bytes", "2.5"],
      ["calls", "2"],
    ]);
    expect(answer.total).toBe("4.5");
    const one = await usage(fixture, { customer_id: customer, metric_id: "calls" });
    expect(one.total).toBe("2");
  });

  it("defaults the range to the current UTC month up to now", async () => {
    const fixture = await sandbox(t);
    await createUnit(t, fixture, { key: "calls", aggregation: "COUNT" });
    const customer = (await createCustomer(t, fixture, { external_id: "crm-1" })).id;
    const send = (timestamp: string, key: string) =>
      t.request("POST", "/v1/meter", {
        ...fixture.as,
        body: { customer_id: customer, metric_id: "calls", timestamp, idempotency_key: key },
      });
    expect((await send("2026-11-01T00:00:00Z", "a")).statusCode).toBe(202);
    expect((await send("2026-10-31T23:59:59Z", "b")).statusCode).toBe(202);
    expect((await send("2026-11-28T09:59:00Z", "c")).statusCode).toBe(202);
    const answer = await usage(fixture, { metric_id: "calls", customer_id: "crm-1" });
    expect(answer.data).toEqual([
      {
        customer_id: customer,
        metric_id: "calls",
        window_start: "2026-11-01T00:00:00.000Z",
        window_end: "2026-11-28T10:00:00.000Z",
        value: "2",
      },
    ]);
    expect(answer.total).toBe("2");
  });

  it("groups by a nested property path and answers month windows in UTC", async () => {
    const fixture = await sandbox(t);
    await createUnit(t, fixture, { key: "tokens", aggregation: "SUM", field: "tokens.count" });
    const customer = (await createCustomer(t, fixture)).id;
    const events = [
      { at: "2026-10-31T23:30:00Z", kind: "input", count: "1.5" },
      { at: "2026-11-01T00:30:00Z", kind: "input", count: "2.25" },
      { at: "2026-11-02T00:30:00Z", kind: "output", count: "10" },
    ].map((e, i) => ({
      customer_id: customer,
      metric_id: "tokens",
      timestamp: e.at,
      idempotency_key: `n-${i}`,
      properties: { tokens: { kind: e.kind, count: e.count } },
    }));
    await t.request("POST", "/v1/meter/batch", { ...fixture.as, body: { events } });
    const answer = await usage(fixture, {
      metric_id: "tokens",
      from: "2026-10-15T00:00:00Z",
      to: "2026-11-15T00:00:00Z",
      window: "month",
      group_by: "tokens.kind",
    });
    expect(answer.data.map((row) => [row.window_start, row.window_end, row.group, row.value])).toEqual([
      ["2026-10-15T00:00:00.000Z", "2026-11-01T00:00:00.000Z", { "tokens.kind": "input" }, "1.5"],
      ["2026-11-01T00:00:00.000Z", "2026-11-15T00:00:00.000Z", { "tokens.kind": "input" }, "2.25"],
      ["2026-11-01T00:00:00.000Z", "2026-11-15T00:00:00.000Z", { "tokens.kind": "output" }, "10"],
    ]);
    expect(answer.total).toBe("13.75");
  });

  it("refuses an unknown metric, an unknown customer and an empty range with 422, bad parameters with 400", async () => {
    const fixture = await sandbox(t);
    await createUnit(t, fixture, { key: "calls", aggregation: "COUNT" });
    const get = (query: Record<string, string>) => t.request("GET", "/v1/usage", { ...fixture.as, query });
    const unknown = await get({ metric_id: "nope" });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().type).toMatch(/\/problems\/unknown-metric$/);
    // A unit of another tenant is unknown here.
    expect((await get({ metric_id: "u_sum" })).statusCode).toBe(422);
    expect((await get({ metric_id: "calls", customer_id: other.customers[0] ?? "" })).statusCode).toBe(422);
    const backwards = await get({
      metric_id: "calls",
      from: "2026-11-02T00:00:00Z",
      to: "2026-11-01T00:00:00Z",
    });
    expect(backwards.statusCode).toBe(422);
    expect(backwards.json().errors).toEqual([{ field: "from", message: expect.any(String) }]);
    expect((await get({ metric_id: "calls", window: "week" })).statusCode).toBe(400);
    expect((await get({ metric_id: "calls", from: "yesterday" })).statusCode).toBe(400);
    expect((await get({ metric_id: "calls", group_by: "a b" })).statusCode).toBe(400);
    // Without metric_id every unit is answered (see above); an empty group_by path is still refused.
    expect((await get({})).statusCode).toBe(200);
  });
});
