import { AforoError } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { problemResponses } from "../../../http/schemas.ts";
import { buildValidatorCompiler } from "../../../http/validation.ts";
import type { MeterEventInput } from "../domain/event-input.ts";
import { acceptedToApi, batchToApi } from "./results.ts";
import { AcceptedEventSchema, BatchResultSchema, MAX_BATCH_EVENTS, MeterEventSchema } from "./schemas.ts";

const tags = ["Metering"];
// Events carry their own idempotency keys; the generic Idempotency-Key replay would only add a query.
const hotPath = { scope: "metering:write" as const, rateLimit: "meter" as const, idempotent: false };

/** Batch items are checked one by one, so that one malformed event does not fail the batch. */
const validateEvent = buildValidatorCompiler()({
  schema: MeterEventSchema,
  httpPart: "body",
  method: "POST",
  url: "",
}) as ((value: unknown) => boolean) & {
  errors?: { instancePath?: string; message?: string; params?: { missingProperty?: string } }[] | null;
};

export function checkBatchItem(item: unknown, index: number): AforoError | undefined {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return new AforoError("validation-failed", `Event ${index} is not an object.`, {
      errors: [{ field: `events[${index}]`, message: "must be an object" }],
    });
  }
  if (validateEvent(item)) return undefined;
  const errors = (validateEvent.errors ?? []).map((issue) => ({
    field: `events[${index}]${(issue.instancePath ?? "").replace(/\//g, ".")}`,
    message: issue.message ?? "is invalid",
  }));
  return new AforoError("validation-failed", `Event ${index} is invalid.`, { errors });
}

export async function meterRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(MeterEventSchema);
  app.addSchema(AcceptedEventSchema);

  routes.post(
    "/v1/meter",
    {
      config: hotPath,
      schema: {
        tags,
        summary: "Record one usage event (answered after it is durable)",
        description:
          "202 with ACCEPTED, or DUPLICATE for a known idempotency_key (nothing changes). Unknown unit or customer → 422; more than 5 minutes in the future → 422 clock-skew; older than 24 h → accepted and flagged LATE; older than the backdating limit → accepted into reconciliation (flag RECONCILIATION). The Idempotency-Key header is used as the event's key when the body has none.",
        body: Type.Ref("MeterEvent"),
        response: { 202: Type.Ref("AcceptedEvent"), ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const input = request.body as MeterEventInput;
      const header = request.headers["idempotency-key"];
      if (typeof header === "string" && !input.idempotency_key && !input.idempotencyKey)
        input.idempotency_key = header;
      const event = await context.metering.ingestOne(tenantScope(request), input, "api");
      return reply.code(202).send(acceptedToApi(event));
    },
  );

  routes.post(
    "/v1/meter/batch",
    {
      config: hotPath,
      schema: {
        tags,
        summary: `Record up to ${MAX_BATCH_EVENTS} usage events; each succeeds or fails alone`,
        description:
          "200 with one result per event, in order: ACCEPTED, DUPLICATE (a known idempotency_key; nothing changes) or REJECTED with the problem (id null; the event is dead-lettered). With an Idempotency-Key header, an event without a key of its own is keyed by the header and its index, so a retried batch counts nothing twice.",
        body: Type.Object({
          events: Type.Array(Type.Unknown({ description: "a MeterEvent" }), {
            minItems: 1,
            maxItems: MAX_BATCH_EVENTS,
          }),
        }),
        response: { 200: BatchResultSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const events = request.body.events;
      // A retried batch sent with an Idempotency-Key header: an event without a key of its own is
      // named by the header and its place, so the retry answers DUPLICATE instead of counting again.
      const header = request.headers["idempotency-key"];
      const batchKey = typeof header === "string" && header.length > 0 ? header : undefined;
      const results = await context.metering.ingestChecked(
        scope,
        events.map((payload, index) => {
          const error = checkBatchItem(payload, index);
          if (error) return { payload, error };
          const input = payload as MeterEventInput;
          if (!batchKey || input.idempotency_key || input.idempotencyKey) return { payload, input };
          return { payload, input: { ...input, idempotency_key: `${batchKey}:${index}` } };
        }),
        "batch",
      );
      return batchToApi(results, context.config.publicUrl);
    },
  );
}
