/**
 * `npm run bench`: starts Aforo and a bare node:http server as child processes, seeds a tenant
 * through the API, loads every target in bench/targets.ts with the same client, prints one table
 * (or `--json`), then checks that every event sent was accepted. See bench/README.md.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { RecordableHistogram } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { cpuMsOf } from "./cpu.ts";
import {
  addBuckets,
  type Buckets,
  boundsMicros,
  DECISION_HISTOGRAM,
  type DecisionSummary,
  formatBound,
  parseBuckets,
  subtractBuckets,
  summarise,
} from "./histogram.ts";
import {
  emptyTally,
  type LoadSpec,
  latencyHistogram,
  percentileMs,
  runLoad,
  stopRunningLoad,
  type Tally,
} from "./load.ts";
import {
  type AforoOptions,
  type Child,
  generateOperatorKey,
  startAforo,
  startBareServer,
} from "./processes.ts";
import { formatTable, type Measurement, parseArgs, schedule, toJson, toRows } from "./report.ts";
import { type FeatureUsage, featureUsed, scrapeMetrics, seed, usageTotal } from "./seed.ts";
import { METERED_FEATURE, SATURATED_CONNECTIONS, type Seed, type Target, targets } from "./targets.ts";

const log = (message: string) => process.stderr.write(`${message}\n`);

/** Undo steps, run last-in first-out, once, whatever happened (errors, Ctrl-C). */
class Cleanup {
  readonly #steps: { name: string; run: () => Promise<void> }[] = [];
  #running: Promise<void> | undefined;

  add(name: string, run: () => Promise<void>): void {
    this.#steps.push({ name, run });
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      for (const step of this.#steps.reverse()) {
        await step.run().catch((error: Error) => log(`cleanup: ${step.name} failed: ${error.message}`));
      }
    })();
    return this.#running;
  }
}

/** `--fresh-db`: a new database beside the one DATABASE_URL names, dropped at the end. */
async function freshDatabase(databaseUrl: string, cleanup: Cleanup): Promise<string> {
  const { default: pg } = await import("pg");
  const name = `aforo_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  cleanup.add(`drop database ${name}`, async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  });
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

interface Verdict {
  ok: boolean;
  lines: string[];
}

/** Every request answered 2xx, every event ACCEPTED, and the server's own count agrees. */
async function verify(
  aforo: Child,
  s: Seed,
  startedAt: Date,
  chosen: readonly Target[],
  tallies: Map<string, Tally>,
  usedBefore: FeatureUsage | undefined,
): Promise<Verdict> {
  const lines: string[] = [];
  let ok = true;
  let acceptedTotal = 0;
  let sentUpperBound = 0;
  for (const target of chosen) {
    const tally = tallies.get(target.name);
    if (!tally) continue;
    const failed = tally.non2xx + tally.errors + tally.timeouts;
    const codes = Object.entries(tally.statusCodes)
      .map(([code, count]) => `${code}×${count}`)
      .join(" ");
    let line = `${target.name}: ${failed === 0 ? "all requests 2xx" : `${failed} FAILED (non-2xx ${tally.non2xx}, errors ${tally.errors}, timeouts ${tally.timeouts})`} [${codes}]`;
    if (failed > 0) ok = false;
    const perRequest = target.eventsPerRequest;
    if (perRequest !== undefined) {
      const { ACCEPTED, DUPLICATE, REJECTED, other } = tally.statuses;
      acceptedTotal += ACCEPTED;
      sentUpperBound += tally.bodiesBuilt * perRequest;
      line += `; events ACCEPTED ${ACCEPTED}, DUPLICATE ${DUPLICATE}, REJECTED ${REJECTED}`;
      if (other > 0) line += `, other ${other}`;
      if (DUPLICATE + REJECTED + other > 0 || ACCEPTED === 0) ok = false;
    }
    if (target.decisions) {
      const { allowed, denied, other } = tally.decisions;
      line += `; allowed:true ${allowed}, allowed:false ${denied}`;
      if (other > 0) line += `, no 'allowed' ${other}`;
      if (denied + other > 0 || allowed === 0) ok = false;
    }
    lines.push(line);
  }
  const consuming = chosen.filter((target) => target.consumes);
  if (consuming.length > 0) {
    const consumed = await verifyConsumption(aforo, s, startedAt, consuming, tallies, usedBefore);
    if (!consumed.ok) ok = false;
    lines.push(...consumed.lines);
  }
  if (sentUpperBound > 0) {
    // Requests still in flight when a run stops are committed without being acknowledged, so the
    // server may count a little more than was acknowledged, never more than was built.
    let usage = await usageTotal(aforo.url, s, startedAt);
    for (let attempt = 0; usage.kind === "total" && usage.total < acceptedTotal && attempt < 10; attempt++) {
      await sleep(500);
      usage = await usageTotal(aforo.url, s, startedAt);
    }
    if (usage.kind === "total") {
      const within = usage.total >= acceptedTotal && usage.total <= sentUpperBound;
      if (!within) ok = false;
      lines.push(
        `server count (GET /v1/usage, ${s.metricKey}): ${usage.total}; acknowledged ACCEPTED ${acceptedTotal}, sent at most ${sentUpperBound} → ${within ? "consistent" : "MISMATCH"}`,
      );
    } else {
      lines.push(
        `server count: skipped (${usage.note}); acknowledged ACCEPTED ${acceptedTotal} of at most ${sentUpperBound} sent`,
      );
    }
  }
  return { ok, lines };
}

/** Reads `used` of the metered feature until two reads 500 ms apart agree (late ingestion settles). */
async function settledUsed(aforo: Child, s: Seed): Promise<FeatureUsage> {
  let last = await featureUsed(aforo.url, s, s.entitledCustomerId, METERED_FEATURE);
  for (let attempt = 0; attempt < 20 && last.kind === "used"; attempt++) {
    await sleep(500);
    const next = await featureUsed(aforo.url, s, s.entitledCustomerId, METERED_FEATURE);
    if (next.kind !== "used" || next.used === last.used) return next;
    last = next;
  }
  return last;
}

/**
 * A consuming check moves the usage counter: `used` of `search` (GET /v1/entitlements) must grow
 * by the allowed consuming checks, and the events it records must reach storage (GET /v1/usage).
 * Only the consume row moves that customer's usage. Checks still in flight when a run stops are
 * counted by the server without being acknowledged, so the growth may exceed the acknowledged
 * allowed checks by those, never the bodies built.
 */
async function verifyConsumption(
  aforo: Child,
  s: Seed,
  startedAt: Date,
  consuming: readonly Target[],
  tallies: Map<string, Tally>,
  usedBefore: FeatureUsage | undefined,
): Promise<Verdict> {
  let allowed = 0;
  let built = 0;
  for (const target of consuming) {
    const tally = tallies.get(target.name);
    allowed += tally?.decisions.allowed ?? 0;
    built += tally?.bodiesBuilt ?? 0;
  }
  const after = await settledUsed(aforo, s);
  if (usedBefore?.kind !== "used" || after.kind !== "used") {
    const note =
      usedBefore?.kind === "unavailable" ? usedBefore.note : after.kind === "unavailable" ? after.note : "";
    return { ok: false, lines: [`consumed usage: could not be read (${note})`] };
  }
  const grew = after.used - usedBefore.used;
  const within = grew >= allowed && grew <= built;
  const lines = [
    `consumed usage (GET /v1/entitlements, ${METERED_FEATURE}.used): grew by ${grew}; allowed consuming checks acknowledged ${allowed} (+${grew - allowed} in flight at a stop), sent at most ${built} → ${within ? "consistent" : "MISMATCH"}`,
  ];
  let ok = within;
  // The consumption is recorded as events without delaying the answer: wait for them to be stored.
  let stored = await usageTotal(aforo.url, s, startedAt, s.entitledCustomerId);
  for (let attempt = 0; stored.kind === "total" && stored.total < grew && attempt < 20; attempt++) {
    await sleep(500);
    stored = await usageTotal(aforo.url, s, startedAt, s.entitledCustomerId);
  }
  if (stored.kind === "total") {
    const same = stored.total === after.used;
    if (!same) ok = false;
    lines.push(
      `consumed usage stored as events (GET /v1/usage, ${s.metricKey}): ${stored.total} → ${same ? "agrees with the counter" : `MISMATCH with the counter's ${after.used}`}`,
    );
  } else {
    lines.push(`consumed usage stored as events: skipped (${stored.note})`);
  }
  return { ok, lines };
}

/** One row's load settings and everything measured for it, across warm-up and rounds. */
interface RowRun {
  target: Target;
  spec: LoadSpec;
  tally: Tally;
  latencies: RecordableHistogram;
  warmedUp: boolean;
  durationS: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** The server's CPU milliseconds during the measured slices (undefined without /proc). */
  serverCpuMs: number | undefined;
  server: Child;
}

function prepare(target: Target, servers: { bare: Child; aforo: Child }, s: Seed): RowRun {
  const headers: Record<string, string> = {};
  if (target.body) headers["content-type"] = "application/json";
  if (target.authenticated) {
    headers.authorization = `Bearer ${s.key}`;
    headers["x-tenant-id"] = s.tenantId;
  }
  return {
    target,
    spec: {
      url: `${servers[target.server].url}${target.path}`,
      method: target.method,
      headers,
      connections: target.connections ?? SATURATED_CONNECTIONS,
      overallRate: target.overallRate,
      durationS: 0,
      nextBody: target.body?.(s, target.name),
      countEvents: target.eventsPerRequest !== undefined,
      countDecisions: target.decisions === true,
    },
    tally: emptyTally(),
    latencies: latencyHistogram(),
    warmedUp: false,
    durationS: 0,
    ok: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    serverCpuMs: 0,
    server: servers[target.server],
  };
}

/**
 * One slice of a row: a warm-up the first time (not measured), then `durationS` measured;
 * `beforeMeasured` runs between the two.
 */
async function runSlice(
  row: RowRun,
  durationS: number,
  warmupS: number,
  beforeMeasured?: () => Promise<void>,
): Promise<void> {
  if (!row.warmedUp && warmupS > 0) await runLoad({ ...row.spec, durationS: warmupS }, row.tally, undefined);
  row.warmedUp = true;
  await beforeMeasured?.();
  const cpuBefore = cpuMsOf(row.server.process.pid);
  const result = await runLoad({ ...row.spec, durationS }, row.tally, row.latencies);
  const cpuAfter = cpuMsOf(row.server.process.pid);
  row.serverCpuMs =
    row.serverCpuMs === undefined || cpuBefore === undefined || cpuAfter === undefined
      ? undefined
      : row.serverCpuMs + (cpuAfter - cpuBefore);
  row.durationS += result.durationS;
  row.ok += result.ok;
  row.non2xx += result.non2xx;
  row.errors += result.errors;
  row.timeouts += result.timeouts;
}

function toMeasurement(row: RowRun): Measurement {
  return {
    name: row.target.name,
    connections: row.spec.connections,
    overallRate: row.spec.overallRate,
    durationS: row.durationS,
    ok: row.ok,
    non2xx: row.non2xx,
    errors: row.errors,
    timeouts: row.timeouts,
    eventsPerRequest: row.target.eventsPerRequest,
    p50Ms: percentileMs(row.latencies, 50),
    p99Ms: percentileMs(row.latencies, 99),
    baseline: row.target.baseline,
    serverCpuMs: row.serverCpuMs,
  };
}

interface DecisionReport {
  json: DecisionSummary & { bucket_bounds_us: number[]; note: string; rows: Record<string, DecisionSummary> };
  lines: string[];
}

/** The canAccess decision time from the server's histogram: all canAccess rows, then each. */
function decisionReport(byRow: Map<string, Buckets>): DecisionReport | undefined {
  let all: Buckets | undefined;
  for (const buckets of byRow.values()) all = all ? addBuckets(all, buckets) : buckets;
  if (!all) return undefined;
  const bounds = boundsMicros(all);
  const last = bounds.at(-1);
  const rows: Record<string, DecisionSummary> = {};
  for (const [name, buckets] of byRow) rows[name] = summarise(buckets);
  const total = summarise(all);
  const note =
    "bucket upper bounds, not exact percentiles: p50/p99 are the smallest bucket bound (µs) whose cumulative count reaches 50%/99% of the decisions in the measured time of the canAccess rows (warm-up excluded); null beyond the last finite bound";
  const describe = (name: string, summary: DecisionSummary) =>
    `  ${name.padEnd(27)} p50 ${formatBound(summary.p50_us, summary.count, last).padEnd(11)} p99 ${formatBound(summary.p99_us, summary.count, last).padEnd(11)} (${summary.count.toLocaleString("en-US")} decisions)`;
  return {
    json: { ...total, bucket_bounds_us: bounds, note, rows },
    lines: [
      `canAccess decision time inside the server (${DECISION_HISTOGRAM} from /metrics, measured time only).`,
      `Bucket upper bounds, not exact percentiles (buckets: ${bounds.join(", ")} µs):`,
      describe("all canAccess rows", total),
      ...Object.entries(rows).map(([name, summary]) => describe(name, summary)),
    ],
  };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseArgs>;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    log(`bench: ${(error as Error).message}`);
    return 2;
  }
  const chosen = options.only ? targets.filter((target) => options.only?.includes(target.name)) : targets;
  if (chosen.length === 0) {
    log(`bench: --only matched no row (rows: ${targets.map((target) => target.name).join(", ")})`);
    return 2;
  }

  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`bench: ${signal}, stopping and cleaning up…`);
    stopRunningLoad();
    cleanup.run().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    let databaseUrl = process.env.DATABASE_URL || undefined;
    if (databaseUrl && options.freshDb) databaseUrl = await freshDatabase(databaseUrl, cleanup);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "aforo-bench-"));
    cleanup.add(`remove ${dataDir}`, () => rm(dataDir, { recursive: true, force: true }));
    const database = databaseUrl
      ? `PostgreSQL (${new URL(databaseUrl).pathname.slice(1)})`
      : "embedded (PGlite)";

    log(`bench: starting the bare node:http server and Aforo (${database})…`);
    const bare = await startBareServer();
    cleanup.add("stop the bare server", bare.stop);
    const operatorKey = generateOperatorKey();
    const bootStarted = Date.now();
    const aforo = await startAforo({ dataDir, databaseUrl, operatorKey });
    cleanup.add("stop Aforo", async () => {
      await aforo.stop();
      const exit = aforo.process.exitCode;
      if (exit !== null && exit !== 0) log(`Aforo exited with code ${exit}:\n${aforo.tail()}`);
    });
    const firstStartS = (Date.now() - bootStarted) / 1000;
    log(`bench: Aforo ready in ${firstStartS.toFixed(1)} s; seeding…`);
    const s = await seed(aforo.url, operatorKey);
    const startedAt = new Date();

    const runs = chosen.map((target) => prepare(target, { bare, aforo }, s));
    const usedBefore = chosen.some((target) => target.consumes)
      ? await featureUsed(aforo.url, s, s.entitledCustomerId, METERED_FEATURE)
      : undefined;
    // Decision time per canAccess row: the server's histogram scraped around each measured slice.
    const decisionBuckets = new Map<string, Buckets>();
    const sliceS = options.durationS / options.rounds;
    const order = schedule(runs, options.rounds);
    for (const [index, row] of order.entries()) {
      if (interrupted) break;
      const rate = row.spec.overallRate ? `${row.spec.overallRate}/s` : "max";
      log(
        `bench: [${index + 1}/${order.length}] ${row.target.name} (${row.spec.connections} connections, ${rate}, ${sliceS} s)…`,
      );
      if (row.target.decisions) {
        let before: Buckets | undefined;
        await runSlice(row, sliceS, options.warmupS, async () => {
          before = parseBuckets(await scrapeMetrics(aforo.url), DECISION_HISTOGRAM);
        });
        const after = parseBuckets(await scrapeMetrics(aforo.url), DECISION_HISTOGRAM);
        if (after) {
          const slice = subtractBuckets(after, before);
          const sofar = decisionBuckets.get(row.target.name);
          decisionBuckets.set(row.target.name, sofar ? addBuckets(sofar, slice) : slice);
        }
      } else {
        await runSlice(row, sliceS, options.warmupS);
      }
      await sleep(300);
    }
    if (interrupted) return 130;

    const rows = toRows(runs.map(toMeasurement));
    const tallies = new Map(runs.map((row) => [row.target.name, row.tally]));
    const verdict = await verify(aforo, s, startedAt, chosen, tallies, usedBefore);
    const decision = decisionReport(decisionBuckets);
    const starts = await measureLaterStart(
      aforo,
      { dataDir, databaseUrl, operatorKey },
      firstStartS,
      cleanup,
    );
    if (options.json) {
      const json = {
        ...toJson(rows),
        ...(decision ? { can_access_decision: decision.json } : {}),
        server_start: starts.json,
      };
      process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    } else {
      const cpu = os.cpus()[0]?.model ?? "unknown CPU";
      process.stdout.write(
        [
          "",
          `Aforo benchmark — ${database}, Node ${process.versions.node}, ${os.availableParallelism()} × ${cpu}`,
          `${options.durationS} s per row in ${options.rounds} round(s) (order forwards, then backwards), after ${options.warmupS} s warm-up;`,
          'conns = connections; rate "max" = saturated; latencies are of 2xx answers, measured by the client.',
          "events_per_s = rps × events per request; ratio_to_bare = rps ÷ the bare server's rps for the same method",
          "(bare_get for GET rows, bare_post for POST rows; blank for the fixed-rate latency row).",
          "",
          formatTable(rows),
          "",
          ...(decision ? [...decision.lines, ""] : []),
          starts.line,
          "",
          `Correctness: ${verdict.ok ? "OK" : "FAILED"}`,
          ...verdict.lines.map((line) => `  ${line}`),
          "",
        ].join("\n"),
      );
    }
    if (options.json)
      for (const line of [`correctness: ${verdict.ok ? "OK" : "FAILED"}`, ...verdict.lines]) log(line);
    return verdict.ok ? 0 : 1;
  } catch (error) {
    log(`bench: ${(error as Error).stack ?? String(error)}`);
    return 1;
  } finally {
    await cleanup.run();
  }
}

/**
 * The embedded goals name start times: the first start (an empty data folder: the database is
 * created and migrated) is the harness's own start; a later start is timed here by stopping the
 * server and starting it again on the same folder, now holding everything the run stored.
 */
async function measureLaterStart(
  aforo: Child,
  options: AforoOptions,
  firstStartS: number,
  cleanup: Cleanup,
): Promise<{ line: string; json: { first_s: number; later_s: number } }> {
  await aforo.stop();
  const started = Date.now();
  const again = await startAforo(options);
  const laterStartS = (Date.now() - started) / 1000;
  cleanup.add("stop the restarted Aforo", again.stop);
  await again.stop();
  return {
    line: `Server start (to /readyz 200): first ${firstStartS.toFixed(2)} s on an empty ${options.databaseUrl ? "database" : "data folder"}, later ${laterStartS.toFixed(2)} s on what this run stored.`,
    json: { first_s: Number(firstStartS.toFixed(2)), later_s: Number(laterStartS.toFixed(2)) },
  };
}

process.exitCode = await main();
