import { AforoError } from "@aforo/core";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { problemResponses } from "../../../http/schemas.ts";
import type { MeterEventInput } from "../domain/event-input.ts";
import { acceptedToApi, batchToApi } from "./results.ts";
import { BatchResultSchema, MAX_BATCH_EVENTS } from "./schemas.ts";

const SINGLE = "application/cloudevents+json";
const BATCH = "application/cloudevents-batch+json";
const RESERVED_DATA_FIELDS = new Set([
  "metric_id",
  "metricName",
  "quantity",
  "idempotency_key",
  "properties",
]);

/**
 * A CloudEvents 1.0 envelope as a meter event: `subject` is the customer, `type` the event type,
 * `time` the timestamp, and `data` holds `metric_id`, `quantity` and the properties (in
 * `data.properties`, or the rest of `data`). `source` + `id` are unique per CloudEvents, so together
 * they are the idempotency key unless `data.idempotency_key` says otherwise.
 */
export function fromCloudEvent(envelope: unknown): MeterEventInput {
  const errors: { field: string; message: string }[] = [];
  if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope)) {
    throw new AforoError("validation-failed", "A CloudEvent must be a JSON object.", {
      errors: [{ field: "body", message: "must be an object" }],
    });
  }
  const ce = envelope as Record<string, unknown>;
  for (const attribute of ["id", "source", "type", "subject"]) {
    if (typeof ce[attribute] !== "string" || (ce[attribute] as string).length === 0) {
      errors.push({ field: attribute, message: "is required (a non-empty string)" });
    }
  }
  if (ce.specversion !== "1.0") errors.push({ field: "specversion", message: "must be '1.0'" });
  if (ce.time !== undefined && typeof ce.time !== "string")
    errors.push({ field: "time", message: "must be a string" });
  const data = ce.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    errors.push({ field: "data", message: "must be an object holding metric_id and quantity" });
  }
  if (errors.length > 0) {
    throw new AforoError(
      "validation-failed",
      `The CloudEvent is invalid: ${errors.map((e) => `${e.field} ${e.message}`).join("; ")}.`,
      {
        errors,
      },
    );
  }
  const payload = data as Record<string, unknown>;
  const properties =
    typeof payload.properties === "object" &&
    payload.properties !== null &&
    !Array.isArray(payload.properties)
      ? (payload.properties as Record<string, unknown>)
      : Object.fromEntries(Object.entries(payload).filter(([key]) => !RESERVED_DATA_FIELDS.has(key)));
  const quantity = payload.quantity;
  return {
    customer_id: ce.subject as string,
    metric_id:
      typeof payload.metric_id === "string"
        ? payload.metric_id
        : typeof payload.metricName === "string"
          ? payload.metricName
          : undefined,
    quantity: typeof quantity === "string" || typeof quantity === "number" ? quantity : undefined,
    event_type: ce.type as string,
    timestamp: ce.time as string | undefined,
    idempotency_key:
      typeof payload.idempotency_key === "string"
        ? payload.idempotency_key
        : `ce:${String(ce.source)}:${String(ce.id)}`,
    properties,
  };
}

function convert(envelope: unknown): { input: MeterEventInput } | { error: AforoError } {
  try {
    return { input: fromCloudEvent(envelope) };
  } catch (error) {
    if (error instanceof AforoError) return { error };
    throw error;
  }
}

export async function cloudEventRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  for (const contentType of [SINGLE, BATCH]) {
    app.addContentTypeParser(contentType, { parseAs: "string" }, (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(new AforoError("malformed-request", "The body is not valid JSON."), undefined);
      }
    });
  }

  app.post(
    "/v1/events",
    {
      config: { scope: "metering:write", rateLimit: "meter", idempotent: false },
      schema: {
        tags: ["Metering"],
        summary: "Record CloudEvents 1.0 (structured single or batch)",
        description: `Content-Type ${SINGLE} answers like /v1/meter (202); ${BATCH} (up to ${MAX_BATCH_EVENTS} events) answers like /v1/meter/batch (200).`,
        consumes: [SINGLE, BATCH],
        body: Type.Unknown({
          description:
            "one structured CloudEvent (specversion 1.0, id, source, type, subject = the customer, data = {metric_id, quantity, …properties}), or a JSON array of them",
        }),
        response: { 200: BatchResultSchema, 202: Type.Ref("AcceptedEvent"), ...problemResponses(415, 422) },
      },
    },
    async (request, reply) => {
      const scope = tenantScope(request);
      const contentType = String(request.headers["content-type"] ?? "")
        .split(";")[0]
        ?.trim()
        .toLowerCase();
      if (contentType === BATCH) {
        if (
          !Array.isArray(request.body) ||
          request.body.length === 0 ||
          request.body.length > MAX_BATCH_EVENTS
        ) {
          throw new AforoError(
            "validation-failed",
            `A CloudEvents batch is a JSON array of 1 to ${MAX_BATCH_EVENTS} events.`,
            {
              errors: [
                { field: "body", message: `must be an array of 1 to ${MAX_BATCH_EVENTS} CloudEvents` },
              ],
            },
          );
        }
        const envelopes: unknown[] = request.body;
        const results = await context.metering.ingestChecked(
          scope,
          envelopes.map((payload) => ({ payload, ...convert(payload) })),
          "cloudevents",
        );
        return reply.code(200).send(batchToApi(results, context.config.publicUrl));
      }
      if (contentType !== SINGLE) {
        throw new AforoError("unsupported-media-type", `Send ${SINGLE} or ${BATCH}.`);
      }
      const event = await context.metering.ingestOne(scope, fromCloudEvent(request.body), "cloudevents");
      return reply.code(202).send(acceptedToApi(event));
    },
  );
}
