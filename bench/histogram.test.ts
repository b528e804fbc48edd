import { describe, expect, it } from "vitest";
import {
  addBuckets,
  type Buckets,
  boundsMicros,
  bucketPercentile,
  DECISION_HISTOGRAM,
  formatBound,
  parseBuckets,
  subtractBuckets,
  summarise,
} from "./histogram.ts";

const BOUNDS = ["0.000005", "0.00001", "0.00002", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.005"];

/** A /metrics text as prom-client writes it, with these cumulative counts (the last is +Inf). */
function exposition(counts: readonly number[], name = DECISION_HISTOGRAM): string {
  const les = [...BOUNDS, "+Inf"];
  return [
    "# HELP aforo_http_request_duration_seconds x",
    "# TYPE aforo_http_request_duration_seconds histogram",
    'aforo_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/canAccess",status_code="200"} 999',
    `# HELP ${name} Time canAccess spends deciding`,
    `# TYPE ${name} histogram`,
    ...les.map((le, i) => `${name}_bucket{le="${le}"} ${counts[i] ?? 0}`),
    `${name}_sum 0.5`,
    `${name}_count ${counts.at(-1) ?? 0}`,
    "",
  ].join("\n");
}

const buckets = (counts: number[]): Buckets => ({
  bounds: [...BOUNDS.map(Number), Number.POSITIVE_INFINITY],
  counts,
});

describe("reading a histogram from /metrics", () => {
  it("takes the cumulative buckets of the named histogram only, ascending, with +Inf last", () => {
    const parsed = parseBuckets(
      exposition([10, 60, 95, 99, 100, 100, 100, 100, 100, 100]),
      DECISION_HISTOGRAM,
    );
    expect(parsed?.bounds).toEqual([...BOUNDS.map(Number), Number.POSITIVE_INFINITY]);
    expect(parsed?.counts).toEqual([10, 60, 95, 99, 100, 100, 100, 100, 100, 100]);
  });

  it("adds series that differ in other labels, and tolerates a label order and a timestamp", () => {
    const text = [
      `${DECISION_HISTOGRAM}_bucket{instance="a",le="0.00001"} 3`,
      `${DECISION_HISTOGRAM}_bucket{le="0.00001",instance="b"} 4 1700000000000`,
      `${DECISION_HISTOGRAM}_bucket{instance="a",le="+Inf"} 5`,
      `${DECISION_HISTOGRAM}_bucket{instance="b",le="+Inf"} 6`,
    ].join("\n");
    expect(parseBuckets(text, DECISION_HISTOGRAM)).toEqual({
      bounds: [0.00001, Number.POSITIVE_INFINITY],
      counts: [7, 11],
    });
  });

  it("is undefined when the histogram is absent (no canAccess route, or a prefix of another name)", () => {
    expect(
      parseBuckets(exposition([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], "other_seconds"), DECISION_HISTOGRAM),
    ).toBe(undefined);
    expect(parseBuckets(`${DECISION_HISTOGRAM}_bucket_extra{le="1"} 3`, DECISION_HISTOGRAM)).toBeUndefined();
  });
});

describe("percentiles from cumulative buckets", () => {
  it("answers the bound of the first bucket whose cumulative count reaches the percentile", () => {
    const b = buckets([10, 60, 95, 99, 100, 100, 100, 100, 100, 100]);
    expect(bucketPercentile(b, 50)).toBe(0.00001); // 60 of 100 ≥ 50 first at ≤ 10 µs
    expect(bucketPercentile(b, 99)).toBe(0.00005); // 99 of 100 first at ≤ 50 µs
    expect(bucketPercentile(b, 100)).toBe(0.0001);
  });

  it("counts a bucket reached exactly, without floating-point error", () => {
    // 50 of 100 is exactly 50 %: the first bucket already holds the median.
    expect(bucketPercentile(buckets([50, 100, 100, 100, 100, 100, 100, 100, 100, 100]), 50)).toBe(0.000005);
    // 99 % of 300 = 297: 296 is not enough.
    expect(bucketPercentile(buckets([0, 296, 297, 300, 300, 300, 300, 300, 300, 300]), 99)).toBe(0.00002);
  });

  it("is +Infinity beyond the last finite bound and undefined without observations", () => {
    expect(bucketPercentile(buckets([0, 0, 0, 0, 0, 0, 0, 0, 90, 100]), 99)).toBe(Number.POSITIVE_INFINITY);
    expect(bucketPercentile(buckets([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 50)).toBeUndefined();
  });

  it("summarises in microseconds, with null and a flag beyond the last bound", () => {
    expect(summarise(buckets([10, 60, 95, 99, 100, 100, 100, 100, 100, 100]))).toEqual({
      p50_us: 10,
      p99_us: 50,
      count: 100,
      beyond_last_bound: false,
    });
    expect(summarise(buckets([0, 0, 0, 0, 0, 0, 0, 0, 90, 100]))).toEqual({
      p50_us: 5000,
      p99_us: null,
      count: 100,
      beyond_last_bound: true,
    });
    expect(summarise(buckets([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toMatchObject({ p50_us: null, count: 0 });
    expect(boundsMicros(buckets([]))).toEqual([5, 10, 20, 50, 100, 250, 500, 1000, 5000]);
  });

  it("formats a bound as an upper limit", () => {
    expect(formatBound(20, 5, 5000)).toBe("≤ 20 µs");
    expect(formatBound(null, 5, 5000)).toBe("> 5,000 µs");
    expect(formatBound(null, 0, 5000)).toBe("–");
  });
});

describe("between two scrapes", () => {
  it("subtracts bound by bound, so a row's figures exclude earlier rows and warm-up", () => {
    const before = buckets([5, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    const after = buckets([5, 70, 110, 110, 110, 110, 110, 110, 110, 110]);
    const slice = subtractBuckets(after, before);
    expect(slice.counts).toEqual([0, 60, 100, 100, 100, 100, 100, 100, 100, 100]);
    expect(bucketPercentile(slice, 50)).toBe(0.00001);
    expect(subtractBuckets(after, undefined).counts).toEqual(after.counts);
  });

  it("adds slices and rows together", () => {
    const a = buckets([1, 2, 3, 3, 3, 3, 3, 3, 3, 3]);
    const b = buckets([0, 0, 1, 2, 2, 2, 2, 2, 2, 2]);
    expect(addBuckets(a, b).counts).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5]);
  });
});
