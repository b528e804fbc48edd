import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { toApi as keyToApi } from "../../api-keys/routes/index.ts";
import {
  CancelBody,
  ChangePlanBody,
  ConsumerKeySchema,
  CreateKeyBody,
  CreateSubscriptionBody,
  PhaseSchema,
  phaseToApi,
  StatusSchema,
  SubscriptionSchema,
  toApi,
} from "./schemas.ts";

const tags = ["Subscriptions"];
const read = { scope: "billing:read" as const };
const write = { scope: "billing:write" as const };
const subscriptionRef = Type.Ref("Subscription");
const IssuedKeySchema = Type.Intersect([
  Type.Ref("ConsumerKey"),
  Type.Object({ key: Type.String({ description: "the secret (ak_…), shown only in this response" }) }),
]);

/** Subscriptions: `billing:read` to read, `billing:write` to subscribe and act. */
export async function subscriptionRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  const subscriptions = context.subscriptions;
  app.addSchema(SubscriptionSchema);
  app.addSchema(PhaseSchema);
  app.addSchema(ConsumerKeySchema);

  routes.post(
    "/v1/subscriptions",
    {
      config: write,
      schema: {
        tags,
        summary: "Subscribe a customer to a published offering",
        description:
          "Pins the latest version of each of the offering's rate plans; the billing period and currency come from the first. A future `start_at` waits in CREATED; otherwise the offering's trial (TRIALING) or ACTIVE; a past `start_at` is ACTIVE from then without a trial (the bill run invoices the past periods). 422 for an unknown or archived customer (`unknown-customer`), an offering that is not PUBLISHED, or a promotion code that cannot be redeemed.",
        body: CreateSubscriptionBody,
        response: { 201: subscriptionRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const subscription = await subscriptions.create(tenantScope(request), {
        customerId: body.customer_id,
        offeringId: body.offering_id,
        startAt: body.start_at === undefined ? undefined : new Date(body.start_at),
        billingAnchorDay: body.billing_anchor_day,
        promotionCode: body.promotion_code,
        priceOverrides: body.price_overrides,
        metadata: body.metadata,
      });
      return reply.code(201).send(toApi(subscription));
    },
  );

  routes.get(
    "/v1/subscriptions",
    {
      config: read,
      schema: {
        tags,
        summary: "List subscriptions, newest first",
        querystring: Type.Object({
          ...PaginationQuery.properties,
          customer_id: Type.Optional(
            Type.String({ minLength: 1, maxLength: 100, description: "the customer's id or external_id" }),
          ),
          status: Type.Optional(StatusSchema),
        }),
        response: { 200: listOf(subscriptionRef), ...problemResponses() },
      },
    },
    async (request) => {
      const query = request.query;
      const page = await subscriptions.list(
        tenantScope(request),
        { customerId: query.customer_id, status: query.status },
        { limit: query.limit, startingAfter: query.starting_after },
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/subscriptions/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a subscription",
        params: IdParams,
        response: { 200: subscriptionRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await subscriptions.get(tenantScope(request), request.params.id)),
  );

  routes.get(
    "/v1/subscriptions/:id/phases",
    {
      config: read,
      schema: {
        tags,
        summary: "The subscription's phase history, oldest first",
        description:
          "One immutable row per status or plan change, from `started_at` until the next one began (`ended_at`). Plan changes carry what proration needs: the period, the previous plan and `fraction_remaining`.",
        params: IdParams,
        response: { 200: listOf(Type.Ref("SubscriptionPhase")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const phases = await subscriptions.phases(tenantScope(request), request.params.id);
      return { data: phases.map(phaseToApi), has_more: false };
    },
  );

  const conflicts = problemResponses(404, 409);
  // These bodies are all optional: a POST without one (or without a content type) means `{}`.
  const optionalBody = async (request: FastifyRequest) => {
    request.body ??= {};
  };

  routes.post(
    "/v1/subscriptions/:id/cancel",
    {
      config: write,
      schema: {
        tags,
        summary: "Cancel now, or at the end of the current period",
        description:
          "`at_period_end: false` (default): CANCELLED now and its consumer keys revoked. `true`: EXPIRING_SOON now, EXPIRED when the current period ends. An ended subscription answers 409.",
        params: IdParams,
        body: CancelBody,
        response: { 200: subscriptionRef, ...conflicts },
      },
      preValidation: optionalBody,
    },
    async (request) =>
      toApi(
        await subscriptions.cancel(tenantScope(request), request.params.id, {
          atPeriodEnd: request.body.at_period_end ?? false,
        }),
      ),
  );

  routes.post(
    "/v1/subscriptions/:id/pause",
    {
      config: write,
      schema: {
        tags,
        summary: "Pause a TRIALING or ACTIVE subscription",
        params: IdParams,
        response: { 200: subscriptionRef, ...conflicts },
      },
    },
    async (request) => toApi(await subscriptions.pause(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/subscriptions/:id/resume",
    {
      config: write,
      schema: {
        tags,
        summary: "Resume a PAUSED subscription, or withdraw a scheduled cancellation (EXPIRING_SOON)",
        description: "Both become ACTIVE; a trial cut short by the pause converts now.",
        params: IdParams,
        response: { 200: subscriptionRef, ...conflicts },
      },
    },
    async (request) => toApi(await subscriptions.resume(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/subscriptions/:id/change_plan",
    {
      config: write,
      schema: {
        tags,
        summary: "Move to another published offering now (prorated)",
        description:
          "Pins the latest versions of the new offering's rate plans now and keeps the billing period; the new phase records `fraction_remaining` of the current period for the proration lines. The offering must be PUBLISHED and bill in the same currency (422).",
        params: IdParams,
        body: ChangePlanBody,
        response: { 200: subscriptionRef, ...problemResponses(404, 409, 422) },
      },
    },
    async (request) =>
      toApi(
        await subscriptions.changePlan(tenantScope(request), request.params.id, request.body.offering_id),
      ),
  );

  routes.post(
    "/v1/subscriptions/:id/api_keys",
    {
      config: write,
      schema: {
        tags,
        summary: "Issue a consumer key (ak_…) bound to the subscription",
        description:
          "Only while the subscription is TRIALING, ACTIVE, PAST_DUE or EXPIRING_SOON (409 otherwise). Revoked automatically when the subscription ends; rotate with `POST /v1/api_keys/{id}/rotate`.",
        params: IdParams,
        body: CreateKeyBody,
        response: { 201: IssuedKeySchema, ...conflicts },
      },
      preValidation: optionalBody,
    },
    async (request, reply) => {
      const issued = await subscriptions.createConsumerKey(tenantScope(request), request.params.id, {
        name: request.body.name,
      });
      return reply.code(201).send({ ...keyToApi(issued.record, context.clock.now()), key: issued.secret });
    },
  );

  routes.get(
    "/v1/subscriptions/:id/api_keys",
    {
      config: read,
      schema: {
        tags,
        summary: "The subscription's consumer keys (secrets are never shown again)",
        params: IdParams,
        response: { 200: listOf(Type.Ref("ConsumerKey")), ...problemResponses(404) },
      },
    },
    async (request) => {
      const keys = await subscriptions.listConsumerKeys(tenantScope(request), request.params.id);
      const now = context.clock.now();
      return { data: keys.map((key) => keyToApi(key, now)), has_more: false };
    },
  );
}
