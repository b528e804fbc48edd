import { AforoError, newId, notFound } from "@aforo/core";
import type { Clock } from "../../../clock.ts";
import type { DatabaseHandle } from "../../../db/database.ts";
import type { Page, PageRequest } from "../../../db/pagination.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { MeteringService } from "../service.ts";
import { hasRows, type ImportFormat, MAX_IMPORT_BYTES } from "./parse.ts";
import { ImportRunner } from "./runner.ts";
import { type ImportJob, ImportStore } from "./store.ts";

export interface CreateImportInput {
  format: ImportFormat;
  filename: string | undefined;
  content: Uint8Array;
}

/**
 * File import: a file becomes a job whose rows go through the Metering Engine in the background.
 * The file is stored with the job, so a crash loses nothing: the next start resumes the job.
 */
export class ImportService {
  readonly #store: ImportStore;
  readonly #clock: Clock;
  readonly #runner: ImportRunner;

  constructor(
    database: DatabaseHandle,
    clock: Clock,
    metering: MeteringService,
    onError: (error: unknown) => void = reportError,
  ) {
    this.#store = new ImportStore(database.db);
    this.#clock = clock;
    this.#runner = new ImportRunner(this.#store, metering, clock, {
      staleAfterMs: database.kind === "postgres" ? 60_000 : 0,
      onError,
    });
  }

  /** Resumes the jobs a previous process left QUEUED or PROCESSING. */
  start(): void {
    this.#runner.wake();
  }

  /** Waits for the chunk in progress; unfinished jobs resume on the next start. */
  stop(): Promise<void> {
    return this.#runner.stop();
  }

  /** Resolves when the runner has no job left to serve. */
  whenIdle(): Promise<void> {
    return this.#runner.whenIdle();
  }

  async create(scope: TenantScope, input: CreateImportInput): Promise<ImportJob> {
    if (input.content.byteLength > MAX_IMPORT_BYTES) {
      throw new AforoError("payload-too-large", `An import file may hold at most ${MAX_IMPORT_BYTES} bytes.`);
    }
    // Not a fatal decode: a file that is not UTF-8 becomes a FAILED job that says so.
    const text = new TextDecoder().decode(input.content);
    if (!hasRows(input.format, text)) {
      throw new AforoError(
        "validation-failed",
        input.format === "csv"
          ? "The file holds no rows: a CSV file needs a header row and at least one row of events."
          : "The file holds no rows: an NDJSON file needs at least one line with a JSON object.",
        { errors: [{ field: "body", message: "must hold at least one row" }] },
      );
    }
    const job = await this.#store.insert(scope, {
      id: newId("importJob"),
      format: input.format,
      filename: input.filename ?? null,
      content: input.content,
      now: this.#clock.now(),
    });
    this.#runner.wake();
    return job;
  }

  async get(scope: TenantScope, id: string): Promise<ImportJob> {
    const job = await this.#store.find(scope, id);
    if (!job) throw notFound("import job", id);
    return job;
  }

  list(scope: TenantScope, page: PageRequest): Promise<Page<ImportJob>> {
    return this.#store.list(scope, page);
  }
}

function reportError(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.emitWarning(
    `Import runner stopped on an error; the job resumes on the next upload or start. ${message}`,
  );
}
