import { createHash } from "node:crypto";
import { AforoError } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { formatOfContentType, MAX_IMPORT_BYTES } from "./parse.ts";
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

const tags = ["Metering"];

export async function importRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(ImportJobSchema);
  app.addContentTypeParser(FILE_CONTENT_TYPES, { parseAs: "buffer" }, (_request, body, done) => {
    done(null, fileBody(body as Buffer));
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
          "The body is the file itself: `Content-Type: application/x-ndjson` (or application/jsonl), one event per line as /v1/meter takes it; or `text/csv`, a header row naming the columns customer_id, metric_id, quantity, timestamp, idempotency_key, event_type, properties (a JSON object) — the SDK spellings customerId, metricName, occurredAt, idempotencyKey too — and any other column as a property (`properties.<path>` or its plain name). Answers 202 with a QUEUED import job; rows are processed in the background (QUEUED → PROCESSING → COMPLETED, PARTIAL or FAILED). Rows without an idempotency key get one naming the file's content (SHA-256) and the row, so the same file imported again counts nothing twice. Rejected rows are kept as dead letters.",
        querystring: Type.Object({
          filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        }),
        response: { 202: Type.Ref("ImportJob"), ...problemResponses(413, 415) },
      },
    },
    async (request, reply) => {
      const format = formatOfContentType(request.headers["content-type"]);
      if (!format) {
        throw new AforoError(
          "unsupported-media-type",
          "Send the file as application/x-ndjson (or application/jsonl) or as text/csv.",
        );
      }
      const content = request.body;
      if (!Buffer.isBuffer(content) || content.byteLength === 0) {
        throw new AforoError("validation-failed", "The file is empty.", {
          errors: [{ field: "body", message: "must hold at least one row" }],
        });
      }
      const job = await context.imports.create(tenantScope(request), {
        format,
        filename: request.query.filename,
        content,
      });
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
