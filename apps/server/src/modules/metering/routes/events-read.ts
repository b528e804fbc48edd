import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import {
  DecimalOutput,
  IdParams,
  listOf,
  PaginationQuery,
  problemResponses,
  Timestamp,
} from "../../../http/schemas.ts";
import { canonicalDecimal } from "../domain/usage-query.ts";
import { type EventFilter, eventFlags, type StoredEvent } from "../store/events.ts";

const tags = ["Metering"];
const read = { scope: "metering:read" as const };
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

const EventSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("event"),
    customer_id: Type.String(),
    metric_id: Type.String({ description: "the billable unit's key" }),
    billable_unit_id: Type.String(),
    event_type: Nullable(Type.String()),
    quantity: DecimalOutput,
    value: Nullable(
      Type.String({
        description:
          "what the unit aggregates: the number (properties[field] or quantity), or the distinct value of a UNIQUE unit; null for COUNT",
      }),
    ),
    properties: Type.Record(Type.String(), Type.Unknown()),
    timestamp: Type.String({ description: "when the event occurred (RFC 3339)" }),
    idempotency_key: Type.String(),
    status: Type.Literal("ACCEPTED", {
      description: "every stored event was accepted (duplicates and rejections are not stored)",
    }),
    flags: Type.Array(Type.String(), { description: "LATE, RECONCILIATION, FILTERED" }),
    source: Type.String({ description: "the same as provenance.source" }),
    received_at: Type.String({ description: "the same as provenance.received_at" }),
    provenance: Type.Object({
      source: Type.String({ description: "api, batch, cloudevents, file, webhook or replay" }),
      received_at: Type.String(),
      validation: Type.Object({
        result: Type.Literal("ACCEPTED"),
        flags: Type.Array(Type.String(), { description: "LATE, RECONCILIATION, FILTERED" }),
      }),
      enrichment: Type.Record(Type.String(), Type.Unknown()),
      estimated_revenue: Nullable(DecimalOutput),
      estimated_cost: Nullable(DecimalOutput),
      counted: Type.Boolean({ description: "whether the event counts towards usage and bills" }),
    }),
  },
  { $id: "Event" },
);

export function eventToApi(event: StoredEvent) {
  const decimalOrNull = (text: string | null) => (text === null ? null : canonicalDecimal(text));
  const receivedAt = new Date(event.received_at).toISOString();
  return {
    id: event.id,
    object: "event" as const,
    customer_id: event.customer_id,
    metric_id: event.metric_key,
    billable_unit_id: event.billable_unit_id,
    event_type: event.event_type,
    quantity: canonicalDecimal(event.quantity),
    value: event.value !== null ? canonicalDecimal(event.value) : event.unique_value,
    properties: event.properties,
    timestamp: new Date(event.occurred_at).toISOString(),
    idempotency_key: event.idempotency_key,
    status: "ACCEPTED" as const,
    flags: event.flags,
    source: event.source,
    received_at: receivedAt,
    provenance: {
      source: event.source,
      received_at: receivedAt,
      validation: { result: "ACCEPTED" as const, flags: event.flags },
      enrichment: event.enrichment,
      estimated_revenue: decimalOrNull(event.estimated_revenue),
      estimated_cost: decimalOrNull(event.estimated_cost),
      counted: event.counted,
    },
  };
}

export async function eventReadRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(EventSchema);

  routes.get(
    "/v1/events",
    {
      config: read,
      schema: {
        tags,
        summary: "List stored events with their provenance, newest first",
        description:
          "Every stored event was ACCEPTED (rejected ones are answered 422 or kept as dead letters). `status` is ACCEPTED for all of them; `flag` narrows to LATE, RECONCILIATION or FILTERED events; `from`/`to` bound occurred_at as [from, to).",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          customer_id: Type.Optional(
            Type.String({ minLength: 1, maxLength: 255, description: "id or external_id" }),
          ),
          metric_id: Type.Optional(
            Type.String({ minLength: 1, maxLength: 100, description: "unit id or key" }),
          ),
          status: Type.Optional(
            Type.Union([Type.Literal("ACCEPTED"), Type.Literal("DUPLICATE"), Type.Literal("REJECTED")], {
              description:
                "ACCEPTED lists every stored event; DUPLICATE and REJECTED events are never stored (a duplicate is answered, a rejection is answered or dead-lettered), so they list nothing",
            }),
          ),
          flag: Type.Optional(Type.Union(eventFlags.map((flag) => Type.Literal(flag)))),
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
        }),
        response: { 200: listOf(Type.Ref("Event")), ...problemResponses() },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const query = request.query;
      const filter: EventFilter = {
        flag: query.flag,
        from: query.from === undefined ? undefined : new Date(query.from),
        to: query.to === undefined ? undefined : new Date(query.to),
      };
      if (query.customer_id !== undefined) {
        // An unknown reference filters on itself and so matches nothing (never another tenant's).
        filter.customerId =
          context.customers.resolveCached(scope, query.customer_id)?.id ?? query.customer_id;
      }
      if (query.metric_id !== undefined) {
        const unit = context.meteringReads.resolveUnit(scope, query.metric_id);
        if (unit) filter.billableUnitId = unit.id;
        else filter.metricKey = query.metric_id;
      }
      if (query.status !== undefined && query.status !== "ACCEPTED") return { data: [], has_more: false };
      const page = await context.meteringReads.listEvents(scope, filter, {
        limit: query.limit,
        startingAfter: query.starting_after,
      });
      return { data: page.data.map(eventToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/events/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a stored event with its provenance",
        params: IdParams,
        response: { 200: Type.Ref("Event"), ...problemResponses(404) },
      },
    },
    async (request) =>
      eventToApi(await context.meteringReads.getEvent(tenantScope(request), request.params.id)),
  );
}
