import { createHash } from "node:crypto";
import { AforoError } from "@aforo/core";
import type { Clock } from "../../../clock.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import { buildValidatorCompiler } from "../../../http/validation.ts";
import type { MeterEventInput } from "../domain/event-input.ts";
import { MeterEventSchema } from "../routes/schemas.ts";
import type { IngestResult, MeteringService } from "../service.ts";
import { decodeFile, type ParsedRow, parseRows, UnreadableFileError } from "./parse.ts";
import type { ImportJob, ImportProgress, ImportStatus, ImportStore, RowError } from "./store.ts";

/** Rows per call to the Metering Engine, and per progress checkpoint. */
export const CHUNK_ROWS = 500;
/** Errors kept on a job, the first ones by row; the counts cover every row. */
export const MAX_KEPT_ERRORS = 1000;
/** A job that brought its process down this many times is failed rather than retried forever. */
export const MAX_ATTEMPTS = 5;
/** How long the runner waits after a failure (the database away, say) before it looks again. */
const RETRY_AFTER_ERROR_MS = 30_000;

export interface RunnerOptions {
  /**
   * How long a PROCESSING job may go without a checkpoint before another process takes it over
   * (its runner is presumed dead). 0 on the embedded database, which one process holds.
   */
  staleAfterMs: number;
  onError: (error: unknown) => void;
}

/** Checks each row as /v1/meter checks its body, so a file and the API accept the same events. */
const validateEvent = buildValidatorCompiler()({
  schema: MeterEventSchema,
  httpPart: "body",
  method: "POST",
  url: "",
}) as ((value: unknown) => boolean) & {
  errors?: { instancePath?: string; message?: string; params?: { missingProperty?: string } }[] | null;
};

interface PreparedRow {
  row: number;
  /** What a dead letter keeps: the event (with the key it was given), or the unreadable text. */
  payload: unknown;
  input?: MeterEventInput;
  error?: AforoError;
}

/**
 * A row as the Metering Engine takes it. Rows without an idempotency key get one naming the job
 * and the row, so that re-processing a chunk after a crash finds them DUPLICATE, never counts
 * them twice.
 */
/**
 * What names a file's rows that carry no idempotency key: the file's content, so the same file
 * imported again (a retried upload, a second job) finds its rows already stored instead of
 * counting them twice. API.md: a key defaults to a hash of the event; a row's event is its file
 * and its place in it.
 */
export function fileKeyPrefix(text: string): string {
  return `file:${createHash("sha256").update(text).digest("hex").slice(0, 32)}`;
}

export function prepareRow(parsed: ParsedRow, fileKey: string): PreparedRow {
  if (!parsed.ok) {
    return { row: parsed.row, payload: parsed.raw, error: new AforoError("malformed-row", parsed.message) };
  }
  const payload = parsed.payload;
  if (!validateEvent(payload)) {
    const errors = (validateEvent.errors ?? []).map((issue) => {
      const path = (issue.instancePath ?? "").split("/").filter(Boolean).join(".");
      const field = [path, issue.params?.missingProperty].filter(Boolean).join(".") || "row";
      return { field, message: issue.message ?? "is invalid" };
    });
    const summary = errors.map((e) => `${e.field} ${e.message}`).join("; ");
    const error = new AforoError("validation-failed", `Row ${parsed.row} is invalid: ${summary}.`, {
      errors,
    });
    return { row: parsed.row, payload, error };
  }
  const input = payload as MeterEventInput;
  if (!input.idempotency_key && !input.idempotencyKey) input.idempotency_key = `${fileKey}:${parsed.row}`;
  return { row: parsed.row, payload, input };
}

function finalStatus(progress: ImportProgress): ImportStatus {
  if (progress.totalRows === 0 || progress.failedRows >= progress.totalRows) return "FAILED";
  return progress.failedRows > 0 ? "PARTIAL" : "COMPLETED";
}

/**
 * Serves import jobs one at a time, in the background of the server process. It is woken when a
 * job is created and once at start (to resume what a previous process left), never by polling;
 * a job another process holds is looked at again only when its lease would have run out.
 */
export class ImportRunner {
  readonly #store: ImportStore;
  readonly #metering: MeteringService;
  readonly #clock: Clock;
  readonly #options: RunnerOptions;
  #loop: Promise<void> | undefined;
  #wanted = false;
  #stopped = false;
  #recheck: { timer: NodeJS.Timeout; at: number } | undefined;

  constructor(store: ImportStore, metering: MeteringService, clock: Clock, options: RunnerOptions) {
    this.#store = store;
    this.#metering = metering;
    this.#clock = clock;
    this.#options = options;
  }

  wake(): void {
    if (this.#stopped) return;
    this.#wanted = true;
    this.#loop ??= this.#serve().finally(() => {
      this.#loop = undefined;
    });
  }

  /** Resolves once no job is being served (tests wait on it instead of sleeping). */
  async whenIdle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** Stops after the chunk in progress; an unfinished job stays PROCESSING and resumes on the next start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#recheck) clearTimeout(this.#recheck.timer);
    this.#recheck = undefined;
    await this.whenIdle();
  }

  async #serve(): Promise<void> {
    while (this.#wanted && !this.#stopped) {
      this.#wanted = false;
      try {
        while (!this.#stopped && (await this.#serveNext())) {}
      } catch (error) {
        // The job stays PROCESSING and is tried again later (and failed after MAX_ATTEMPTS).
        this.#options.onError(error);
        this.#recheckAt(RETRY_AFTER_ERROR_MS);
        return;
      }
    }
  }

  /** Claims and runs the oldest job it may take; false when there is none. */
  async #serveNext(): Promise<boolean> {
    const now = this.#clock.now();
    let nextStaleAt: number | undefined;
    for (const candidate of await this.#store.pending(100)) {
      if (candidate.status === "PROCESSING") {
        const staleAt = candidate.updatedAt.getTime() + this.#options.staleAfterMs;
        if (staleAt > now.getTime()) {
          nextStaleAt = Math.min(nextStaleAt ?? staleAt, staleAt);
          continue;
        }
      }
      const job = await this.#store.claim(candidate, now);
      if (!job) continue;
      await this.#run(job, candidate.status === "PROCESSING" ? candidate.updatedAt : undefined);
      return true;
    }
    if (nextStaleAt !== undefined) this.#recheckAt(nextStaleAt - now.getTime());
    return false;
  }

  #recheckAt(delayMs: number): void {
    const at = Date.now() + delayMs;
    if (this.#recheck && this.#recheck.at <= at) return;
    if (this.#recheck) clearTimeout(this.#recheck.timer);
    const timer = setTimeout(() => {
      this.#recheck = undefined;
      this.wake();
    }, delayMs + 1000);
    timer.unref();
    this.#recheck = { timer, at };
  }

  /**
   * Runs a claimed job from its last checkpoint to the end. `resumedFrom` is the checkpoint of a job
   * a dead process left PROCESSING: its next chunk may have been ingested already.
   */
  async #run(job: ImportJob, resumedFrom: Date | undefined): Promise<void> {
    const progress: ImportProgress = {
      totalRows: job.totalRows,
      processedRows: job.processedRows,
      acceptedRows: job.acceptedRows,
      duplicateRows: job.duplicateRows,
      failedRows: job.failedRows,
      errors: [...job.errors],
    };
    if (job.attempt > MAX_ATTEMPTS) {
      const message = `The import was abandoned after ${MAX_ATTEMPTS} attempts at row ${progress.processedRows + 1}.`;
      progress.errors.push({ row: 0, code: "internal-error", message });
      await this.#store.finish(job.id, "FAILED", progress, this.#clock.now());
      return;
    }
    let text: string;
    try {
      text = decodeFile(await this.#store.content(job.id));
      if (progress.processedRows === 0) {
        progress.totalRows = countRows(job, text);
        await this.#store.saveProgress(job.id, progress, this.#clock.now());
      }
    } catch (error) {
      if (!(error instanceof UnreadableFileError)) throw error;
      const errors = [{ row: 0, code: "malformed-file", message: error.message }];
      await this.#store.finish(job.id, "FAILED", { ...progress, totalRows: 0, errors }, this.#clock.now());
      return;
    }
    const scope: TenantScope = { tenantId: job.tenantId, mode: job.mode };
    const rows = parseRows(job.format, text);
    const fileKey = fileKeyPrefix(text);
    for (let skipped = 0; skipped < progress.processedRows; skipped++) rows.next();
    let checkpoint = resumedFrom;
    let chunk = take(rows, CHUNK_ROWS);
    while (chunk.length > 0) {
      await this.#ingestChunk(scope, fileKey, chunk, progress, checkpoint);
      checkpoint = undefined;
      chunk = take(rows, CHUNK_ROWS);
      if (chunk.length === 0) break;
      await this.#store.saveProgress(job.id, progress, this.#clock.now());
      if (this.#stopped) return;
    }
    await this.#store.finish(job.id, finalStatus(progress), progress, this.#clock.now());
  }

  async #ingestChunk(
    scope: TenantScope,
    fileKey: string,
    chunk: readonly ParsedRow[],
    progress: ImportProgress,
    checkpoint: Date | undefined,
  ): Promise<void> {
    const prepared = chunk.map((row) => prepareRow(row, fileKey));
    const results = await this.#metering.ingestChecked(scope, prepared, "file");
    const own = checkpoint ? await this.#ownDuplicates(scope, results, checkpoint) : new Set<string>();
    results.forEach((result, index) => {
      if (result.ok && (result.event.status === "ACCEPTED" || own.has(result.event.id)))
        progress.acceptedRows++;
      else if (result.ok) progress.duplicateRows++;
      else {
        progress.failedRows++;
        if (progress.errors.length < MAX_KEPT_ERRORS)
          progress.errors.push(rowError(prepared[index]?.row ?? 0, result.error));
      }
    });
    progress.processedRows += chunk.length;
  }

  /**
   * After a crash the first chunk is ingested again; the events its previous run stored come back
   * DUPLICATE. Those a file import received after the last checkpoint are this job's own work and
   * are counted as accepted, so the job's counts stay exact across restarts.
   */
  #ownDuplicates(
    scope: TenantScope,
    results: readonly IngestResult[],
    checkpoint: Date,
  ): Promise<Set<string>> {
    const duplicates = results.flatMap((r) => (r.ok && r.event.status === "DUPLICATE" ? [r.event.id] : []));
    return this.#store.eventsReceivedSince(scope, duplicates, checkpoint);
  }
}

function rowError(row: number, error: AforoError): RowError {
  return { row, code: error.slug, message: error.detail };
}

function take<T>(rows: Iterator<T>, count: number): T[] {
  const taken: T[] = [];
  while (taken.length < count) {
    const next = rows.next();
    if (next.done) break;
    taken.push(next.value);
  }
  return taken;
}

function countRows(job: ImportJob, text: string): number {
  let count = 0;
  for (const _row of parseRows(job.format, text)) count++;
  return count;
}
