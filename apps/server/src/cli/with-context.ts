import { AforoError } from "@aforo/core";
import { InvalidArgumentError, Option } from "commander";
import { systemClock } from "../clock.ts";
import { type AppContext, createContext } from "../context.ts";
import { DataDirInUseError } from "../db/data-dir-lock.ts";
import { openDatabase } from "../db/database.ts";
import { migrateToLatest } from "../db/migrate.ts";
import { MAX_PAGE_LIMIT } from "../db/pagination.ts";
import type { Mode } from "../db/schema.ts";
import { configOrExit, fail } from "./output.ts";

/**
 * Runs one command against the services, talking to the database directly (no server needed).
 * Everything is closed before the process exits: the embedded database's folder stays locked
 * (pid file) until `close()`, and a PGlite killed mid-write can leave its folder unusable.
 */
export async function withContext(run: (context: AppContext) => Promise<void>): Promise<void> {
  const config = configOrExit();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }).catch(
    (error: Error) =>
      fail(
        error instanceof DataDirInUseError ? error.message : `Could not open the database: ${error.message}`,
      ),
  );
  let failure: string | undefined;
  try {
    await migrateToLatest(database.db);
    // One command, then exit: no job workers, schedules or import runner.
    const context = await createContext(config, database, systemClock, { background: false });
    try {
      await run(context);
    } finally {
      await context.stop();
    }
  } catch (error) {
    failure = describe(error);
  } finally {
    await database.close();
  }
  if (failure !== undefined) fail(failure);
}

/** An AforoError is the user's to act on: its detail and field errors, without a stack. */
function describe(error: unknown): string {
  if (!(error instanceof AforoError))
    return `error: ${error instanceof Error ? error.message : String(error)}`;
  const fields = (error.errors ?? []).map(({ field, message }) => `\n  ${field}: ${message}`);
  return `error: ${error.detail}${fields.join("")}`;
}

export const modes: readonly Mode[] = ["live", "test"];

/** `--mode <live|test>`, required: commander rejects anything else with its usage error. */
export function modeOption(): Option {
  return new Option("--mode <mode>", "the key mode: live, or test for the sandbox")
    .choices(modes)
    .makeOptionMandatory();
}

export function parseLimit(value: string): number {
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_PAGE_LIMIT}.`);
  }
  return limit;
}

/** Prints `label: value` lines with the values aligned. */
export function printFields(fields: Array<[label: string, value: string]>): void {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1;
  for (const [label, value] of fields) process.stdout.write(`${`${label}:`.padEnd(width)} ${value}\n`);
}

/** Prints rows under a header, columns padded to their widest cell. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    `${cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd()}\n`;
  process.stdout.write(line(headers));
  for (const row of rows) process.stdout.write(line(row));
}

export function printMore(hasMore: boolean, lastId: string | undefined): void {
  if (hasMore && lastId) process.stdout.write(`(more: --starting-after ${lastId})\n`);
}
