import { type TSchema, Type } from "typebox";
import { Timestamp } from "../../../http/schemas.ts";
import { ALL_EVENTS, deliveryStatuses, type WebhookAttempt, type WebhookEndpoint } from "../domain.ts";
import { WEBHOOK_EVENT_TYPES } from "../publisher.ts";
import type { DeliveryView } from "../service.ts";

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** An event type, or "*" for all of them (including types added later). */
export const EventTypeSchema = Type.Union(
  [ALL_EVENTS, ...WEBHOOK_EVENT_TYPES].map((type) => Type.Literal(type)),
  { description: `one of ${WEBHOOK_EVENT_TYPES.join(", ")}, or "*" for every event` },
);
export const Events = Type.Array(EventTypeSchema, { minItems: 1, maxItems: 50 });
export const EndpointUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: "an absolute http or https URL",
});
export const Description = Nullable(Type.String({ maxLength: 500 }));
export const DeliveryStatusSchema = Type.Union(deliveryStatuses.map((status) => Type.Literal(status)));

export const WebhookEndpointSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("webhook_endpoint"),
    url: Type.String(),
    description: Nullable(Type.String()),
    events: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    status: Type.Union([Type.Literal("enabled"), Type.Literal("disabled")]),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "WebhookEndpoint" },
);

export const EndpointWithSecretSchema = Type.Intersect([
  Type.Ref("WebhookEndpoint"),
  Type.Object({
    secret: Type.String({
      description:
        "the signing secret (whsec_…, Standard Webhooks), shown only in this response; verify deliveries with it",
    }),
  }),
]);

const AttemptSchema = Type.Object({
  id: Type.String(),
  trigger: Type.Union([Type.Literal("automatic"), Type.Literal("replay")]),
  succeeded: Type.Boolean(),
  status_code: Nullable(Type.Integer()),
  response_body: Nullable(Type.String({ description: "the first 1,000 characters of the answer" })),
  duration_ms: Type.Integer(),
  error: Nullable(Type.String({ description: "why no answer came (refused, timeout, …)" })),
  attempted_at: Timestamp,
});

export const WebhookDeliverySchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("webhook_delivery"),
    endpoint_id: Type.String(),
    event_id: Type.String({ description: "the message id, sent as webhook-id" }),
    event_type: Type.String(),
    status: DeliveryStatusSchema,
    attempt_count: Type.Integer(),
    next_attempt_at: Nullable(Timestamp),
    last_attempt_at: Nullable(Timestamp),
    last_status_code: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    payload: Nullable(
      Type.Object({}, { additionalProperties: true, description: "the body sent: {type, timestamp, data}" }),
    ),
    attempts: Type.Array(AttemptSchema),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "WebhookDelivery" },
);

export function endpointToApi(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    object: "webhook_endpoint" as const,
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    enabled: endpoint.enabled,
    status: endpoint.enabled ? ("enabled" as const) : ("disabled" as const),
    created_at: endpoint.createdAt.toISOString(),
    updated_at: endpoint.updatedAt.toISOString(),
  };
}

const iso = (at: Date | null) => (at === null ? null : at.toISOString());

function attemptToApi(attempt: WebhookAttempt) {
  return {
    id: attempt.id,
    trigger: attempt.trigger,
    succeeded: attempt.succeeded,
    status_code: attempt.statusCode,
    response_body: attempt.responseBody,
    duration_ms: attempt.durationMs,
    error: attempt.error,
    attempted_at: attempt.attemptedAt.toISOString(),
  };
}

export function deliveryToApi({ delivery, attempts, event }: DeliveryView) {
  return {
    id: delivery.id,
    object: "webhook_delivery" as const,
    endpoint_id: delivery.endpointId,
    event_id: delivery.eventId,
    event_type: delivery.eventType,
    status: delivery.status,
    attempt_count: delivery.attemptCount,
    next_attempt_at: iso(delivery.nextAttemptAt),
    last_attempt_at: iso(delivery.lastAttemptAt),
    last_status_code: delivery.lastStatusCode,
    last_error: delivery.lastError,
    payload: event ? (JSON.parse(event.payload) as Record<string, unknown>) : null,
    attempts: attempts.map(attemptToApi),
    created_at: delivery.createdAt.toISOString(),
    updated_at: delivery.updatedAt.toISOString(),
  };
}
