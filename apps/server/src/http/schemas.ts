import { type TSchema, Type } from "typebox";
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from "../db/pagination.ts";

/** The problem document every error answers with (RFC 9457). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: "uri" }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: "Problem", additionalProperties: true, description: "RFC 9457 problem document" },
);

const problemRef = Type.Ref("Problem");

/** Error responses to document on a route, by status. */
export function problemResponses(...statuses: number[]): Record<number, TSchema> {
  const all = [400, 401, 403, 429, ...statuses];
  return Object.fromEntries(all.map((status) => [status, problemRef]));
}

export const PaginationQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT }),
  starting_after: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
});

export function listOf<T extends TSchema>(item: T) {
  return Type.Object({ data: Type.Array(item), has_more: Type.Boolean() });
}

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** A decimal as a JSON string ("0.000002"); numbers are accepted on input. */
export const DecimalInput = Type.Union([
  Type.String({ pattern: "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$", maxLength: 60 }),
  Type.Number(),
]);
export const DecimalOutput = Type.String({ pattern: "^-?[0-9]+(\\.[0-9]+)?$" });

export const Timestamp = Type.String({ format: "date-time" });
export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 500 }), {
  maxProperties: 50,
});
