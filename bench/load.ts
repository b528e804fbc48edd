/**
 * One load run with autocannon, plus a latency histogram of our own: autocannon's histogram holds
 * whole milliseconds, while its `response` event carries the exact time (hrtime, in ms), which we
 * record in microseconds.
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import {
  countDecision,
  countStatuses,
  type DecisionCounts,
  emptyDecisionCounts,
  emptyStatusCounts,
  type StatusCounts,
} from "./report.ts";

interface RequestSpec {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: RequestSpec, context: object) => RequestSpec;
  onResponse?: (status: number, body: string, context: object) => void;
}

interface AutocannonOptions {
  url: string;
  method: string;
  connections: number;
  duration: number;
  overallRate?: number;
  timeout: number;
  headers: Record<string, string>;
  requests: RequestSpec[];
}

interface AutocannonResult {
  duration: number;
  "2xx": number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonInstance extends EventEmitter {
  stop(): void;
}

type Autocannon = (
  options: AutocannonOptions,
  callback: (error: Error | null, result: AutocannonResult) => void,
) => AutocannonInstance;

// autocannon ships no type declarations; the shapes above are the parts used here.
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

export interface LoadSpec {
  url: string;
  method: string;
  headers: Record<string, string>;
  connections: number;
  overallRate: number | undefined;
  durationS: number;
  /** A fresh body for each request; undefined: no body. */
  nextBody: (() => string) | undefined;
  /** Read per-event statuses from 2xx answers (metering rows). */
  countEvents: boolean;
  /** Read `allowed` from every answer (canAccess rows). */
  countDecisions: boolean;
}

/** Counters that span the warm-up and the measured run (everything the server was sent). */
export interface Tally {
  /** Request bodies built: an upper bound on requests sent (a client builds one ahead). */
  bodiesBuilt: number;
  statuses: StatusCounts;
  /** canAccess answers by `allowed` (every status, 2xx or not). */
  decisions: DecisionCounts;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

export function emptyTally(): Tally {
  return {
    bodiesBuilt: 0,
    statuses: emptyStatusCounts(),
    decisions: emptyDecisionCounts(),
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCodes: {},
  };
}

export interface LoadResult {
  durationS: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** Latencies of 2xx answers in microseconds, 1 µs to 60 s, 3 significant figures. */
export function latencyHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
}

export function percentileMs(latencies: RecordableHistogram, percentile: number): number {
  return latencies.count > 0 ? latencies.percentile(percentile) / 1000 : 0;
}

let running: AutocannonInstance | undefined;

/** Stops the run in progress (Ctrl-C); its promise then settles with what was measured. */
export function stopRunningLoad(): void {
  running?.stop();
}

/** One run; 2xx latencies go into `latencies` (leave it out for a warm-up). */
export async function runLoad(
  spec: LoadSpec,
  tally: Tally,
  latencies: RecordableHistogram | undefined,
): Promise<LoadResult> {
  const request: RequestSpec = {};
  const { nextBody } = spec;
  if (nextBody) {
    request.setupRequest = (built) => {
      tally.bodiesBuilt += 1;
      built.body = nextBody();
      return built;
    };
  }
  if (spec.countEvents) {
    request.onResponse = (status, body) => {
      if (status >= 200 && status < 300) countStatuses(body, tally.statuses);
    };
  } else if (spec.countDecisions) {
    request.onResponse = (_status, body) => {
      countDecision(body, tally.decisions);
    };
  }
  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: spec.method,
        connections: spec.connections,
        duration: spec.durationS,
        ...(spec.overallRate === undefined ? {} : { overallRate: spec.overallRate }),
        timeout: 30,
        headers: spec.headers,
        requests: [request],
      },
      (error, value) => {
        running = undefined;
        if (error) reject(error);
        else resolve(value);
      },
    );
    running = instance;
    const recorder = latencies;
    if (recorder) {
      instance.on("response", (_client: unknown, status: number, _bytes: number, responseTimeMs: number) => {
        if (status >= 200 && status < 300) {
          recorder.record(Math.min(60_000_000, Math.max(1, Math.round(responseTimeMs * 1000))));
        }
      });
    }
  });
  tally.non2xx += result.non2xx;
  tally.errors += result.errors;
  tally.timeouts += result.timeouts;
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
    tally.statusCodes[code] = (tally.statusCodes[code] ?? 0) + count;
  }
  return {
    durationS: result.duration,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
