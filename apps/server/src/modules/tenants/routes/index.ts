import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AppContext } from "../../../context.ts";
import { IdParams, listOf, PaginationQuery, problemResponses } from "../../../http/schemas.ts";
import type { Tenant } from "../domain.ts";

const TenantSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("tenant"),
    slug: Type.String(),
    name: Type.String(),
    created_at: Type.String(),
    rate_limits: Type.Optional(
      Type.Record(Type.String(), Type.Object({ limit: Type.Integer(), burst: Type.Integer() }), {
        description: "per-class overrides of the default rate limits for every key of the tenant",
      }),
    ),
  },
  { $id: "Tenant" },
);

const CreatedTenantSchema = Type.Intersect([
  Type.Ref("Tenant"),
  Type.Object({
    api_keys: Type.Object({
      live: Type.String({ description: "sk_live_ secret, shown only in this response" }),
      test: Type.String({ description: "sk_test_ secret, shown only in this response" }),
    }),
  }),
]);

export function toApi(tenant: Tenant) {
  return {
    id: tenant.id,
    object: "tenant" as const,
    slug: tenant.slug,
    name: tenant.name,
    created_at: tenant.createdAt.toISOString(),
    ...(tenant.rateLimits ? { rate_limits: tenant.rateLimits } : {}),
  };
}

const operator = { auth: "operator" as const };
const tags = ["Tenants"];

export async function tenantRoutes(app: FastifyInstance, { context }: { context: AppContext }) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(TenantSchema);

  routes.post(
    "/v1/tenants",
    {
      config: operator,
      schema: {
        tags,
        summary: "Create a tenant with a live and a sandbox secret key (operator key)",
        body: Type.Object({
          name: Type.String({ minLength: 1, maxLength: 200 }),
          slug: Type.Optional(Type.String({ minLength: 3, maxLength: 63 })),
        }),
        response: { 201: CreatedTenantSchema, ...problemResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const created = await context.tenants.create(request.body);
      return reply.code(201).send({
        ...toApi(created.tenant),
        api_keys: { live: created.keys.live.secret, test: created.keys.test.secret },
      });
    },
  );

  routes.get(
    "/v1/tenants",
    {
      config: operator,
      schema: {
        tags,
        summary: "List tenants (operator key)",
        querystring: PaginationQuery,
        response: { 200: listOf(Type.Ref("Tenant")), ...problemResponses() },
      },
    },
    async (request) => {
      const page = await context.tenants.list({
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { data: page.data.map(toApi), has_more: page.has_more };
    },
  );

  const RateLimitOverride = Type.Object({
    limit: Type.Integer({ minimum: 1 }),
    burst: Type.Integer({ minimum: 1 }),
  });
  const patch = {
    config: operator,
    schema: {
      tags,
      summary: "Rename a tenant or set rate-limit overrides for all its keys (operator key)",
      description:
        "rate_limits override the contract's defaults per class (requests per minute and burst); a key's own rate_limits win over the tenant's.",
      params: IdParams,
      body: Type.Object({
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        rate_limits: Type.Optional(
          Type.Object({
            meter: Type.Optional(RateLimitOverride),
            canAccess: Type.Optional(RateLimitOverride),
            entitlements: Type.Optional(RateLimitOverride),
            management: Type.Optional(RateLimitOverride),
          }),
        ),
      }),
      response: { 200: Type.Ref("Tenant"), ...problemResponses(404) },
    },
  };
  routes.patch("/v1/tenants/:id", patch, async (request) =>
    toApi(
      await context.tenants.update(request.params.id, {
        name: request.body.name,
        rateLimits: request.body.rate_limits,
      }),
    ),
  );

  routes.get(
    "/v1/tenants/:id",
    {
      config: operator,
      schema: {
        tags,
        summary: "Get a tenant by id or slug (operator key)",
        params: IdParams,
        response: { 200: Type.Ref("Tenant"), ...problemResponses(404) },
      },
    },
    async (request) => toApi(await context.tenants.get(request.params.id)),
  );
}
