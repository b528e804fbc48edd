import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { DecimalInput, IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { billingModes, escrowActions, type Offering, offeringStatuses } from "../domain/offering.ts";
import { oneOf } from "./shared.ts";

const EscrowInput = Type.Object(
  {
    low_balance_threshold: DecimalInput,
    on_empty: oneOf(escrowActions),
  },
  {
    description: 'PREPAID and HYBRID only; PREPAID defaults to {low_balance_threshold: "0", on_empty: BLOCK}',
  },
);

const RatePlanIds = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 50 });
const StatusSchema = oneOf(offeringStatuses, {
  description: "DRAFT → PUBLISHED → ARCHIVED (or DRAFT → ARCHIVED); ARCHIVED is final",
});

const CreateOfferingBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  rate_plan_ids: RatePlanIds,
  billing_mode: oneOf(billingModes),
  trial_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 730, default: 0 })),
  escrow: Type.Optional(EscrowInput),
  initial_credits: Type.Optional(DecimalInput),
  currency: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 10,
      description: "default: the rate plans' currency (they must share one)",
    }),
  ),
  status: Type.Optional(StatusSchema),
});

const UpdateOfferingBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])),
  rate_plan_ids: Type.Optional(RatePlanIds),
  billing_mode: Type.Optional(oneOf(billingModes)),
  trial_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 730 })),
  escrow: Type.Optional(Type.Union([EscrowInput, Type.Null()])),
  initial_credits: Type.Optional(Type.Union([DecimalInput, Type.Null()])),
  currency: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 10 }), Type.Null()])),
  status: Type.Optional(StatusSchema),
});

const OfferingSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("offering"),
    name: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    rate_plan_ids: Type.Array(Type.String()),
    billing_mode: oneOf(billingModes),
    trial_days: Type.Integer(),
    escrow: Type.Union([
      Type.Object({ low_balance_threshold: Type.String(), on_empty: oneOf(escrowActions) }),
      Type.Null(),
    ]),
    initial_credits: Type.Union([
      Type.String({ description: "decimal amount in the offering currency" }),
      Type.Null(),
    ]),
    currency: Type.Union([Type.String(), Type.Null()]),
    status: oneOf(offeringStatuses),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { $id: "Offering" },
);

export function toApi(offering: Offering) {
  return {
    id: offering.id,
    object: "offering" as const,
    name: offering.name,
    description: offering.description,
    rate_plan_ids: offering.ratePlanIds,
    billing_mode: offering.billingMode,
    trial_days: offering.trialDays,
    escrow: offering.escrow,
    initial_credits: offering.initialCredits,
    currency: offering.currency,
    status: offering.status,
    created_at: offering.createdAt.toISOString(),
    updated_at: offering.updatedAt.toISOString(),
  };
}

const tags = ["Pricing"];
const read = { scope: "pricing:read" as const };
const write = { scope: "pricing:write" as const };
const offeringRef = Type.Ref("Offering");

const guardNote =
  "While customers are subscribed, rate plans cannot be removed and the currency and billing mode cannot change (409 resource-in-use). Archived offerings cannot change (409).";

export async function offeringRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(OfferingSchema);

  routes.post(
    "/v1/offerings",
    {
      config: write,
      schema: {
        tags,
        summary: "Create an offering around one or more rate plans",
        description:
          "The rate plans must exist and share one currency. Subscriptions pin the rate plan versions when they start.",
        body: CreateOfferingBody,
        response: { 201: offeringRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const offering = await context.pricing.createOffering(tenantScope(request), request.body);
      return reply.code(201).send(toApi(offering));
    },
  );

  routes.get(
    "/v1/offerings",
    {
      config: read,
      schema: {
        tags,
        summary: "List offerings",
        querystring: Type.Object({ ...PaginationQuery.properties, status: Type.Optional(StatusSchema) }),
        response: { 200: listOf(offeringRef), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await context.pricing.listOfferings(
        tenantScope(request),
        { limit: request.query.limit, startingAfter: request.query.starting_after },
        request.query.status,
      );
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/offerings/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get an offering",
        params: IdParams,
        response: { 200: offeringRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await context.pricing.getOffering(tenantScope(request), request.params.id)),
  );

  const update = {
    config: write,
    schema: {
      tags,
      summary: "Update an offering (only the fields sent)",
      description: guardNote,
      params: IdParams,
      body: UpdateOfferingBody,
      response: { 200: offeringRef, ...problemResponses(404, 409, 422) },
    },
  };
  routes.patch("/v1/offerings/:id", update, async (request) =>
    toApi(await context.pricing.updateOffering(tenantScope(request), request.params.id, request.body)),
  );
  routes.post("/v1/offerings/:id", update, async (request) =>
    toApi(await context.pricing.updateOffering(tenantScope(request), request.params.id, request.body)),
  );

  for (const [action, status] of [
    ["publish", "PUBLISHED"],
    ["archive", "ARCHIVED"],
  ] as const) {
    routes.post(
      `/v1/offerings/:id/${action}`,
      {
        config: write,
        schema: {
          tags,
          summary: `${action === "publish" ? "Publish" : "Archive"} an offering`,
          description: "DRAFT → PUBLISHED → ARCHIVED (or DRAFT → ARCHIVED); repeating an action is a no-op.",
          params: IdParams,
          response: { 200: offeringRef, ...problemResponses(404, 409) },
        },
      },
      async (request) =>
        toApi(await context.pricing.setOfferingStatus(tenantScope(request), request.params.id, status)),
    );
  }
}
