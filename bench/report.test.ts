import { describe, expect, it } from "vitest";
import {
  countDecision,
  countStatuses,
  formatMs,
  formatRatio,
  formatTable,
  type Measurement,
  parseArgs,
  ratio,
  schedule,
  toJson,
  toRows,
} from "./report.ts";
import { batchOf, canAccessBody, type Seed, singleEvent, targets } from "./targets.ts";

const measurement = (overrides: Partial<Measurement> & { name: string }): Measurement => ({
  connections: 10,
  overallRate: undefined,
  durationS: 10,
  ok: 100_000,
  non2xx: 0,
  errors: 0,
  timeouts: 0,
  eventsPerRequest: undefined,
  p50Ms: 0.25,
  p99Ms: 1.5,
  baseline: undefined,
  ...overrides,
});

const sample: Measurement[] = [
  measurement({ name: "bare_get", ok: 400_000, baseline: "bare_get" }),
  measurement({ name: "bare_post", ok: 200_000, baseline: "bare_post" }),
  measurement({ name: "healthz", ok: 360_000, baseline: "bare_get", serverCpuMs: 9_000 }),
  measurement({
    name: "meter_batch_100",
    ok: 3_000,
    eventsPerRequest: 100,
    baseline: "bare_post",
    p50Ms: 42,
  }),
  measurement({
    name: "meter_single_latency_4c",
    connections: 4,
    overallRate: 500,
    ok: 5_000,
    eventsPerRequest: 1,
    p50Ms: 0.8,
    p99Ms: 3.25,
  }),
];

describe("rows", () => {
  it("computes request throughput from 2xx answers over the measured seconds", () => {
    const [bareGet] = toRows(sample);
    expect(bareGet?.rps).toBe(40_000);
  });

  it("compares request throughput with the named baseline, never events", () => {
    const rows = toRows(sample);
    const healthz = rows.find((row) => row.name === "healthz");
    const batch = rows.find((row) => row.name === "meter_batch_100");
    expect(healthz?.ratioToBare).toBeCloseTo(0.9);
    // 300 requests/s of 100 events: 30,000 events/s, but 300 ÷ 20,000 requests/s as a ratio.
    expect(batch?.eventsPerS).toBe(30_000);
    expect(batch?.ratioToBare).toBeCloseTo(0.015);
  });

  it("leaves the ratio out when a row has no baseline or the baseline did not run", () => {
    const rows = toRows([measurement({ name: "x", baseline: "bare_post" }), ...sample.slice(4)]);
    expect(rows.map((row) => row.ratioToBare)).toEqual([undefined, undefined]);
    expect(ratio(100, 0)).toBeUndefined();
  });

  it("counts socket errors and timeouts together", () => {
    const [row] = toRows([measurement({ name: "x", errors: 2, timeouts: 3, non2xx: 4 })]);
    expect(row).toMatchObject({ errors: 5, non2xx: 4 });
  });
});

describe("json", () => {
  it("has one key per row with rps or events_per_s, percentiles and the ratio", () => {
    const json = toJson(toRows(sample));
    expect(Object.keys(json)).toEqual(sample.map((m) => m.name));
    expect(json.healthz).toEqual({
      rps: 36_000,
      p50_ms: 0.25,
      p99_ms: 1.5,
      ratio_to_bare: 0.9,
      cpu_us_per_request: 25,
      connections: 10,
      non_2xx: 0,
      errors: 0,
    });
    expect(json.meter_batch_100).toMatchObject({
      rps: 300,
      events_per_s: 30_000,
      ratio_to_bare: 0.015,
      cpu_us_per_request: null,
    });
    expect(json.meter_single_latency_4c).toMatchObject({ ratio_to_bare: null, overall_rate: 500 });
  });
});

describe("table", () => {
  it("prints one aligned Markdown table with a line per row", () => {
    const table = formatTable(toRows(sample));
    const lines = table.split("\n");
    expect(lines).toHaveLength(2 + sample.length);
    expect(new Set(lines.map((line) => line.length)).size).toBe(1);
    expect(lines[0]).toMatch(/^\| row +\| conns \| +rate \| +rps \| events_per_s \| p50_ms \| p99_ms \|/);
    expect(lines[1]).toMatch(/^\|-+\|-+:\|/);
    expect(lines.find((line) => line.startsWith("| healthz"))).toMatch(
      /\| +36,000 \| +\| +0\.250 \| +1\.50 \| +0\.90 \| +25 \|/,
    );
    expect(lines.find((line) => line.startsWith("| meter_batch_100"))).toMatch(
      /\| +300 \| +30,000 \| +42\.0 \|/,
    );
    expect(lines.find((line) => line.startsWith("| meter_single_latency_4c"))).toMatch(
      /\| +500\/s \|.*\| +\| +0 \|$/,
    );
  });

  it("formats small ratios with two significant figures", () => {
    expect([0.904, 0.015, 0.00027, 0].map(formatRatio)).toEqual(["0.90", "0.015", "0.00027", "0.00"]);
  });

  it("formats milliseconds with a resolution that suits their size", () => {
    expect([0.1234, 3.456, 25.34, 1234.5].map(formatMs)).toEqual(["0.123", "3.46", "25.3", "1,235"]);
  });
});

describe("per-event statuses", () => {
  it("counts a single event's answer", () => {
    expect(countStatuses('{"id":"evt_1","status":"ACCEPTED"}')).toEqual({
      ACCEPTED: 1,
      DUPLICATE: 0,
      REJECTED: 0,
      other: 0,
    });
  });

  it("counts a batch answer, ignoring the numeric status of a rejected event's problem", () => {
    const body = JSON.stringify({
      results: [
        { index: 0, id: "evt_1", status: "ACCEPTED", flags: ["LATE"] },
        { index: 1, id: "evt_2", status: "DUPLICATE" },
        {
          index: 2,
          status: "REJECTED",
          error: { type: "t", title: "x", status: 422, detail: 'a "status":"ACCEPTED" b' },
        },
      ],
    });
    expect(countStatuses(body)).toEqual({ ACCEPTED: 1, DUPLICATE: 1, REJECTED: 1, other: 0 });
  });
});

describe("canAccess answers", () => {
  it("counts allowed:true, allowed:false (a refusal's problem document) and answers without it", () => {
    const counts = countDecision('{"allowed":true,"decision":"allow","plan":"Pro"}');
    countDecision('{"type":"https://x/problems/quota-exceeded","status":429,"allowed":false}', counts);
    countDecision('{"type":"https://x/problems/validation-failed","status":400}', counts);
    expect(counts).toEqual({ allowed: 1, denied: 1, other: 1 });
  });
});

describe("targets", () => {
  const seed: Seed = {
    runId: "r1",
    tenantId: "ten_1",
    key: "sk",
    customerId: "cus_1",
    metricKey: "api_calls",
    entitledCustomerId: "cus_2",
  };

  it("have unique names, and every baseline names a bare row", () => {
    const names = targets.map((target) => target.name);
    expect(new Set(names).size).toBe(names.length);
    for (const target of targets) {
      if (target.baseline) expect(targets.find((t) => t.name === target.baseline)?.server).toBe("bare");
    }
  });

  it("build bodies whose events all carry distinct idempotency keys", () => {
    const nextBatch = batchOf(3)(seed, "row");
    const events = [nextBatch(), nextBatch()].flatMap(
      (body) => (JSON.parse(body) as { events: { idempotency_key: string }[] }).events,
    );
    expect(events).toHaveLength(6);
    expect(new Set(events.map((event) => event.idempotency_key)).size).toBe(6);
    expect(JSON.parse(singleEvent(seed, "row")())).toEqual({
      customer_id: "cus_1",
      metric_id: "api_calls",
      idempotency_key: "r1.row.0",
    });
  });
});

describe("canAccess rows", () => {
  const seed: Seed = {
    runId: "r1",
    tenantId: "ten_1",
    key: "sk",
    customerId: "cus_1",
    metricKey: "api_calls",
    entitledCustomerId: "cus_2",
  };

  it("ask about the entitled customer; only the consume row consumes, and only the latency row has a fixed rate", () => {
    const rows = targets.filter((target) => target.path === "/v1/canAccess" && target.server === "aforo");
    expect(rows.map((row) => row.name)).toEqual([
      "can_access",
      "can_access_consume",
      "can_access_latency_4c_2000",
    ]);
    const bodies = rows.map((row) => JSON.parse(row.body?.(seed, row.name)() ?? "{}"));
    expect(bodies).toEqual([
      { customer_id: "cus_2", feature: "sso" },
      { customer_id: "cus_2", feature: "search", consume: true },
      { customer_id: "cus_2", feature: "search" },
    ]);
    expect(rows.map((row) => row.consumes === true)).toEqual([false, true, false]);
    expect(rows.every((row) => row.decisions)).toBe(true);
    expect(rows.map((row) => [row.connections, row.overallRate, row.baseline])).toEqual([
      [undefined, undefined, "bare_post"],
      [undefined, undefined, "bare_post"],
      [4, 2000, undefined],
    ]);
    expect(canAccessBody("sso")(seed)()).toBe('{"customer_id":"cus_2","feature":"sso"}');
  });
});

describe("schedule", () => {
  it("runs every row once per round, forwards then backwards", () => {
    expect(schedule(["a", "b", "c"], 1)).toEqual(["a", "b", "c"]);
    expect(schedule(["a", "b", "c"], 3)).toEqual(["a", "b", "c", "c", "b", "a", "a", "b", "c"]);
  });
});

describe("command line", () => {
  it("defaults to 10 s per row in 2 rounds, and --quick to 2 s in one", () => {
    expect(parseArgs([])).toMatchObject({
      json: false,
      durationS: 10,
      rounds: 2,
      warmupS: 1,
      freshDb: false,
    });
    expect(parseArgs(["--quick", "--json"])).toMatchObject({
      json: true,
      durationS: 2,
      rounds: 1,
      warmupS: 0.5,
    });
    expect(parseArgs(["--rounds", "3"]).rounds).toBe(3);
    expect(parseArgs(["--quick", "--duration", "5"]).durationS).toBe(5);
    expect(parseArgs(["--only", "bare_post, meter_single"]).only).toEqual(["bare_post", "meter_single"]);
  });

  it("refuses unknown options and bad durations", () => {
    expect(() => parseArgs(["--fast"])).toThrow(/unknown option/);
    expect(() => parseArgs(["--duration", "0"])).toThrow(/positive/);
    expect(() => parseArgs(["--duration"])).toThrow(/needs a value/);
    expect(() => parseArgs(["--rounds", "1.5"])).toThrow(/whole number/);
  });
});
