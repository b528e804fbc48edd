/**
 * Pure parts of reading a Prometheus histogram from the server's `/metrics` (text exposition
 * format): the cumulative buckets of one histogram, the difference of two scrapes, and a
 * percentile read off the buckets. No I/O here (bench/histogram.test.ts).
 */

/** The histogram canAccess records its decision time in, inside the server. */
export const DECISION_HISTOGRAM = "aforo_entitlement_decision_seconds";

/** Cumulative buckets, ascending by upper bound (`le`, in seconds; the last is +Inf). */
export interface Buckets {
  bounds: number[];
  counts: number[];
}

const LE = /(?:^|,)\s*le\s*=\s*"([^"]*)"/;

/**
 * The cumulative buckets of histogram `name` in a `/metrics` text. Series that differ in other
 * labels are added together per bound. Undefined when the histogram is not in the text.
 */
export function parseBuckets(text: string, name: string): Buckets | undefined {
  const prefix = `${name}_bucket`;
  const byBound = new Map<number, number>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith(prefix) || line[prefix.length] !== "{") continue;
    const close = line.indexOf("}", prefix.length);
    if (close === -1) continue;
    const labels = line.slice(prefix.length + 1, close);
    const le = LE.exec(labels)?.[1];
    if (le === undefined) continue;
    const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le);
    // The value is the first field after the labels; an optional timestamp may follow.
    const count = Number(
      line
        .slice(close + 1)
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isNaN(bound) || !Number.isFinite(count)) continue;
    byBound.set(bound, (byBound.get(bound) ?? 0) + count);
  }
  if (byBound.size === 0) return undefined;
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  return { bounds, counts: bounds.map((bound) => byBound.get(bound) ?? 0) };
}

/** `after − before`, bound by bound: what was observed between two scrapes. */
export function subtractBuckets(after: Buckets, before: Buckets | undefined): Buckets {
  if (!before) return { bounds: [...after.bounds], counts: [...after.counts] };
  const earlier = new Map(before.bounds.map((bound, i) => [bound, before.counts[i] ?? 0]));
  return {
    bounds: [...after.bounds],
    counts: after.bounds.map((bound, i) => Math.max(0, (after.counts[i] ?? 0) - (earlier.get(bound) ?? 0))),
  };
}

/** Bound by bound sum (bounds taken from `a`; a bound missing from `b` adds nothing). */
export function addBuckets(a: Buckets, b: Buckets): Buckets {
  const other = new Map(b.bounds.map((bound, i) => [bound, b.counts[i] ?? 0]));
  return {
    bounds: [...a.bounds],
    counts: a.bounds.map((bound, i) => (a.counts[i] ?? 0) + (other.get(bound) ?? 0)),
  };
}

/** Observations in the histogram: the +Inf bucket's cumulative count (the largest count). */
export function totalCount(buckets: Buckets): number {
  return buckets.counts.reduce((max, count) => Math.max(max, count), 0);
}

/**
 * The percentile as the upper bound (seconds) of the first bucket whose cumulative count reaches
 * `percentile`% of all observations. A bucket bound, not an interpolation: "p99 ≤ this". Undefined
 * without observations; +Infinity when it falls beyond the largest finite bound.
 */
export function bucketPercentile(buckets: Buckets, percentile: number): number | undefined {
  const total = totalCount(buckets);
  if (total === 0) return undefined;
  for (const [i, bound] of buckets.bounds.entries()) {
    // count / total ≥ percentile / 100, without floating-point division.
    if ((buckets.counts[i] ?? 0) * 100 >= percentile * total) return bound;
  }
  return Number.POSITIVE_INFINITY;
}

/** The decision-time figures under the table and in `--json`. */
export interface DecisionSummary {
  /** Bucket upper bound in µs; null: no observation, or beyond the largest finite bound. */
  p50_us: number | null;
  p99_us: number | null;
  count: number;
  /** True when a percentile fell in the +Inf bucket (then it is null, and above the last bound). */
  beyond_last_bound: boolean;
}

const toMicros = (seconds: number) => Math.round(seconds * 1e6 * 1000) / 1000;

export function summarise(buckets: Buckets): DecisionSummary {
  const micros = (percentile: number) => {
    const bound = bucketPercentile(buckets, percentile);
    return bound === undefined || !Number.isFinite(bound) ? null : toMicros(bound);
  };
  const p99 = bucketPercentile(buckets, 99);
  return {
    p50_us: micros(50),
    p99_us: micros(99),
    count: totalCount(buckets),
    beyond_last_bound: p99 !== undefined && !Number.isFinite(p99),
  };
}

/** The finite bucket bounds in µs, for the caveat printed with the figures. */
export function boundsMicros(buckets: Buckets): number[] {
  return buckets.bounds.filter(Number.isFinite).map(toMicros);
}

/** "≤ 20 µs", "> 5,000 µs" (beyond the last bound) or "–" (no observation). */
export function formatBound(us: number | null, count: number, lastBoundUs: number | undefined): string {
  if (count === 0) return "–";
  if (us === null)
    return lastBoundUs === undefined ? "> last bound" : `> ${lastBoundUs.toLocaleString("en-US")} µs`;
  return `≤ ${us.toLocaleString("en-US")} µs`;
}
