import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { WEBHOOK_EVENT_TYPES } from "../publisher.ts";
import {
  DeliveryStatusSchema,
  Description,
  deliveryToApi,
  EndpointUrl,
  EndpointWithSecretSchema,
  Events,
  endpointToApi,
  WebhookDeliverySchema,
  WebhookEndpointSchema,
} from "./schemas.ts";

const tags = ["Webhooks"];
const read = { scope: "webhooks:read" as const };
const write = { scope: "webhooks:write" as const };

const SIGNING = `Deliveries are POSTed as JSON {type, timestamp, data} and signed per Standard Webhooks (headers webhook-id, webhook-timestamp, webhook-signature; verify with any Standard Webhooks library and the endpoint's secret). A 2xx answer is success; anything else, or no answer within the timeout, is retried with exponential backoff, then the delivery is failed. Event types: ${WEBHOOK_EVENT_TYPES.join(", ")}.`;

export async function webhookRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(WebhookEndpointSchema);
  app.addSchema(WebhookDeliverySchema);
  const webhooks = context.webhooks;

  routes.post(
    "/v1/webhook_endpoints",
    {
      config: write,
      schema: {
        tags,
        summary: "Register a webhook endpoint",
        description: `${SIGNING} The signing secret is in this response only (and in rotate_secret's).`,
        body: Type.Object({
          url: EndpointUrl,
          events: Events,
          description: Type.Optional(Description),
          enabled: Type.Optional(Type.Boolean()),
        }),
        response: { 201: EndpointWithSecretSchema, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const created = await webhooks.create(tenantScope(request), request.body);
      return reply.code(201).send({ ...endpointToApi(created.endpoint), secret: created.secret });
    },
  );

  routes.get(
    "/v1/webhook_endpoints",
    {
      config: read,
      schema: {
        tags,
        summary: "List webhook endpoints (secrets are never shown again)",
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("WebhookEndpoint")), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await webhooks.list(tenantScope(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(endpointToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/webhook_endpoints/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a webhook endpoint",
        params: IdParams,
        response: { 200: Type.Ref("WebhookEndpoint"), ...problemResponses(404) },
      },
    },
    async (request) => endpointToApi(await webhooks.get(tenantScope(request), request.params.id)),
  );

  routes.patch(
    "/v1/webhook_endpoints/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "Change a webhook endpoint's URL, events, description or enabled state",
        description:
          "A disabled endpoint receives nothing: new events skip it and its pending deliveries fail at their next attempt (they can be replayed once it is enabled again).",
        params: IdParams,
        body: Type.Object(
          {
            url: Type.Optional(EndpointUrl),
            events: Type.Optional(Events),
            description: Type.Optional(Description),
            enabled: Type.Optional(Type.Boolean()),
          },
          { minProperties: 1 },
        ),
        response: { 200: Type.Ref("WebhookEndpoint"), ...problemResponses(404, 422) },
      },
    },
    async (request) =>
      endpointToApi(await webhooks.update(tenantScope(request), request.params.id, request.body)),
  );

  routes.delete(
    "/v1/webhook_endpoints/:id",
    {
      config: write,
      schema: {
        tags,
        summary: "Delete a webhook endpoint with its delivery log",
        params: IdParams,
        response: {
          200: Type.Object({
            id: Type.String(),
            object: Type.Literal("webhook_endpoint"),
            deleted: Type.Literal(true),
          }),
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      await webhooks.delete(tenantScope(request), request.params.id);
      return { id: request.params.id, object: "webhook_endpoint" as const, deleted: true as const };
    },
  );

  routes.post(
    "/v1/webhook_endpoints/:id/rotate_secret",
    {
      config: write,
      schema: {
        tags,
        summary: "Issue a new signing secret; the previous one keeps signing for 24 hours",
        description:
          "During the overlap every delivery carries two signatures (one per secret) in webhook-signature, so a receiver verifying with either secret accepts it.",
        params: IdParams,
        response: { 200: EndpointWithSecretSchema, ...problemResponses(404) },
      },
    },
    async (request) => {
      const rotated = await webhooks.rotateSecret(tenantScope(request), request.params.id);
      return { ...endpointToApi(rotated.endpoint), secret: rotated.secret };
    },
  );

  routes.get(
    "/v1/webhook_endpoints/:id/deliveries",
    {
      config: read,
      schema: {
        tags,
        summary: "The endpoint's delivery log, newest first, with every attempt",
        params: IdParams,
        querystring: Type.Intersect([
          PaginationQuery,
          Type.Object({
            status: Type.Optional(DeliveryStatusSchema),
            event_type: Type.Optional(Type.String({ maxLength: 100 })),
          }),
        ]),
        response: { 200: listOf(Type.Ref("WebhookDelivery")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const page = await webhooks.deliveries(
        tenantScope(request),
        request.params.id,
        { status: request.query.status, eventType: request.query.event_type },
        { limit: request.query.limit, startingAfter: request.query.starting_after },
      );
      return { data: page.data.map(deliveryToApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/webhook_deliveries/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a delivery with its attempts",
        params: IdParams,
        response: { 200: Type.Ref("WebhookDelivery"), ...problemResponses(404) },
      },
    },
    async (request) => deliveryToApi(await webhooks.delivery(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/webhook_deliveries/:id/replay",
    {
      config: write,
      schema: {
        tags,
        summary: "Send a delivery again now, as a new attempt in its log",
        description:
          "Answers once the attempt is made, with the delivery and its attempts. A success makes it succeeded; a failure leaves scheduled retries in place, or makes it failed. 409 while the delivery is being sent, or when its endpoint is disabled.",
        params: IdParams,
        response: { 200: Type.Ref("WebhookDelivery"), ...problemResponses(404, 409) },
      },
    },
    async (request) => deliveryToApi(await webhooks.replay(tenantScope(request), request.params.id)),
  );
}
