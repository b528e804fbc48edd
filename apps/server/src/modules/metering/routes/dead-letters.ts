import { AforoError } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import type { TenantScope } from "../../../http/route-config.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import type { MeterEventInput } from "../domain/event-input.ts";
import type { IngestResult } from "../service.ts";
import type { StoredDeadLetter } from "../store/dead-letters.ts";
import { fromCloudEvent } from "./cloudevents.ts";
import { checkBatchItem } from "./meter.ts";
import { acceptedToApi } from "./results.ts";

const tags = ["Metering"];
const statuses = ["PENDING", "REPLAYED"] as const;

const DeadLetterSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("dead_letter"),
    source: Type.String({ description: "batch, cloudevents, file or webhook" }),
    reason_code: Type.String({ description: "the problem slug of the (latest) rejection" }),
    reason: Type.String(),
    payload: Type.Unknown({ description: "the event exactly as it was sent" }),
    status: Type.Union(statuses.map((status) => Type.Literal(status))),
    replayed_event_id: Type.Union([Type.String(), Type.Null()]),
    replayed_at: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
  },
  { $id: "DeadLetter" },
);

export function deadLetterToApi(letter: StoredDeadLetter) {
  return {
    id: letter.id,
    object: "dead_letter" as const,
    source: letter.source,
    reason_code: letter.reason_code,
    reason: letter.reason,
    payload: letter.payload,
    status: letter.status,
    replayed_event_id: letter.replayed_event_id,
    replayed_at: letter.replayed_at === null ? null : new Date(letter.replayed_at).toISOString(),
    created_at: new Date(letter.created_at).toISOString(),
  };
}

/** The stored payload as a meter event: CloudEvents are converted, the rest were MeterEvents. */
function replayInput(letter: StoredDeadLetter): MeterEventInput {
  if (letter.source === "cloudevents") return fromCloudEvent(letter.payload);
  const invalid = checkBatchItem(letter.payload, 0);
  if (invalid) {
    throw new AforoError("validation-failed", "The stored payload is not a valid meter event.", {
      errors: (invalid.errors ?? []).map((error) => ({
        field: error.field.replace(/^events\[0\]\.?/, "") || "payload",
        message: error.message,
      })),
    });
  }
  return letter.payload as MeterEventInput;
}

function replayThrough(context: AppContext, scope: TenantScope) {
  return async (letter: StoredDeadLetter): Promise<IngestResult> => {
    let input: MeterEventInput;
    try {
      input = replayInput(letter);
    } catch (error) {
      if (error instanceof AforoError) return { ok: false, error };
      throw error;
    }
    const [result] = await context.metering.ingest(scope, [input], "replay");
    if (!result) throw new Error("ingest returned no result");
    return result;
  };
}

export async function deadLetterRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(DeadLetterSchema);

  routes.get(
    "/v1/dead_letters",
    {
      config: { scope: "metering:read" },
      schema: {
        tags,
        summary: "List rejected events kept for replay, newest first",
        description:
          "Rejections of batches, CloudEvents batches, files and webhooks are kept with their payload; a single /v1/meter rejection is answered 422 and not kept.",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          status: Type.Optional(Type.Union(statuses.map((status) => Type.Literal(status)))),
          source: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
          reason_code: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
        }),
        response: { 200: listOf(Type.Ref("DeadLetter")), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await context.meteringReads.listDeadLetters(
        tenantScope(request),
        { status: query.status, source: query.source, reasonCode: query.reason_code },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(deadLetterToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/dead_letters/:id",
    {
      config: { scope: "metering:read" },
      schema: {
        tags,
        summary: "Get a dead letter",
        params: IdParams,
        response: { 200: Type.Ref("DeadLetter"), ...problemResponses(404) },
      },
    },
    async (request) =>
      deadLetterToApi(await context.meteringReads.getDeadLetter(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/dead_letters/:id/replay",
    {
      config: { scope: "metering:write" },
      schema: {
        tags,
        summary: "Ingest a dead letter's payload again (after fixing the cause)",
        description:
          "ACCEPTED or DUPLICATE → 200 with the dead letter (now REPLAYED) and the event. Rejected again → 422 with the new rejection; the letter stays PENDING with the new reason. A REPLAYED letter → 409 invalid-transition.",
        params: IdParams,
        response: {
          200: Type.Object({
            dead_letter: Type.Ref("DeadLetter"),
            event: Type.Object({
              id: Type.String(),
              status: Type.Union([Type.Literal("ACCEPTED"), Type.Literal("DUPLICATE")]),
              flags: Type.Optional(Type.Array(Type.String())),
            }),
          }),
          ...problemResponses(404, 409, 422),
        },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const outcome = await context.meteringReads.replayDeadLetter(
        scope,
        request.params.id,
        replayThrough(context, scope),
      );
      return { dead_letter: deadLetterToApi(outcome.deadLetter), event: acceptedToApi(outcome.event) };
    },
  );
}
