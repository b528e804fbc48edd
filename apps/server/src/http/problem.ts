import { AforoError, type FieldError, type ProblemSlug, problemCatalogue } from "@aforo/core";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function problemTypeUri(publicUrl: string, slug: ProblemSlug): string {
  return `${publicUrl}/problems/${slug}`;
}

export function requestInstance(requestId: string): string {
  return `urn:aforo:request:${requestId}`;
}

/**
 * The members in the order the response schema writes them (its own properties, then extensions),
 * so a document serialised without the schema (the canAccess fast path) reads the same.
 */
export function toProblem(error: AforoError, publicUrl: string, requestId: string): ProblemDocument {
  const document: ProblemDocument = {
    type: problemTypeUri(publicUrl, error.slug),
    title: error.title,
    status: error.status,
    detail: error.detail,
    instance: requestInstance(requestId),
    ...(error.errors ? { errors: error.errors } : {}),
  };
  for (const [name, value] of Object.entries(error.extensions ?? {})) {
    if (!(name in document)) document[name] = value;
  }
  return document;
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `/items/0/tiers/1/up_to` → `items[0].tiers[1].up_to`; a missing property names itself. */
function fieldOf(issue: AjvIssue, context: string | undefined): string {
  const segments = (issue.instancePath ?? "").split("/").filter(Boolean);
  if (issue.keyword === "required" && typeof issue.params?.missingProperty === "string") {
    segments.push(issue.params.missingProperty);
  }
  if (issue.keyword === "additionalProperties" && typeof issue.params?.additionalProperty === "string") {
    segments.push(issue.params.additionalProperty);
  }
  const path = segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
  if (path) return path;
  return context === "querystring" ? "query" : context === "params" ? "path" : "body";
}

function messageOf(issue: AjvIssue): string {
  if (issue.keyword === "enum" && Array.isArray(issue.params?.allowedValues)) {
    return `must be one of ${issue.params.allowedValues.join(", ")}`;
  }
  if (issue.keyword === "required") return "is required";
  return issue.message ?? "is invalid";
}

/** Fastify's own errors (validation, body parsing, limits) mapped onto the catalogue. */
export function fromFastifyError(error: FastifyError): AforoError {
  if (error.validation) {
    const seen = new Set<string>();
    const errors: FieldError[] = [];
    for (const issue of error.validation as AjvIssue[]) {
      const fieldError = { field: fieldOf(issue, error.validationContext), message: messageOf(issue) };
      const key = `${fieldError.field}:${fieldError.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        errors.push(fieldError);
      }
    }
    const summary = errors.map((e) => `${e.field} ${e.message}`).join("; ");
    return new AforoError("validation-failed", `The request is invalid: ${summary}.`, { errors });
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new AforoError("payload-too-large", "The request body is larger than this route accepts.");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new AforoError("unsupported-media-type", `Unsupported Content-Type. ${error.message}`);
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new AforoError("malformed-request", "The body is empty but Content-Type says JSON.");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new AforoError("malformed-request", "The body is not valid JSON.");
    default:
      break;
  }
  if (error instanceof SyntaxError) return new AforoError("malformed-request", "The body is not valid JSON.");
  const status = error.statusCode ?? 500;
  if (status === 404) return new AforoError("not-found", error.message);
  if (status === 405) return new AforoError("method-not-allowed", error.message);
  if (status === 413) return new AforoError("payload-too-large", error.message);
  if (status === 415) return new AforoError("unsupported-media-type", error.message);
  if (status >= 400 && status < 500) {
    return new AforoError("malformed-request", error.message, { status, title: "Bad Request" });
  }
  return new AforoError(
    "internal-error",
    "An unexpected error occurred. It has been logged with the request id.",
  );
}

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  error: AforoError,
  publicUrl: string,
) {
  for (const [name, value] of Object.entries(error.headers ?? {})) reply.header(name, value);
  return reply
    .code(error.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(toProblem(error, publicUrl, request.id));
}

export function isServerProblem(slug: ProblemSlug): boolean {
  return problemCatalogue[slug].status >= 500;
}
