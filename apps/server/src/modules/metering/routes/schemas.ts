import { Type } from "typebox";
import { DecimalInput } from "../../../http/schemas.ts";

const Reference = Type.String({ minLength: 1, maxLength: 255 });

/** The contract's event, with the SDK's camelCase aliases (customerId, metricName, occurredAt, idempotencyKey). */
export const MeterEventSchema = Type.Object(
  {
    customer_id: Type.Optional(Reference),
    customerId: Type.Optional(Reference),
    api_key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: "a consumer key (ak_…) instead of customer_id",
      }),
    ),
    metric_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "billable unit id or key" }),
    ),
    metricName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    metricId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    quantity: Type.Optional(DecimalInput),
    event_type: Type.Optional(Type.String({ maxLength: 100 })),
    eventType: Type.Optional(Type.String({ maxLength: 100 })),
    timestamp: Type.Optional(Type.String({ maxLength: 40, description: "RFC 3339; defaults to now" })),
    occurredAt: Type.Optional(Type.String({ maxLength: 40 })),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 100 })),
  },
  { $id: "MeterEvent" },
);

export const AcceptedEventSchema = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([Type.Literal("ACCEPTED"), Type.Literal("DUPLICATE")]),
    flags: Type.Optional(Type.Array(Type.String(), { description: "LATE, RECONCILIATION, FILTERED" })),
  },
  { $id: "AcceptedEvent" },
);

export const EventErrorSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
});

export const BatchResultSchema = Type.Object({
  results: Type.Array(
    Type.Object({
      index: Type.Integer(),
      id: Type.Union([Type.String(), Type.Null()], {
        description: "null for a REJECTED event: nothing was stored",
      }),
      status: Type.Union([Type.Literal("ACCEPTED"), Type.Literal("DUPLICATE"), Type.Literal("REJECTED")]),
      flags: Type.Optional(Type.Array(Type.String())),
      error: Type.Optional(EventErrorSchema),
    }),
  ),
});

export const MAX_BATCH_EVENTS = 1000;
