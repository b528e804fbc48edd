import { pricingModels } from "@aforo/core";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { type Static, Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { DecimalInput, IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import {
  billingIntervals,
  meteredResets,
  overagePolicies,
  type PlanItemInput,
  type RatePlanInput,
  type RatePlanVersion,
} from "../domain/rate-plan.ts";
import type { PricePreviewResult } from "../service.ts";
import { oneOf } from "./shared.ts";

const roundingModes = ["half_up", "half_even", "down", "up"] as const;

const TierInput = Type.Object({
  up_to: Type.Optional(
    Type.Union([DecimalInput, Type.Null()], { description: "inclusive; null on the last tier" }),
  ),
  unit_price: DecimalInput,
  flat_price: Type.Optional(DecimalInput),
});

const PlanItemInputSchema = Type.Object(
  {
    model: oneOf(pricingModels),
    billable_unit: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], {
        description: "billable unit key or id (not on FLAT_RATE)",
      }),
    ),
    unit_price: Type.Optional(DecimalInput),
    flat_amount: Type.Optional(DecimalInput),
    timing: Type.Optional(oneOf(["in_advance", "in_arrears"] as const)),
    percent: Type.Optional(DecimalInput),
    min_fee: Type.Optional(DecimalInput),
    included: Type.Optional(DecimalInput),
    overage_price: Type.Optional(DecimalInput),
    block_size: Type.Optional(DecimalInput),
    tiers: Type.Optional(Type.Array(TierInput, { maxItems: 100 })),
    included_free: Type.Optional(DecimalInput),
    cap: Type.Optional(DecimalInput),
    rollover: Type.Optional(Type.Object({ max: DecimalInput })),
  },
  {
    description:
      "PER_UNIT {billable_unit, unit_price}; FLAT_RATE {flat_amount, timing}; PERCENTAGE {billable_unit (a SUM unit), percent, min_fee?}; " +
      "INCLUDED_QUOTA {billable_unit, included, overage_price, block_size?}; GRADUATED and VOLUME {billable_unit, tiers}. " +
      "Usage items may add included_free, cap, rollover {max}. The model's rules are checked after the schema (422 with field paths).",
  },
);

const Feature = Type.String({ minLength: 1, maxLength: 100, pattern: "^[A-Za-z0-9_.:-]+$" });

const EntitlementInputSchema = Type.Union([
  Type.Object({ feature: Feature, type: Type.Literal("boolean") }),
  Type.Object({
    feature: Feature,
    type: Type.Literal("metered"),
    billable_unit: Type.String({ minLength: 1, maxLength: 100 }),
    limit: DecimalInput,
    reset: Type.Optional(oneOf(meteredResets, { description: "default billing_period" })),
    overage: Type.Optional(oneOf(overagePolicies, { description: "default block" })),
  }),
  Type.Object({
    feature: Feature,
    type: Type.Literal("rate_limit"),
    limit: Type.Integer({ minimum: 1 }),
    per_seconds: Type.Integer({ minimum: 1 }),
    burst: Type.Optional(Type.Integer({ minimum: 1, description: "default: limit" })),
  }),
]);

const BillingPeriodSchema = Type.Object({
  interval: oneOf(billingIntervals),
  count: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
});

const MoneyInput = Type.Union([DecimalInput, Type.Null()], {
  description: 'a decimal amount in the plan currency ("49.00"), like prices',
});

const RatePlanBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  currency: Type.String({ minLength: 1, maxLength: 10, description: "ISO 4217 (USD)" }),
  billing_period: Type.Optional(
    Type.Object(BillingPeriodSchema.properties, { default: { interval: "month", count: 1 } }),
  ),
  items: Type.Array(PlanItemInputSchema, { maxItems: 100 }),
  entitlements: Type.Optional(Type.Array(EntitlementInputSchema, { maxItems: 200 })),
  minimum_commitment: Type.Optional(MoneyInput),
  maximum_spend: Type.Optional(MoneyInput),
  rounding: Type.Optional(
    oneOf(roundingModes, { description: "how each line is rounded to minor units; default half_up" }),
  ),
});

const TierOutput = Type.Object({
  up_to: Type.Union([Type.String(), Type.Null()]),
  unit_price: Type.String(),
  flat_price: Type.Optional(Type.String()),
});

const PlanItemOutput = Type.Object({
  model: Type.String(),
  billable_unit: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "the unit's key" })),
  billable_unit_id: Type.Optional(Type.String()),
  unit_price: Type.Optional(Type.String()),
  flat_amount: Type.Optional(Type.String()),
  timing: Type.Optional(Type.String()),
  percent: Type.Optional(Type.String()),
  min_fee: Type.Optional(Type.String()),
  included: Type.Optional(Type.String()),
  overage_price: Type.Optional(Type.String()),
  block_size: Type.Optional(Type.String()),
  tiers: Type.Optional(Type.Array(TierOutput)),
  included_free: Type.Optional(Type.String()),
  cap: Type.Optional(Type.String()),
  rollover: Type.Optional(Type.Object({ max: Type.String() })),
});

const EntitlementOutput = Type.Object({
  feature: Type.String(),
  type: oneOf(["boolean", "metered", "rate_limit"] as const),
  billable_unit: Type.Optional(Type.String()),
  billable_unit_id: Type.Optional(Type.String()),
  limit: Type.Optional(
    Type.Union([Type.String(), Type.Integer()], {
      description: "metered: decimal string; rate_limit: requests",
    }),
  ),
  reset: Type.Optional(Type.String()),
  overage: Type.Optional(Type.String()),
  per_seconds: Type.Optional(Type.Integer()),
  burst: Type.Optional(Type.Integer()),
});

const RatePlanSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("rate_plan"),
    version: Type.Integer({ description: "the version this document shows" }),
    latest_version: Type.Integer(),
    name: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    currency: Type.String(),
    billing_period: BillingPeriodSchema,
    items: Type.Array(PlanItemOutput),
    entitlements: Type.Array(EntitlementOutput),
    minimum_commitment: Type.Union([Type.String(), Type.Null()]),
    maximum_spend: Type.Union([Type.String(), Type.Null()]),
    rounding: Type.String(),
    status: Type.String(),
    created_at: Type.String({ format: "date-time" }),
    version_created_at: Type.String({ format: "date-time" }),
  },
  { $id: "RatePlan" },
);

const PreviewTier = Type.Object({
  up_to: Type.Union([Type.String(), Type.Null()]),
  quantity: Type.String(),
  unit_price: Type.String(),
  flat_price: Type.Optional(Type.String()),
  amount_decimal: Type.String(),
});

const PreviewLineSchema = Type.Object({
  billable_unit: Type.Union([Type.String(), Type.Null()]),
  billable_unit_id: Type.Union([Type.String(), Type.Null()]),
  model: Type.String({
    description:
      "a pricing model, or MINIMUM_COMMITMENT (true-up) / MAXIMUM_SPEND (negative cap) for plan-level lines",
  }),
  quantity: Type.String(),
  billable_quantity: Type.String(),
  included_quantity: Type.Optional(Type.String()),
  over_cap_quantity: Type.Optional(Type.String()),
  unit_price: Type.Optional(Type.String()),
  amount_decimal: Type.String({ description: "exact, before rounding" }),
  amount: Type.Integer({ description: "minor units of the currency, rounded once" }),
  tiers: Type.Optional(Type.Array(PreviewTier)),
  timing: Type.Optional(Type.String()),
  description: Type.String(),
});

const PricePreviewSchema = Type.Object({
  object: Type.Literal("price_preview"),
  rate_plan_id: Type.String(),
  version: Type.Integer(),
  currency: Type.String(),
  lines: Type.Array(PreviewLineSchema),
  total: Type.Integer({ description: "sum of the lines' amount, in minor units" }),
});

const VersionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  version: Type.Integer({ minimum: 1 }),
});

const VersionsQuery = Type.Object({
  limit: PaginationQuery.properties.limit,
  starting_after: Type.Optional(Type.Integer({ minimum: 1, description: "a version number" })),
});

export function toApi(plan: RatePlanVersion) {
  const definition = plan.definition;
  return {
    id: plan.id,
    object: "rate_plan" as const,
    version: plan.version,
    latest_version: plan.latestVersion,
    name: definition.name,
    description: definition.description,
    currency: definition.currency,
    billing_period: definition.billing_period,
    // Stored items hold decimals as strings only (normalizeItem), which is what the schema says.
    items: definition.items as Static<typeof PlanItemOutput>[],
    entitlements: definition.entitlements,
    minimum_commitment: definition.minimum_commitment,
    maximum_spend: definition.maximum_spend,
    rounding: definition.rounding,
    status: plan.status,
    created_at: plan.createdAt.toISOString(),
    version_created_at: plan.versionCreatedAt.toISOString(),
  };
}

export function previewToApi(preview: PricePreviewResult) {
  return {
    object: "price_preview" as const,
    rate_plan_id: preview.rate_plan_id,
    version: preview.version,
    currency: preview.currency,
    lines: preview.lines,
    total: preview.total,
  };
}

type RatePlanBodyType = Static<typeof RatePlanBody>;

function fromApi(body: RatePlanBodyType): RatePlanInput {
  return {
    name: body.name,
    description: body.description,
    currency: body.currency,
    billing_period: body.billing_period ?? { interval: "month", count: 1 },
    items: body.items as PlanItemInput[],
    entitlements: body.entitlements,
    minimum_commitment: body.minimum_commitment ?? undefined,
    maximum_spend: body.maximum_spend ?? undefined,
    rounding: body.rounding,
  };
}

const tags = ["Pricing"];
const read = { scope: "pricing:read" as const };
const write = { scope: "pricing:write" as const };
const ratePlanRef = Type.Ref("RatePlan");

export async function ratePlanRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(RatePlanSchema);

  routes.post(
    "/v1/rate_plans",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a rate plan (version 1)",
        description:
          "Items name their billable unit by key or id; the version stores both. Each later change is a new immutable version (POST /v1/rate_plans/{id}/versions). minimum_commitment and maximum_spend are decimal amounts in the plan currency.",
        body: RatePlanBody,
        response: { 201: ratePlanRef, ...problemResponses(422) },
      },
    },
    async (request, reply) => {
      const plan = await context.pricing.createRatePlan(tenantScope(request), fromApi(request.body));
      return reply.code(201).send(toApi(plan));
    },
  );

  routes.get(
    "/v1/rate_plans",
    {
      config: read,
      schema: {
        tags,
        summary: "List rate plans, each at its latest version",
        querystring: PaginationQuery,
        response: { 200: listOf(ratePlanRef), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await context.pricing.listRatePlans(tenantScope(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/rate_plans/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a rate plan at its latest version",
        params: IdParams,
        response: { 200: ratePlanRef, ...problemResponses(404) },
      },
    },
    async (request) => toApi(await context.pricing.getRatePlan(tenantScope(request), request.params.id)),
  );

  routes.post(
    "/v1/rate_plans/:id/versions",
    {
      config: write,
      schema: {
        tags,
        summary: "Make version n+1 from a whole new definition",
        description: "Earlier versions never change: subscriptions pinned to them keep their prices.",
        params: IdParams,
        body: RatePlanBody,
        response: { 201: ratePlanRef, ...problemResponses(404, 422) },
      },
    },
    async (request, reply) => {
      const plan = await context.pricing.createRatePlanVersion(
        tenantScope(request),
        request.params.id,
        fromApi(request.body),
      );
      return reply.code(201).send(toApi(plan));
    },
  );

  routes.get(
    "/v1/rate_plans/:id/versions",
    {
      config: read,
      schema: {
        tags,
        summary: "List a rate plan's versions, newest first",
        params: IdParams,
        querystring: VersionsQuery,
        response: { 200: listOf(ratePlanRef), ...problemResponses(404) },
      },
    },
    async (request) => {
      const page = await context.pricing.listRatePlanVersions(tenantScope(request), request.params.id, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/rate_plans/:id/versions/:version",
    {
      config: read,
      schema: {
        tags,
        summary: "Get one version of a rate plan",
        params: VersionParams,
        response: { 200: ratePlanRef, ...problemResponses(404) },
      },
    },
    async (request) =>
      toApi(
        await context.pricing.getRatePlan(tenantScope(request), request.params.id, request.params.version),
      ),
  );

  routes.post(
    "/v1/rate_plans/:id/price_preview",
    {
      config: { ...read, idempotent: false },
      schema: {
        tags,
        summary: "Price quantities against a version with the billing engine",
        description:
          "Quantities are keyed by billable unit key (or id); units the plan prices but the request omits rate at 0. FLAT_RATE items always appear. " +
          "When the plan has a minimum_commitment or maximum_spend, an extra line with model MINIMUM_COMMITMENT (positive true-up) or MAXIMUM_SPEND (negative) adjusts the total.",
        params: IdParams,
        body: Type.Object({
          quantities: Type.Optional(
            Type.Record(Type.String({ maxLength: 100 }), DecimalInput, { maxProperties: 200, default: {} }),
          ),
          version: Type.Optional(Type.Integer({ minimum: 1, description: "default: the latest" })),
        }),
        response: { 200: PricePreviewSchema, ...problemResponses(404, 422) },
      },
    },
    async (request) => {
      const preview = await context.pricing.previewPrice(
        tenantScope(request),
        request.params.id,
        request.body.quantities ?? {},
        request.body.version,
      );
      return previewToApi(preview);
    },
  );
}
