/** The servers under load, each in its own child process, and their tidy end. */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const AFORO_MAIN = fileURLToPath(new URL("../apps/server/src/cli/main.ts", import.meta.url));
const BARE_SERVER = fileURLToPath(new URL("./bare-server.ts", import.meta.url));

export interface Child {
  name: string;
  process: ChildProcess;
  url: string;
  /** The last lines the child wrote, to explain a failure. */
  tail(): string;
  stop(): Promise<void>;
}

/** An operator key as AFORO_OPERATOR_KEY wants it: `afo_` + at least 32 letters or digits. */
export function generateOperatorKey(): string {
  return `afo_${randomBytes(24).toString("hex")}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function keepTail(child: ChildProcess, limit = 40): () => string {
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      lines.push(line);
      if (lines.length > limit) lines.shift();
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  return () => lines.join("\n");
}

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Races `ready` against the child's exit, and stops watching the exit once ready. */
async function untilReady<T>(
  child: ChildProcess,
  name: string,
  tail: () => string,
  ready: Promise<T>,
): Promise<T> {
  let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  const exited = new Promise<never>((_resolve, reject) => {
    onExit = (code, signal) =>
      reject(new Error(`${name} exited early (code ${code}, signal ${signal}):\n${tail()}`));
    child.once("exit", onExit);
  });
  try {
    return await Promise.race([ready, exited]);
  } finally {
    if (onExit) child.off("exit", onExit);
  }
}

export async function startBareServer(): Promise<Child> {
  const child = spawn(process.execPath, [BARE_SERVER], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const tail = keepTail(child);
  const port = await untilReady(
    child,
    "the bare node:http server",
    tail,
    new Promise<number>((resolve) =>
      child.once("message", (message) => resolve((message as { port: number }).port)),
    ),
  );
  return {
    name: "bare",
    process: child,
    url: `http://127.0.0.1:${port}`,
    tail,
    stop: () => terminate(child, 2_000),
  };
}

export interface AforoOptions {
  dataDir: string;
  databaseUrl: string | undefined;
  operatorKey: string;
}

export async function startAforo(options: AforoOptions): Promise<Child> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    AFORO_DATA_DIR: options.dataDir,
    AFORO_OPERATOR_KEY: options.operatorKey,
    LOG_LEVEL: "warn",
  };
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  else delete env.DATABASE_URL;
  delete env.AFORO_PUBLIC_URL;
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server under load.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, AFORO_MAIN, "start", "--json"], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail = keepTail(child);
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilReady(child, "the Aforo server", tail, waitForReady(`${url}/readyz`, 120_000, child));
  } catch (error) {
    await terminate(child, 5_000);
    throw error;
  }
  return { name: "aforo", process: child, url, tail, stop: () => terminate(child, 25_000) };
}

async function waitForReady(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    // Often enough that the start time the harness reports is within a few tens of ms.
    await sleep(25);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
}
