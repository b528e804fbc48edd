/**
 * CPU time a child process has used, read from /proc (Linux). Throughput on a shared two-core
 * machine moves with whatever else runs; the server's CPU time per request barely does, so the
 * table prints it beside the ratios as the steadier figure to compare changes by.
 */
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux; /proc reports utime and stime in these ticks.

/** User + system CPU milliseconds of `pid`, or undefined where /proc is not available. */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return undefined;
    return ((userTicks + systemTicks) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
