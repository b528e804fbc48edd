import { createHash } from "node:crypto";
import { AforoError } from "@aforo/core";
import multipart, { type MultipartFile } from "@fastify/multipart";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { formatOfContentType, type ImportFormat, MAX_IMPORT_BYTES } from "./parse.ts";
import type { ImportJob } from "./store.ts";

const FILE_CONTENT_TYPES = [
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-jsonlines",
  "application/jsonlines",
  "text/csv",
  "application/csv",
];

const ImportJobSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("import_job"),
    status: Type.Union([
      Type.Literal("QUEUED"),
      Type.Literal("PROCESSING"),
      Type.Literal("COMPLETED"),
      Type.Literal("PARTIAL"),
      Type.Literal("FAILED"),
    ]),
    format: Type.Union([Type.Literal("ndjson"), Type.Literal("csv")]),
    filename: Type.Union([Type.String(), Type.Null()]),
    total_rows: Type.Integer({ description: "rows in the file; known once the job is PROCESSING" }),
    processed_rows: Type.Integer(),
    accepted_rows: Type.Integer(),
    duplicate_rows: Type.Integer({ description: "rows whose idempotency key was already known" }),
    failed_rows: Type.Integer({ description: "rows rejected; each is kept as a dead letter" }),
    errors: Type.Array(
      Type.Object({
        row: Type.Integer({
          description:
            "the line of the file where the row starts (the CSV header is line 1); 0 for the file as a whole",
        }),
        code: Type.String({ description: "the problem slug, e.g. unknown-customer or malformed-row" }),
        message: Type.String(),
      }),
      { description: "the first 1,000 row errors, by row" },
    ),
    created_at: Type.String(),
    completed_at: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: "ImportJob" },
);

export function toApi(job: ImportJob) {
  return {
    id: job.id,
    object: "import_job" as const,
    status: job.status,
    format: job.format,
    filename: job.filename,
    total_rows: job.totalRows,
    processed_rows: job.processedRows,
    accepted_rows: job.acceptedRows,
    duplicate_rows: job.duplicateRows,
    failed_rows: job.failedRows,
    errors: job.errors,
    created_at: job.createdAt.toISOString(),
    completed_at: job.completedAt?.toISOString() ?? null,
  };
}

/**
 * The raw file as a Buffer. The `Idempotency-Key` support fingerprints `JSON.stringify(body)`;
 * a Buffer would serialise as an array of every byte (hundreds of MB for a 50 MB file), so the
 * body stands for itself by its digest instead.
 */
function fileBody(content: Buffer): Buffer {
  Object.defineProperty(content, "toJSON", {
    value: () => ({ sha256: createHash("sha256").update(content).digest("hex") }),
  });
  return content;
}

/** A file sent as a `multipart/form-data` part, read whole: what the handler needs of it. */
interface UploadedFile {
  upload: true;
  content: Buffer;
  filename: string;
  mimetype: string;
}

function isUploadedFile(value: unknown): value is UploadedFile {
  return typeof value === "object" && value !== null && (value as { upload?: unknown }).upload === true;
}

/** A form's file by its type, else by its name's extension (browsers send CSV as text/plain too). */
function formatOfUpload(file: UploadedFile): ImportFormat | undefined {
  const byType = formatOfContentType(file.mimetype);
  if (byType) return byType;
  const extension = file.filename.toLowerCase().split(".").pop();
  if (extension === "ndjson" || extension === "jsonl") return "ndjson";
  if (extension === "csv") return "csv";
  return undefined;
}

const tags = ["Metering"];

export async function importRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(ImportJobSchema);
  app.addContentTypeParser(FILE_CONTENT_TYPES, { parseAs: "buffer" }, (_request, body, done) => {
    done(null, fileBody(body as Buffer));
  });
  // The same file as a form upload (`curl -F file=@usage.csv`): one file, read whole, and kept in
  // the body as its digest for the Idempotency-Key fingerprint, like the raw body above.
  await app.register(multipart, {
    attachFieldsToBody: "keyValues",
    limits: { fileSize: MAX_IMPORT_BYTES, files: 1, fields: 10, parts: 11 },
    async onFile(part: MultipartFile) {
      const upload: UploadedFile = {
        upload: true,
        content: fileBody(await part.toBuffer()),
        filename: part.filename,
        mimetype: part.mimetype,
      };
      part.value = upload;
    },
  });

  routes.post(
    "/v1/ingest/files",
    {
      bodyLimit: MAX_IMPORT_BYTES,
      config: { scope: "metering:write", rateLimit: "management" },
      schema: {
        tags,
        summary: "Import usage events from an NDJSON or CSV file (up to 50 MB)",
        description:
          "The body is the file itself (or a `multipart/form-data` form with one file part, its type or its name's extension .ndjson/.jsonl/.csv saying the format): `Content-Type: application/x-ndjson` (or application/jsonl), one event per line as /v1/meter takes it; or `text/csv`, a header row naming the columns customer_id, metric_id, quantity, timestamp, idempotency_key, event_type, properties (a JSON object) — the SDK spellings customerId, metricName, occurredAt, idempotencyKey too — and any other column as a property (`properties.<path>` or its plain name). Answers 202 with a QUEUED import job; rows are processed in the background (QUEUED → PROCESSING → COMPLETED, PARTIAL or FAILED). Rows without an idempotency key get one naming the file's content (SHA-256) and the row, so the same file imported again counts nothing twice. Rejected rows are kept as dead letters.",
        consumes: [...FILE_CONTENT_TYPES, "multipart/form-data"],
        body: Type.Unknown({ description: "the NDJSON or CSV file, or a form holding it" }),
        querystring: Type.Object({
          filename: Type.Optional(
            Type.String({ minLength: 1, maxLength: 255, description: "default: the form file's name" }),
          ),
        }),
        response: { 202: Type.Ref("ImportJob"), ...problemResponses(413, 415) },
      },
    },
    async (request, reply) => {
      let format = formatOfContentType(request.headers["content-type"]);
      let content: unknown = request.body;
      let filename = request.query.filename;
      if (request.isMultipart()) {
        const file = Object.values((request.body ?? {}) as Record<string, unknown>).find(isUploadedFile);
        if (!file) {
          throw new AforoError("validation-failed", "The form holds no file.", {
            errors: [{ field: "file", message: "attach the NDJSON or CSV file as a form file" }],
          });
        }
        format = formatOfUpload(file);
        content = file.content;
        filename ??= file.filename || undefined;
      }
      if (!format) {
        throw new AforoError(
          "unsupported-media-type",
          "Send the file as application/x-ndjson (or application/jsonl) or as text/csv, as the body or as a multipart/form-data file.",
        );
      }
      if (!Buffer.isBuffer(content) || content.byteLength === 0) {
        throw new AforoError("validation-failed", "The file is empty.", {
          errors: [{ field: "body", message: "must hold at least one row" }],
        });
      }
      const job = await context.imports.create(tenantScope(request), { format, filename, content });
      return reply.code(202).send(toApi(job));
    },
  );

  routes.get(
    "/v1/ingest/files/:id",
    {
      config: { scope: "metering:read" },
      schema: {
        tags,
        summary: "Retrieve an import job with its progress and row errors",
        params: IdParams,
        response: { 200: Type.Ref("ImportJob"), ...problemResponses(404) },
      },
    },
    async (request) => toApi(await context.imports.get(tenantScope(request), request.params.id)),
  );

  routes.get(
    "/v1/ingest/files",
    {
      config: { scope: "metering:read" },
      schema: {
        tags,
        summary: "List import jobs, newest first",
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("ImportJob")), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await context.imports.list(tenantScope(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );
}
