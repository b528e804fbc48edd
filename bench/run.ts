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
import {
  emptyTally,
  type LoadSpec,
  latencyHistogram,
  percentileMs,
  runLoad,
  stopRunningLoad,
  type Tally,
} from "./load.ts";
import { type Child, generateOperatorKey, startAforo, startBareServer } from "./processes.ts";
import { formatTable, type Measurement, parseArgs, schedule, toJson, toRows } from "./report.ts";
import { seed, usageTotal } from "./seed.ts";
import { SATURATED_CONNECTIONS, type Seed, type Target, targets } from "./targets.ts";

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
    lines.push(line);
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
    },
    tally: emptyTally(),
    latencies: latencyHistogram(),
    warmedUp: false,
    durationS: 0,
    ok: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
  };
}

/** One slice of a row: a warm-up the first time (not measured), then `durationS` measured. */
async function runSlice(row: RowRun, durationS: number, warmupS: number): Promise<void> {
  if (!row.warmedUp && warmupS > 0) await runLoad({ ...row.spec, durationS: warmupS }, row.tally, undefined);
  row.warmedUp = true;
  const result = await runLoad({ ...row.spec, durationS }, row.tally, row.latencies);
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
    log(`bench: Aforo ready in ${((Date.now() - bootStarted) / 1000).toFixed(1)} s; seeding…`);
    const s = await seed(aforo.url, operatorKey);
    const startedAt = new Date();

    const runs = chosen.map((target) => prepare(target, { bare, aforo }, s));
    const sliceS = options.durationS / options.rounds;
    const order = schedule(runs, options.rounds);
    for (const [index, row] of order.entries()) {
      if (interrupted) break;
      const rate = row.spec.overallRate ? `${row.spec.overallRate}/s` : "max";
      log(
        `bench: [${index + 1}/${order.length}] ${row.target.name} (${row.spec.connections} connections, ${rate}, ${sliceS} s)…`,
      );
      await runSlice(row, sliceS, options.warmupS);
      await sleep(300);
    }
    if (interrupted) return 130;

    const rows = toRows(runs.map(toMeasurement));
    const tallies = new Map(runs.map((row) => [row.target.name, row.tally]));
    const verdict = await verify(aforo, s, startedAt, chosen, tallies);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(toJson(rows), null, 2)}\n`);
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

process.exitCode = await main();
