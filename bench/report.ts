/**
 * Pure parts of the benchmark: turning raw measurements into rows, the printed table, the JSON
 * object, and counting per-event statuses in Aforo's answers. No I/O here (bench/report.test.ts).
 */

/** What one load run measured, before any comparison. */
export interface Measurement {
  name: string;
  /** Connections used, and the target request rate when the run was rate-limited. */
  connections: number;
  overallRate: number | undefined;
  /** Wall-clock seconds of the measured run (warm-up excluded). */
  durationS: number;
  /** Requests answered 2xx during the measured run. */
  ok: number;
  /** Requests answered with anything other than 2xx, and socket errors / timeouts. */
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Events carried by one request: undefined for rows that are not metering rows. */
  eventsPerRequest: number | undefined;
  /** Latency percentiles of 2xx answers, in milliseconds (sub-millisecond resolution). */
  p50Ms: number;
  p99Ms: number;
  /** Name of the row whose request throughput is this row's denominator (undefined: none). */
  baseline: string | undefined;
  /** The server's CPU milliseconds (user + system) during the measured run; undefined: unknown. */
  serverCpuMs?: number | undefined;
}

export interface Row {
  name: string;
  connections: number;
  overallRate: number | undefined;
  rps: number;
  eventsPerS: number | undefined;
  p50Ms: number;
  p99Ms: number;
  /** Request throughput ÷ the baseline row's request throughput; undefined without a baseline. */
  ratioToBare: number | undefined;
  /** Server CPU microseconds per answered request: steadier than throughput on a busy machine. */
  cpuUsPerRequest: number | undefined;
  non2xx: number;
  errors: number;
}

/** Successful requests per second of the measured run. */
export function requestRate(m: Pick<Measurement, "ok" | "durationS">): number {
  return m.durationS > 0 ? m.ok / m.durationS : 0;
}

/**
 * ratio_to_bare is always request throughput ÷ the baseline's request throughput (never events):
 * a 1,000-event batch request is compared, as a request, with one bare request.
 */
export function ratio(rps: number, baselineRps: number | undefined): number | undefined {
  if (baselineRps === undefined || !(baselineRps > 0)) return undefined;
  return rps / baselineRps;
}

export function toRows(measurements: readonly Measurement[]): Row[] {
  const rates = new Map(measurements.map((m) => [m.name, requestRate(m)]));
  return measurements.map((m) => {
    const rps = requestRate(m);
    return {
      name: m.name,
      connections: m.connections,
      overallRate: m.overallRate,
      rps,
      eventsPerS: m.eventsPerRequest === undefined ? undefined : rps * m.eventsPerRequest,
      p50Ms: m.p50Ms,
      p99Ms: m.p99Ms,
      ratioToBare: m.baseline === undefined ? undefined : ratio(rps, rates.get(m.baseline)),
      cpuUsPerRequest: cpuPerRequest(m),
      non2xx: m.non2xx,
      errors: m.errors + m.timeouts,
    };
  });
}

/** Server CPU microseconds per request answered (2xx or not); undefined when unmeasured. */
export function cpuPerRequest(m: Pick<Measurement, "serverCpuMs" | "ok" | "non2xx">): number | undefined {
  const answered = m.ok + m.non2xx;
  if (m.serverCpuMs === undefined || answered === 0) return undefined;
  return (m.serverCpuMs * 1000) / answered;
}

const round = (value: number, digits: number) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export interface JsonRow {
  rps: number;
  events_per_s?: number;
  p50_ms: number;
  p99_ms: number;
  ratio_to_bare: number | null;
  cpu_us_per_request: number | null;
  connections: number;
  overall_rate?: number;
  non_2xx: number;
  errors: number;
}

/** One key per row: `rps` (request rows) or `events_per_s` (+ `rps`) for metering rows. */
export function toJson(rows: readonly Row[]): Record<string, JsonRow> {
  const out: Record<string, JsonRow> = {};
  for (const row of rows) {
    out[row.name] = {
      rps: round(row.rps, 1),
      ...(row.eventsPerS === undefined ? {} : { events_per_s: round(row.eventsPerS, 1) }),
      p50_ms: round(row.p50Ms, 3),
      p99_ms: round(row.p99Ms, 3),
      ratio_to_bare: row.ratioToBare === undefined ? null : Number(row.ratioToBare.toPrecision(3)),
      cpu_us_per_request: row.cpuUsPerRequest === undefined ? null : round(row.cpuUsPerRequest, 1),
      connections: row.connections,
      ...(row.overallRate === undefined ? {} : { overall_rate: row.overallRate }),
      non_2xx: row.non2xx,
      errors: row.errors,
    };
  }
  return out;
}

/** Thousands separators, no decimals: 12345.6 → "12,346". */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Milliseconds with a resolution that suits the size: 0.412, 3.41, 25.3, 1,204. */
export function formatMs(value: number): string {
  if (value < 1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return formatCount(value);
}

/** Two decimals, or two significant figures below 0.1 (a batch row's ratio can be 0.00027). */
export function formatRatio(value: number): string {
  return value >= 0.1 || value === 0 ? value.toFixed(2) : value.toPrecision(2);
}

const HEADERS = [
  "row",
  "conns",
  "rate",
  "rps",
  "events_per_s",
  "p50_ms",
  "p99_ms",
  "ratio_to_bare",
  "cpu_us_per_req",
  "non_2xx",
] as const;
const RIGHT_ALIGNED = new Set<string>(HEADERS.slice(1));

/** The one table `npm run bench` prints: a Markdown table, columns padded for the terminal. */
export function formatTable(rows: readonly Row[]): string {
  const cells = rows.map((row) => [
    row.name,
    String(row.connections),
    row.overallRate === undefined ? "max" : `${formatCount(row.overallRate)}/s`,
    formatCount(row.rps),
    row.eventsPerS === undefined ? "" : formatCount(row.eventsPerS),
    formatMs(row.p50Ms),
    formatMs(row.p99Ms),
    row.ratioToBare === undefined ? "" : formatRatio(row.ratioToBare),
    row.cpuUsPerRequest === undefined ? "" : formatCount(row.cpuUsPerRequest),
    String(row.non2xx + row.errors),
  ]);
  const widths = HEADERS.map((header, column) =>
    Math.max(header.length, ...cells.map((line) => (line[column] ?? "").length)),
  );
  const pad = (text: string, column: number) => {
    const width = widths[column] ?? text.length;
    return RIGHT_ALIGNED.has(HEADERS[column] ?? "") ? text.padStart(width) : text.padEnd(width);
  };
  const line = (values: readonly string[]) => `| ${values.map((value, i) => pad(value, i)).join(" | ")} |`;
  const rule = `|${widths
    .map((width, column) =>
      RIGHT_ALIGNED.has(HEADERS[column] ?? "") ? `${"-".repeat(width + 1)}:` : "-".repeat(width + 2),
    )
    .join("|")}|`;
  return [line(HEADERS), rule, ...cells.map(line)].join("\n");
}

export interface StatusCounts {
  ACCEPTED: number;
  DUPLICATE: number;
  REJECTED: number;
  other: number;
}

export function emptyStatusCounts(): StatusCounts {
  return { ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0, other: 0 };
}

const STATUS_MARK = '"status":"';

/**
 * Counts the per-event statuses in an answer of POST /v1/meter (`{"id","status"}`) or
 * /v1/meter/batch (`{"results":[{index,id,status,…}]}`) without parsing the JSON: a batch answer
 * of 1,000 results is read on the load generator's hot path. A rejected event's nested problem
 * document carries a numeric `status`, which the string mark does not match.
 */
export function countStatuses(body: string, into: StatusCounts = emptyStatusCounts()): StatusCounts {
  let at = body.indexOf(STATUS_MARK);
  while (at !== -1) {
    const start = at + STATUS_MARK.length;
    const end = body.indexOf('"', start);
    if (end === -1) break;
    const status = body.slice(start, end);
    if (status === "ACCEPTED" || status === "DUPLICATE" || status === "REJECTED") into[status] += 1;
    else into.other += 1;
    at = body.indexOf(STATUS_MARK, end);
  }
  return into;
}

/** canAccess answers by their `allowed` field (a refusal's problem document carries allowed:false). */
export interface DecisionCounts {
  allowed: number;
  denied: number;
  /** Answers with no `allowed` field at all (e.g. a 400 or 500 problem). */
  other: number;
}

export function emptyDecisionCounts(): DecisionCounts {
  return { allowed: 0, denied: 0, other: 0 };
}

/** Counts one canAccess answer without parsing it (the load generator's hot path). */
export function countDecision(body: string, into: DecisionCounts = emptyDecisionCounts()): DecisionCounts {
  if (body.includes('"allowed":true')) into.allowed += 1;
  else if (body.includes('"allowed":false')) into.denied += 1;
  else into.other += 1;
  return into;
}

/** The command line: `--json`, `--quick`, `--duration <s>`, `--rounds <n>`, `--fresh-db`, `--only a,b`. */
export interface Options {
  json: boolean;
  /** Measured seconds per row, split evenly over the rounds. */
  durationS: number;
  warmupS: number;
  rounds: number;
  freshDb: boolean;
  only: string[] | undefined;
}

export function parseArgs(argv: readonly string[]): Options {
  const options: Options = {
    json: false,
    durationS: 10,
    warmupS: 1,
    rounds: 2,
    freshDb: false,
    only: undefined,
  };
  let durationGiven = false;
  let roundsGiven = false;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === "--json") options.json = true;
    else if (arg === "--quick") quick = true;
    else if (arg === "--fresh-db") options.freshDb = true;
    else if (arg === "--duration") {
      const raw = value();
      const seconds = Number(raw);
      if (!Number.isFinite(seconds) || seconds <= 0)
        throw new Error(`--duration must be a positive number of seconds, got '${raw}'`);
      options.durationS = seconds;
      durationGiven = true;
    } else if (arg === "--rounds") {
      const raw = value();
      if (!/^[1-9]\d*$/.test(raw)) throw new Error(`--rounds must be a whole number from 1, got '${raw}'`);
      options.rounds = Number(raw);
      roundsGiven = true;
    } else if (arg === "--only") {
      options.only = value()
        .split(",")
        .map((name) => name.trim())
        .filter(Boolean);
    } else
      throw new Error(
        `unknown option '${arg}' (known: --json, --quick, --duration <s>, --rounds <n>, --fresh-db, --only <rows>)`,
      );
  }
  if (quick) {
    if (!durationGiven) options.durationS = 2;
    if (!roundsGiven) options.rounds = 1;
    options.warmupS = 0.5;
  }
  return options;
}

/**
 * The order of the load runs: every row once per round, forwards then backwards (A B C, C B A, …),
 * so that a machine getting busier or quieter during the run weighs on every row alike.
 */
export function schedule<T>(rows: readonly T[], rounds: number): T[] {
  const order: T[] = [];
  for (let round = 0; round < rounds; round++) {
    order.push(...(round % 2 === 0 ? rows : [...rows].reverse()));
  }
  return order;
}
