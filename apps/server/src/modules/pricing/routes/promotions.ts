import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { tenantScope } from "../../../http/auth.ts";
import { DecimalInput, IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import { type Promotion, promotionDurations, promotionIsRedeemable } from "../domain/promotion.ts";
import { oneOf } from "./shared.ts";

const CreatePromotionBody = Type.Object({
  code: Type.String({
    pattern: "^[A-Za-z0-9_-]{1,64}$",
    description: "unique per tenant and mode, ignoring case",
  }),
  percent_off: Type.Optional(DecimalInput),
  amount_off: Type.Optional(DecimalInput),
  currency: Type.Optional(
    Type.String({ minLength: 1, maxLength: 10, description: "required with amount_off" }),
  ),
  duration: oneOf(promotionDurations),
  duration_in_periods: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1200,
      description: "billing periods; required iff duration is repeating",
    }),
  ),
  expires_at: Type.Optional(
    Type.String({ format: "date-time", description: "last moment is just before this instant" }),
  ),
  max_redemptions: Type.Optional(Type.Integer({ minimum: 1 })),
  offering_ids: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
      maxItems: 100,
      description: "offerings the code applies to; empty or absent: all",
    }),
  ),
});

const PromotionSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("promotion"),
    code: Type.String(),
    percent_off: Type.Union([Type.String(), Type.Null()]),
    amount_off: Type.Union([Type.String({ description: "decimal amount in currency" }), Type.Null()]),
    currency: Type.Union([Type.String(), Type.Null()]),
    duration: oneOf(promotionDurations),
    duration_in_periods: Type.Union([Type.Integer(), Type.Null()]),
    expires_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
    max_redemptions: Type.Union([Type.Integer(), Type.Null()]),
    offering_ids: Type.Array(Type.String()),
    status: oneOf(["ACTIVE", "ARCHIVED"] as const),
    times_redeemed: Type.Integer(),
    redeemable: Type.Boolean({ description: "active, not expired and not exhausted, now" }),
    created_at: Type.String({ format: "date-time" }),
    archived_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  },
  { $id: "Promotion" },
);

export function toApi(promotion: Promotion, timesRedeemed: number, now: Date) {
  return {
    id: promotion.id,
    object: "promotion" as const,
    code: promotion.code,
    percent_off: promotion.percentOff,
    amount_off: promotion.amountOff,
    currency: promotion.currency,
    duration: promotion.duration,
    duration_in_periods: promotion.durationInPeriods,
    expires_at: promotion.expiresAt?.toISOString() ?? null,
    max_redemptions: promotion.maxRedemptions,
    offering_ids: promotion.offeringIds,
    status: promotion.status,
    times_redeemed: timesRedeemed,
    redeemable: promotionIsRedeemable(promotion, now, timesRedeemed),
    created_at: promotion.createdAt.toISOString(),
    archived_at: promotion.archivedAt?.toISOString() ?? null,
  };
}

const tags = ["Pricing"];
const read = { scope: "pricing:read" as const };
const write = { scope: "pricing:write" as const };
const promotionRef = Type.Ref("Promotion");

export async function promotionRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(PromotionSchema);
  const present = async (scope: ReturnType<typeof tenantScope>, promotion: Promotion) =>
    toApi(promotion, await context.pricing.timesRedeemed(scope, promotion.id), context.clock.now());

  routes.post(
    "/v1/promotions",
    {
      config: write,
      schema: {
        tags,
        summary: "Create a promotion code",
        description:
          "Exactly one of percent_off (0 < p ≤ 100) and amount_off (a decimal amount, with currency). A code already used in this tenant and mode, in any case, answers 409.",
        body: CreatePromotionBody,
        response: { 201: promotionRef, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const scope = tenantScope(request);
      const promotion = await context.pricing.createPromotion(scope, request.body);
      return reply.code(201).send(await present(scope, promotion));
    },
  );

  routes.get(
    "/v1/promotions",
    {
      config: read,
      schema: {
        tags,
        summary: "List promotions",
        querystring: PaginationQuery,
        response: { 200: listOf(promotionRef), ...problemResponses() },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const page = await context.pricing.listPromotions(scope, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: await Promise.all(page.data.map((p) => present(scope, p))), has_more: page.has_more };
    },
  );

  routes.get(
    "/v1/promotions/:id",
    {
      config: read,
      schema: {
        tags,
        summary: "Get a promotion",
        params: IdParams,
        response: { 200: promotionRef, ...problemResponses(404) },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      return present(scope, await context.pricing.getPromotion(scope, request.params.id));
    },
  );

  routes.post(
    "/v1/promotions/:id/archive",
    {
      config: write,
      schema: {
        tags,
        summary: "Archive a promotion (final; the code stays reserved)",
        params: IdParams,
        response: { 200: promotionRef, ...problemResponses(404) },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      return present(scope, await context.pricing.archivePromotion(scope, request.params.id));
    },
  );
}
