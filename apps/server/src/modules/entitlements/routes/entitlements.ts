import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { fetchPage } from "../../../db/pagination.ts";
import { tenantScope } from "../../../http/auth.ts";
import { listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";

const EntitlementSchema = Type.Object({
  feature: Type.String(),
  type: Type.Union([Type.Literal("boolean"), Type.Literal("metered"), Type.Literal("rate_limit")]),
  enabled: Type.Boolean(),
  limit: Type.Union([Type.Number(), Type.Null()]),
  used: Type.Union([Type.Number(), Type.Null()]),
  remaining: Type.Union([Type.Number(), Type.Null()]),
  reset_at: Type.Union([Type.String(), Type.Null()]),
  reset: Type.Union([Type.String(), Type.Null()]),
  overage: Type.Union([Type.String(), Type.Null()]),
  billable_unit: Type.Union([Type.String(), Type.Null()]),
});

const AuditSettingsSchema = Type.Object({
  sample_rate: Type.Number({ minimum: 0, maximum: 1 }),
  customer_ids: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 1000 }),
});

const DecisionSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal("entitlement_decision"),
  customer_id: Type.String(),
  feature: Type.String(),
  quantity: Type.String(),
  decision: Type.String(),
  reason: Type.String(),
  remaining: Type.Union([Type.String(), Type.Null()]),
  consumed: Type.Boolean(),
  decided_at: Type.String(),
});

const tags = ["Entitlements"];

export async function entitlementRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();

  routes.get(
    "/v1/entitlements",
    {
      config: { scope: "entitlements:read", rateLimit: "entitlements" },
      schema: {
        tags,
        summary: "Every feature of the customer's active subscription(s), with usage",
        querystring: Type.Object({ customer_id: Type.String({ minLength: 1, maxLength: 255 }) }),
        response: {
          200: Type.Object({
            customer_id: Type.String(),
            active: Type.Boolean(),
            plans: Type.Array(Type.String()),
            data: Type.Array(EntitlementSchema),
          }),
          ...problemResponses(422),
        },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      const { customerId, snapshot, features } = context.entitlements.entitlementsOf(
        scope,
        request.query.customer_id,
      );
      return {
        customer_id: customerId,
        active: snapshot.active,
        plans: snapshot.planNames,
        data: features.map(({ grant, used, remaining, resetAtMs }) => ({
          feature: grant.feature,
          type: grant.type,
          enabled: true,
          limit: grant.type === "boolean" ? null : grant.limit,
          used,
          remaining,
          reset_at: resetAtMs === null ? null : new Date(resetAtMs).toISOString(),
          reset:
            grant.type === "metered"
              ? grant.reset
              : grant.type === "rate_limit"
                ? `${grant.perSeconds}s`
                : null,
          overage: grant.type === "metered" ? grant.overage : null,
          billable_unit: grant.type === "metered" ? grant.billableUnitKey : null,
        })),
      };
    },
  );

  routes.put(
    "/v1/entitlements/audit",
    {
      config: { scope: "entitlements:write" },
      schema: {
        tags,
        summary:
          "Choose which canAccess decisions are kept: a sample of all, and every decision of some customers",
        body: AuditSettingsSchema,
        response: { 200: AuditSettingsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const applied = await context.entitlements.audit.configure(tenantScope(request), {
        sampleRate: request.body.sample_rate,
        customerIds: request.body.customer_ids,
      });
      return { sample_rate: applied.sampleRate, customer_ids: [...applied.customerIds] };
    },
  );

  routes.get(
    "/v1/entitlements/audit",
    {
      config: { scope: "entitlements:read" },
      schema: {
        tags,
        summary: "The decision audit settings",
        response: { 200: AuditSettingsSchema, ...problemResponses() },
      },
    },
    async (request) => {
      const settings = context.entitlements.audit.settingsOf(tenantScope(request));
      return { sample_rate: settings.sampleRate, customer_ids: [...settings.customerIds] };
    },
  );

  routes.get(
    "/v1/entitlements/decisions",
    {
      config: { scope: "entitlements:read" },
      schema: {
        tags,
        summary: "The audit trail of canAccess decisions, newest first",
        querystring: Type.Intersect([
          PaginationQuery,
          Type.Object({ customer_id: Type.Optional(Type.String()), feature: Type.Optional(Type.String()) }),
        ]),
        response: { 200: listOf(DecisionSchema), ...problemResponses() },
      },
    },
    async (request) => {
      const scope = tenantScope(request);
      await context.entitlements.audit.flush();
      let query = context.database.db
        .selectFrom("entitlement_decisions")
        .selectAll()
        .where("tenant_id", "=", scope.tenantId)
        .where("mode", "=", scope.mode);
      if (request.query.customer_id) query = query.where("customer_id", "=", request.query.customer_id);
      if (request.query.feature) query = query.where("feature", "=", request.query.feature);
      const page = await fetchPage(query, "id", {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return {
        has_more: page.has_more,
        data: page.data.map((row) => ({
          id: row.id,
          object: "entitlement_decision" as const,
          customer_id: row.customer_id,
          feature: row.feature,
          quantity: row.quantity,
          decision: row.decision,
          reason: row.reason,
          remaining: row.remaining,
          consumed: row.consumed,
          decided_at: new Date(row.decided_at).toISOString(),
        })),
      };
    },
  );
}
