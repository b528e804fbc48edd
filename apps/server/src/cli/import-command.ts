import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import cliProgress from "cli-progress";
import { type Command, Option } from "commander";
import {
  CONTENT_TYPES,
  formatOfFilename,
  type ImportFormat,
  MAX_IMPORT_BYTES,
} from "../modules/metering/imports/parse.ts";
import { fail, printJson } from "./output.ts";

/** The import job as GET /v1/ingest/files/{id} answers it. */
export interface ImportJobView {
  id: string;
  status: "QUEUED" | "PROCESSING" | "COMPLETED" | "PARTIAL" | "FAILED";
  format: ImportFormat;
  filename: string | null;
  total_rows: number;
  processed_rows: number;
  accepted_rows: number;
  duplicate_rows: number;
  failed_rows: number;
  errors: { row: number; code: string; message: string }[];
}

export interface ImportOptions {
  tenant: string;
  key?: string | undefined;
  url: string;
  format?: ImportFormat | undefined;
  json?: boolean | undefined;
}

/** A mistake in how the command was called: printed as is, exit code 2. */
export class ImportUsageError extends Error {}

/** The server answered with a problem, or could not be reached: exit code 1. */
export class ImportRequestError extends Error {}

const FINAL = new Set(["COMPLETED", "PARTIAL", "FAILED"]);
const SHOWN_ERRORS = 10;

export function isFinal(job: ImportJobView): boolean {
  return FINAL.has(job.status);
}

/** COMPLETED is success; a PARTIAL or FAILED import needs the user's attention. */
export function exitCodeOf(job: ImportJobView): number {
  return job.status === "COMPLETED" ? 0 : 1;
}

export function formatFor(file: string, explicit: ImportFormat | undefined): ImportFormat {
  const format = explicit ?? formatOfFilename(file);
  if (!format) {
    throw new ImportUsageError(
      `error: cannot tell the format of '${path.basename(file)}' from its extension; pass --format ndjson or --format csv.`,
    );
  }
  return format;
}

export function summaryOf(job: ImportJobView): string {
  const lines = [
    `Import ${job.id}${job.filename ? ` (${job.filename})` : ""}: ${job.status}`,
    `  rows:       ${job.total_rows}`,
    `  accepted:   ${job.accepted_rows}`,
    `  duplicates: ${job.duplicate_rows}`,
    `  failed:     ${job.failed_rows}`,
  ];
  if (job.errors.length > 0) {
    lines.push("", `First errors (${Math.min(job.errors.length, SHOWN_ERRORS)} of ${job.failed_rows}):`);
    for (const error of job.errors.slice(0, SHOWN_ERRORS)) {
      lines.push(`  ${error.row === 0 ? "file" : `row ${error.row}`}  ${error.code}  ${error.message}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Talks to a running server: the embedded database is locked by it, so the CLI cannot open it. */
export class ImportClient {
  readonly #baseUrl: string;
  readonly #headers: Record<string, string>;

  constructor(options: { url: string; key: string; tenant: string }) {
    this.#baseUrl = options.url.replace(/\/$/, "");
    this.#headers = { authorization: `Bearer ${options.key}`, "x-tenant-id": options.tenant };
  }

  upload(content: Uint8Array, format: ImportFormat, filename: string): Promise<ImportJobView> {
    const query = new URLSearchParams({ filename });
    return this.#call(`/v1/ingest/files?${query}`, {
      method: "POST",
      headers: { ...this.#headers, "content-type": CONTENT_TYPES[format] },
      body: content,
    });
  }

  get(id: string): Promise<ImportJobView> {
    return this.#call(`/v1/ingest/files/${encodeURIComponent(id)}`, { headers: this.#headers });
  }

  async #call(pathAndQuery: string, init: RequestInit): Promise<ImportJobView> {
    let response: Response;
    try {
      response = await fetch(`${this.#baseUrl}${pathAndQuery}`, init);
    } catch (error) {
      const cause =
        error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new ImportRequestError(
        `error: cannot reach the Aforo server at ${this.#baseUrl} (${cause}). Is \`aforo start\` running? Pass --url otherwise.`,
      );
    }
    const text = await response.text();
    if (!response.ok) throw new ImportRequestError(problemMessage(response.status, text));
    return JSON.parse(text) as ImportJobView;
  }
}

function problemMessage(status: number, text: string): string {
  try {
    const problem = JSON.parse(text) as { detail?: string; errors?: { field: string; message: string }[] };
    const fields = (problem.errors ?? []).map(({ field, message }) => `\n  ${field}: ${message}`);
    return `error: ${problem.detail ?? `the server answered ${status}`}${fields.join("")}`;
  } catch {
    return `error: the server answered ${status}: ${text.slice(0, 200)}`;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Uploads the file, follows the job to its end and returns it. */
export async function importFile(
  file: string,
  options: ImportOptions & { pollIntervalMs?: number; onProgress?: (job: ImportJobView) => void },
): Promise<ImportJobView> {
  if (!options.key) {
    throw new ImportUsageError("error: pass --key <secret key> or set AFORO_API_KEY.");
  }
  const format = formatFor(file, options.format);
  const size = await stat(file).then(
    (stats) => stats.size,
    () => {
      throw new ImportUsageError(`error: cannot read '${file}'.`);
    },
  );
  if (size > MAX_IMPORT_BYTES) {
    throw new ImportUsageError(`error: '${file}' has ${size} bytes; an import file may hold at most 50 MB.`);
  }
  const client = new ImportClient({ url: options.url, key: options.key, tenant: options.tenant });
  let job = await client.upload(await readFile(file), format, path.basename(file));
  options.onProgress?.(job);
  let interval = options.pollIntervalMs ?? 200;
  while (!isFinal(job)) {
    await sleep(interval);
    // Large files take minutes: poll less often as the wait grows.
    interval = Math.min(interval * 1.25, 2000);
    job = await client.get(job.id);
    options.onProgress?.(job);
  }
  return job;
}

/** A bar on stderr (only when it is a terminal); stdout keeps the summary or the JSON. */
function progressBar(): { update(job: ImportJobView): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    { format: "Importing [{bar}] {value}/{total} rows | {status}", hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(job) {
      const total = Math.max(job.total_rows, job.processed_rows);
      if (!started) {
        bar.start(total, job.processed_rows, { status: job.status });
        started = true;
      }
      bar.setTotal(total);
      bar.update(job.processed_rows, { status: job.status });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export function registerImportCommand(program: Command): void {
  program
    .command("import")
    .description("Import usage events from an NDJSON or CSV file through a running server")
    .argument("<file>", "the file (.ndjson, .jsonl or .csv, up to 50 MB)")
    .requiredOption("--tenant <id|slug>", "tenant id (ten_…) or slug")
    .option("--key <secret key>", "a secret key with metering:write (default: $AFORO_API_KEY)")
    .option("--url <url>", "the server's base URL", process.env.AFORO_URL ?? "http://localhost:4000")
    .addOption(
      new Option("--format <format>", "the file format (default: from the extension)").choices([
        "ndjson",
        "csv",
      ]),
    )
    .option("--json", "print the finished import job as JSON (no progress bar)")
    .action(async (file: string, options: ImportOptions) => {
      const bar = options.json ? undefined : progressBar();
      let job: ImportJobView;
      try {
        job = await importFile(file, {
          ...options,
          key: options.key ?? process.env.AFORO_API_KEY,
          onProgress: (current) => bar?.update(current),
        });
      } catch (error) {
        bar?.stop();
        if (error instanceof ImportUsageError) fail(error.message, 2);
        if (error instanceof ImportRequestError) fail(error.message, 1);
        throw error;
      }
      bar?.stop();
      if (options.json) printJson(job);
      else process.stdout.write(summaryOf(job));
      process.exitCode = exitCodeOf(job);
    });
}
