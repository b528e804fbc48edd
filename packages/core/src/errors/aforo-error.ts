import { type ProblemSlug, problemCatalogue } from "./catalogue.ts";

export interface FieldError {
  field: string;
  message: string;
}

export interface AforoErrorOptions {
  /** Field-level errors for 400/422. */
  errors?: FieldError[];
  /** Extension members added to the problem document (`remaining`, `reset_at`, …). */
  extensions?: Record<string, unknown>;
  /** Extra response headers (`Retry-After`, …). */
  headers?: Record<string, string>;
  /** Overrides the catalogue's status where one slug serves two (e.g. a block answered with 403). */
  status?: number;
  /** Overrides the catalogue's title. */
  title?: string;
}

/** The one error type domain and service code throws for anything a client caused or can act on. */
export class AforoError extends Error {
  readonly slug: ProblemSlug;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  readonly extensions: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(slug: ProblemSlug, detail: string, options: AforoErrorOptions = {}) {
    super(detail);
    this.name = "AforoError";
    this.slug = slug;
    this.status = options.status ?? problemCatalogue[slug].status;
    this.title = options.title ?? problemCatalogue[slug].title;
    this.detail = detail;
    this.errors = options.errors;
    this.extensions = options.extensions;
    this.headers = options.headers;
  }
}

export function notFound(kind: string, id: string): AforoError {
  return new AforoError("not-found", `No ${kind} with id '${id}' exists in this tenant.`);
}

export function unprocessable(detail: string, errors: FieldError[]): AforoError {
  return new AforoError("unprocessable-entity", detail, { errors });
}

/** For states that must never happen: a bug, not a client error. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`Assertion failed: ${message}`);
}
