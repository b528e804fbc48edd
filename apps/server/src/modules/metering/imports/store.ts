import type { Kysely, Selectable } from "kysely";
import { fetchPage, type Page, type PageRequest } from "../../../db/pagination.ts";
import type { Database, Mode } from "../../../db/schema.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import type { ImportJobsTable } from "../tables.ts";
import type { ImportFormat } from "./parse.ts";

export type ImportStatus = ImportJobsTable["status"];

export interface RowError {
  row: number;
  code: string;
  message: string;
}

/** How far a job got; persisted after every chunk, so a restart resumes at `processedRows`. */
export interface ImportProgress {
  totalRows: number;
  processedRows: number;
  acceptedRows: number;
  duplicateRows: number;
  failedRows: number;
  errors: RowError[];
}

export interface ImportJob extends ImportProgress {
  id: string;
  tenantId: string;
  mode: Mode;
  status: ImportStatus;
  format: ImportFormat;
  filename: string | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  attempt: number;
}

export const FINAL_STATUSES: readonly ImportStatus[] = ["COMPLETED", "PARTIAL", "FAILED"];

// Everything but `content`: a job's file (up to 50 MB) is read only by the runner, once per run.
const jobColumns = [
  "id",
  "tenant_id",
  "mode",
  "status",
  "format",
  "filename",
  "total_rows",
  "processed_rows",
  "accepted_rows",
  "duplicate_rows",
  "failed_rows",
  "errors",
  "created_at",
  "updated_at",
  "completed_at",
  "attempt",
] as const;

type JobRow = Pick<Selectable<ImportJobsTable>, (typeof jobColumns)[number]>;

function fromDb(row: JobRow): ImportJob {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    mode: row.mode,
    status: row.status,
    format: row.format,
    filename: row.filename,
    totalRows: row.total_rows,
    processedRows: row.processed_rows,
    acceptedRows: row.accepted_rows,
    duplicateRows: row.duplicate_rows,
    failedRows: row.failed_rows,
    errors: row.errors,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    completedAt: row.completed_at ? new Date(row.completed_at) : null,
    attempt: row.attempt,
  };
}

function progressToDb(progress: ImportProgress) {
  return {
    total_rows: progress.totalRows,
    processed_rows: progress.processedRows,
    accepted_rows: progress.acceptedRows,
    duplicate_rows: progress.duplicateRows,
    failed_rows: progress.failedRows,
    errors: JSON.stringify(progress.errors),
  };
}

export class ImportStore {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async insert(
    scope: TenantScope,
    job: { id: string; format: ImportFormat; filename: string | null; content: Uint8Array; now: Date },
  ): Promise<ImportJob> {
    const row = await this.#db
      .insertInto("import_jobs")
      .values({
        id: job.id,
        tenant_id: scope.tenantId,
        mode: scope.mode,
        status: "QUEUED",
        format: job.format,
        filename: job.filename,
        content: job.content,
        total_rows: 0,
        processed_rows: 0,
        accepted_rows: 0,
        duplicate_rows: 0,
        failed_rows: 0,
        errors: JSON.stringify([]),
        created_at: job.now,
        updated_at: job.now,
        completed_at: null,
      })
      .returning(jobColumns)
      .executeTakeFirstOrThrow();
    return fromDb(row);
  }

  async find(scope: TenantScope, id: string): Promise<ImportJob | undefined> {
    const row = await this.#db
      .selectFrom("import_jobs")
      .select(jobColumns)
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? fromDb(row) : undefined;
  }

  async list(scope: TenantScope, page: PageRequest): Promise<Page<ImportJob>> {
    const query = this.#db
      .selectFrom("import_jobs")
      .select(jobColumns)
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode);
    const result = await fetchPage(query, "id", page);
    return { data: result.data.map(fromDb), has_more: result.has_more };
  }

  /** Jobs not finished, of every tenant, oldest first (the runner serves them in order). */
  async pending(limit: number): Promise<ImportJob[]> {
    const rows = await this.#db
      .selectFrom("import_jobs")
      .select(jobColumns)
      .where("status", "in", ["QUEUED", "PROCESSING"])
      .orderBy("id", "asc")
      .limit(limit)
      .execute();
    return rows.map(fromDb);
  }

  /**
   * Takes a job for this process: a compare-and-set on its status and attempt, so that of two
   * processes reaching for the same job only one gets it.
   */
  async claim(job: ImportJob, now: Date): Promise<ImportJob | undefined> {
    const row = await this.#db
      .updateTable("import_jobs")
      .set({ status: "PROCESSING", attempt: job.attempt + 1, updated_at: now })
      .where("id", "=", job.id)
      .where("status", "=", job.status)
      .where("attempt", "=", job.attempt)
      .returning(jobColumns)
      .executeTakeFirst();
    return row ? fromDb(row) : undefined;
  }

  async content(id: string): Promise<Uint8Array> {
    const row = await this.#db
      .selectFrom("import_jobs")
      .select("content")
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    return row.content;
  }

  async saveProgress(id: string, progress: ImportProgress, now: Date): Promise<void> {
    await this.#db
      .updateTable("import_jobs")
      .set({ ...progressToDb(progress), updated_at: now })
      .where("id", "=", id)
      .execute();
  }

  async finish(id: string, status: ImportStatus, progress: ImportProgress, now: Date): Promise<void> {
    await this.#db
      .updateTable("import_jobs")
      .set({ ...progressToDb(progress), status, updated_at: now, completed_at: now })
      .where("id", "=", id)
      .execute();
  }

  /** Of these events, the ones a file import received at or after `since`. */
  async eventsReceivedSince(
    scope: TenantScope,
    eventIds: readonly string[],
    since: Date,
  ): Promise<Set<string>> {
    if (eventIds.length === 0) return new Set();
    const rows = await this.#db
      .selectFrom("usage_events")
      .select("id")
      .where("tenant_id", "=", scope.tenantId)
      .where("mode", "=", scope.mode)
      .where("id", "in", [...eventIds])
      .where("source", "=", "file")
      .where("received_at", ">=", since)
      .execute();
    return new Set(rows.map((row) => row.id));
  }
}
